"""Bearer-token auth for the local API. On first start the station writes an admin token
into its data dir (mode 0600); the CLI reads it from there. Must not log tokens."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

TOKEN_FILE_NAME = "admin.token"  # noqa: S105 - a file name, not a secret
TOKEN_BYTES = 32  # 256 bits: not guessable over a local socket in any useful time


def admin_token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE_NAME


def ensure_admin_token(data_dir: Path) -> str:
    path = admin_token_path(data_dir)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # O_EXCL + 0600 at creation: the token is never readable by others, not even briefly
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


_bearer = HTTPBearer(auto_error=False)


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected: str = request.app.state.admin_token
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
