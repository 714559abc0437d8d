"""API token table: names, hashed secrets, permissions. Never stores a token in clear."""

from __future__ import annotations

import json
from typing import Any

from station.store.database import Database, new_id, now


def insert_token(database: Database, name: str, token_sha256: str, permissions: list[str]) -> dict[str, Any]:
    row = {"id": new_id(), "name": name, "token_sha256": token_sha256,
           "permissions": json.dumps(sorted(permissions)), "created_at": now(), "revoked_at": None}
    with database.transaction() as db:
        db.execute("INSERT INTO api_tokens VALUES (:id, :name, :token_sha256, :permissions,"
                   " :created_at, :revoked_at)", row)
    return _public(row)


def find_active(database: Database, token_sha256: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT * FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", (token_sha256,)
    ).fetchone()
    return None if row is None else _public(dict(row))


def list_tokens(database: Database) -> list[dict[str, Any]]:
    rows = database.connection.execute("SELECT * FROM api_tokens ORDER BY created_at")
    return [_public(dict(row)) for row in rows]


def revoke(database: Database, name: str) -> bool:
    with database.transaction() as db:
        return db.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                          (now(), name)).rowcount == 1


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row = {key: value for key, value in row.items() if key != "token_sha256"}
    row["permissions"] = json.loads(row["permissions"])
    return row
