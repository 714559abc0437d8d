"""The admin token file and token hashing, without the web stack, so the CLI can find the
token in milliseconds. On first start the station writes a random token into its data dir,
mode 0600; only SHA-256 digests of other tokens are ever stored."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

TOKEN_FILE_NAME = "admin.token"  # noqa: S105 - a file name, not a secret
TOKEN_BYTES = 32  # 256 bits: not guessable over a local socket in any useful time


def admin_token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE_NAME


def ensure_admin_token(data_dir: Path) -> str:
    path = admin_token_path(data_dir)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    token = new_token()
    # O_EXCL + 0600 at creation: the token is never readable by others, not even briefly
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
