"""Finding and calling the station's API from the CLI.

Where the API is: --api / FIREFLY_API_URL, else the client file the running station wrote.
Which token: FIREFLY_TOKEN, else --token-file / FIREFLY_TOKEN_FILE, else the client file's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from station.cli.output import Exit, fail
from station.clientfile import read_client_file

DEFAULT_API_URL = "http://127.0.0.1:8080"
REQUEST_TIMEOUT_S = 10.0  # the API answers from SQLite; a slower answer means trouble


class ApiClient:
    def __init__(self, as_json: bool, api_url: str | None = None) -> None:
        saved = read_client_file()
        self.as_json = as_json
        self.base = (api_url or os.environ.get("FIREFLY_API_URL") or saved.get("api_url")
                     or DEFAULT_API_URL).rstrip("/")
        self._token = os.environ.get("FIREFLY_TOKEN") or self._read_token(
            os.environ.get("FIREFLY_TOKEN_FILE") or saved.get("token_file"))
        import httpx  # here: `firefly station run` (the daemon) never needs the client side

        self._http = httpx.Client(timeout=REQUEST_TIMEOUT_S)
        self._transport_error = httpx.TransportError

    @staticmethod
    def _read_token(path: str | None) -> str | None:
        if not path:
            return None
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            response = self._http.request(method, f"{self.base}/api/v1{path}", headers=headers, **kwargs)
        except self._transport_error as exc:
            fail(Exit.UNAVAILABLE, f"station API at {self.base} is not reachable ({exc})", self.as_json)
        if response.status_code == 401:
            fail(Exit.UNAUTHORIZED, "the station refused the token (set FIREFLY_TOKEN_FILE)", self.as_json)
        if response.status_code == 403:
            fail(Exit.UNAUTHORIZED, _detail(response), self.as_json)
        if response.status_code == 404:
            fail(Exit.NOT_FOUND, _detail(response), self.as_json)
        if response.status_code == 422:
            fail(Exit.USAGE, _detail(response), self.as_json)
        if response.status_code >= 400:
            fail(Exit.FAILURE, f"HTTP {response.status_code}: {_detail(response)}", self.as_json)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    if isinstance(detail, dict):
        return str(detail.get("error", detail))
    if isinstance(detail, list) and detail:  # FastAPI's validation errors
        first = detail[0]
        return f"{'.'.join(str(p) for p in first.get('loc', [])[1:])}: {first.get('msg')}"
    return str(detail)


POLL_INTERVAL_S = 0.2  # --wait polls the local API; five times a second costs nothing


def wait_final(client: ApiClient, path: str, final: tuple[str, ...], timeout: float, what: str) -> dict[str, Any]:
    """GET `path` until its status is final; exit 1 (FAILURE) when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(path)
        if record["status"] in final:
            return record
        if time.monotonic() >= deadline:
            fail(Exit.FAILURE, f"{what} still {record['status']} after {timeout:.0f} s", client.as_json)
        time.sleep(POLL_INTERVAL_S)
