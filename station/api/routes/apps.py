"""App endpoints: trusted signing keys, deploying bundles, the lifecycle of each app (start, stop,
rollback, remove), its history and log, and calling an entry point. Thin: the apps service does
the work; 503 when the station runs with `[wasm] enabled = false`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from station.api.auth import require_token
from station.wasm.errors import (
    AppCallFailed,
    AppError,
    AppKeyError,
    AppNotFound,
    AppRefused,
    AppStateError,
    KeyNotFound,
)
from station.wasm.service import AppService

router = APIRouter(prefix="/apps", tags=["apps"], dependencies=[Depends(require_token)])

MAX_BUNDLE_BYTES = 17 << 20  # a 16 MiB module with its manifest and signature


async def _apps(request: Request) -> AppService:
    service: AppService | None = request.app.state.station.apps
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="apps are disabled ([wasm] enabled = false)")
    return service


Apps = Annotated[AppService, Depends(_apps)]


def _caller(request: Request) -> str:
    return str(getattr(request.state, "token_name", "api"))


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except (AppNotFound, KeyNotFound) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except (AppRefused, AppKeyError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"error": str(exc), "kind": type(exc).__name__}) from exc
    except AppStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except AppCallFailed as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                            detail={"error": str(exc), "kind": type(exc).__name__}) from exc
    except AppError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(exc)) from exc


# ---- trusted keys (before /{name}: "keys" is not an app)


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="who signs with it")
    public_key: str = Field(description="Ed25519 public key: PEM, OpenSSH, or 64 hex characters")


@router.get("/keys")
async def list_keys(apps: Apps) -> dict[str, Any]:
    return {"keys": [key.as_dict() for key in apps.keys.list()]}


@router.post("/keys", status_code=status.HTTP_201_CREATED)
async def add_key(body: KeyIn, apps: Apps, request: Request) -> dict[str, Any]:
    """Trust apps signed with this key from now on."""
    with _http_errors():
        return apps.keys.add(body.name, body.public_key, _caller(request)).as_dict()


@router.delete("/keys/{key_id}")
async def remove_key(key_id: str, apps: Apps) -> dict[str, Any]:
    """Stop trusting the key for new deploys (apps already running keep running)."""
    with _http_errors():
        return apps.keys.remove(key_id).as_dict()


# ---- apps


@router.get("")
async def list_apps(apps: Apps) -> dict[str, Any]:
    return {"apps": apps.apps()}


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra={
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                          "format": "binary"}}}}})
async def deploy_app(apps: Apps, request: Request) -> dict[str, Any]:
    """Deploy a bundle (.fapp, the raw request body): checked, stored, loaded and health-checked. 422 with
    nothing stored when refused; 201 with `ok: false` when the new version failed and the old one runs on."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BUNDLE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"at most {MAX_BUNDLE_BYTES} bytes")
    with _http_errors():
        return await apps.deploy(await request.body(), _caller(request))


@router.get("/{name}")
async def show_app(name: str, apps: Apps) -> dict[str, Any]:
    with _http_errors():
        return apps.show(name)


@router.post("/{name}/start")
async def start_app(name: str, apps: Apps) -> dict[str, Any]:
    with _http_errors():
        return await apps.start_app(name)


@router.post("/{name}/stop")
async def stop_app(name: str, apps: Apps) -> dict[str, Any]:
    with _http_errors():
        return apps.stop_app(name)


@router.post("/{name}/rollback")
async def rollback_app(name: str, apps: Apps) -> dict[str, Any]:
    """Run the version that ran before the active one again."""
    with _http_errors():
        return await apps.rollback(name)


@router.delete("/{name}")
async def remove_app(name: str, apps: Apps) -> dict[str, Any]:
    """Stop the app and forget its versions and key-value store (its history stays)."""
    with _http_errors():
        apps.remove(name)
    return {"name": name, "removed": True}


@router.get("/{name}/logs")
async def app_logs(name: str, apps: Apps,
                   after: Annotated[int | None, Query(ge=0, description="only entries after this id")] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   kind: Annotated[list[str] | None, Query(description="only these kinds (log, deploy, ...)")] = None,
                   ) -> dict[str, Any]:
    """The app's history and log lines, oldest first; pass `last_id` as `after` to follow."""
    with _http_errors():
        entries = apps.history(name, after, limit, tuple(kind or ()))
    return {"name": name, "entries": entries, "last_id": entries[-1]["id"] if entries else (after or 0)}


class CallIn(BaseModel):
    entry_point: str = Field(min_length=1, max_length=64)
    input: Any = Field(default=None, description="JSON passed to the entry point")


@router.post("/{name}/call")
async def call_app(name: str, body: CallIn, apps: Apps) -> dict[str, Any]:
    """Call an entry point of a running app; 502 when the call traps or times out (the app stays loaded)."""
    with _http_errors():
        output = await apps.call(name, body.entry_point, body.input)
    return {"name": name, "entry_point": body.entry_point, "output": output}
