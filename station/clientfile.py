"""The CLI's client file: where a running station's API is and which token file to use.

The daemon writes it at start so that `firefly mesh send` in a second terminal finds the
station with no flags. Flags and FIREFLY_API_URL / FIREFLY_TOKEN_FILE take precedence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from station.admintoken import admin_token_path
from station.config import StationConfig


def client_file_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "firefly" / "client.json"


def write_client_file(config: StationConfig) -> None:
    host = config.api.host if config.api.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
    record = {
        "api_url": f"http://{host}:{config.api.port}",
        "token_file": str(admin_token_path(config.data_dir.resolve())),
    }
    path = client_file_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only home must not stop the station; the CLI then needs flags


def read_client_file() -> dict[str, str]:
    try:
        data = json.loads(client_file_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: str(value) for key, value in data.items()} if isinstance(data, dict) else {}
