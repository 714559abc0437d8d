"""Bearer-token auth for the local API.

On first start the station writes an admin token into its data dir (mode 0600); it holds every
permission and the CLI reads it from there. Further tokens carry named permissions
(`firefly token create NAME --permission processes:view`); only their SHA-256 is stored.
Must not log tokens.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from station.admintoken import token_digest
from station.store import tokens as token_store

ADMIN = "*"  # the admin token's permission: all of them

# Every permission a token can carry; `*` holds them all. Endpoints without a named
# permission of their own need the admin token.
PERMISSIONS = {
    "processes:view": "list and read processes, executions, traces, templates and analytics",
    "processes:create": "create, update, deactivate and instantiate processes",
    "processes:execute": "run a process by hand",
}


_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _permissions_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> set[str]:
    """The token's permissions; its name goes to request.state.token_name (for audit fields)."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    presented = credentials.credentials
    admin: str = request.app.state.admin_token
    if hmac.compare_digest(presented.encode(), admin.encode()):
        request.state.token_name = "admin"  # noqa: S105 - a name, not a secret
        return {ADMIN}
    row = token_store.find_active(request.app.state.station.database, token_digest(presented))
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid or revoked bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.token_name = row["name"]
    return set(row["permissions"])


def require_permission(
        permission: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[None]]:
    if permission not in PERMISSIONS and permission != ADMIN:
        raise ValueError(f"unknown permission {permission!r}")

    # async: FastAPI runs a plain `def` dependency in a worker thread, which would query the
    # station's SQLite connection off the event loop's thread (and start a thread pool for nothing)
    async def check(request: Request, credentials: Credentials) -> None:
        granted = _permissions_of(request, credentials)
        if ADMIN not in granted and permission not in granted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this token lacks {permission}")

    return check


require_token = require_permission(ADMIN)  # endpoints without a permission of their own: admin only
