"""WebAssembly app tables: apps, their versions, the lifecycle history and each app's key-value
store. Each function is one transaction, so a kill -9 leaves an app either on its old version or
on its new one, never between. Knows the tables; lifecycle rules belong to station.wasm."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from station.store.database import Database

LOG_KEEP_PER_APP = 2000  # history and log lines kept per app


@dataclass(frozen=True)
class AppVersionRecord:
    app: str
    version: str
    state: str
    module_sha256: str
    manifest: str
    signature: bytes | None
    key_id: str | None
    error: str | None
    deployed_by: str
    deployed_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AppVersionRecord:
        fields = dict(row)
        if fields["signature"] is not None:
            fields["signature"] = bytes(fields["signature"])
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["signature"] = None if self.signature is None else self.signature.hex()
        return fields


@dataclass(frozen=True)
class AppRecord:
    name: str
    active_version: str | None
    desired: str
    created_at: float
    updated_at: float


def upsert_version(database: Database, version: AppVersionRecord) -> None:
    """Record an uploaded version (a new app gets its row, desired running)."""
    with database.transaction() as db:
        db.execute("INSERT INTO apps (name, active_version, desired, created_at, updated_at)"
                   " VALUES (?, NULL, 'running', ?, ?) ON CONFLICT (name) DO NOTHING",
                   (version.app, version.deployed_at, version.deployed_at))
        db.execute("INSERT INTO app_versions (app, version, state, module_sha256, manifest, signature, key_id, error,"
                   " deployed_by, deployed_at, updated_at) VALUES (:app, :version, :state, :module_sha256, :manifest,"
                   " :signature, :key_id, :error, :deployed_by, :deployed_at, :updated_at)"
                   " ON CONFLICT (app, version) DO UPDATE SET state = excluded.state,"
                   " module_sha256 = excluded.module_sha256, manifest = excluded.manifest,"
                   " signature = excluded.signature, key_id = excluded.key_id, error = NULL,"
                   " deployed_by = excluded.deployed_by, deployed_at = excluded.deployed_at,"
                   " updated_at = excluded.updated_at", asdict(version))


def set_version_state(database: Database, app: str, version: str, state: str, at: float,
                      error: str | None = None) -> None:
    with database.transaction() as db:
        db.execute("UPDATE app_versions SET state = ?, error = ?, updated_at = ? WHERE app = ? AND version = ?",
                   (state, error, at, app, version))


def activate(database: Database, app: str, version: str | None, at: float,
             superseded: str | None = None, superseded_state: str = "superseded") -> None:
    """Make `version` the app's active one; the one it replaces moves to `superseded_state`."""
    with database.transaction() as db:
        db.execute("UPDATE apps SET active_version = ?, updated_at = ? WHERE name = ?", (version, at, app))
        if superseded is not None and superseded != version:
            db.execute("UPDATE app_versions SET state = ?, updated_at = ? WHERE app = ? AND version = ?",
                       (superseded_state, at, app, superseded))


def set_desired(database: Database, app: str, desired: str, at: float) -> None:
    with database.transaction() as db:
        db.execute("UPDATE apps SET desired = ?, updated_at = ? WHERE name = ?", (desired, at, app))


def get_app(database: Database, name: str) -> AppRecord | None:
    row = database.connection.execute("SELECT * FROM apps WHERE name = ?", (name,)).fetchone()
    return None if row is None else AppRecord(**dict(row))


def list_apps(database: Database) -> list[AppRecord]:
    return [AppRecord(**dict(row)) for row in database.connection.execute("SELECT * FROM apps ORDER BY name")]


def get_version(database: Database, app: str, version: str) -> AppVersionRecord | None:
    row = database.connection.execute("SELECT * FROM app_versions WHERE app = ? AND version = ?",
                                      (app, version)).fetchone()
    return None if row is None else AppVersionRecord.from_row(row)


def list_versions(database: Database, app: str) -> list[AppVersionRecord]:
    """Newest deploy first."""
    rows = database.connection.execute("SELECT * FROM app_versions WHERE app = ? ORDER BY deployed_at DESC", (app,))
    return [AppVersionRecord.from_row(row) for row in rows]


def remove_app(database: Database, name: str) -> list[str]:
    """Forget the app, its versions and its key-value store (its history stays); the module digests it used."""
    with database.transaction() as db:
        digests = [row[0] for row in db.execute("SELECT module_sha256 FROM app_versions WHERE app = ?", (name,))]
        db.execute("DELETE FROM app_versions WHERE app = ?", (name,))
        db.execute("DELETE FROM app_kv WHERE app = ?", (name,))
        db.execute("DELETE FROM apps WHERE name = ?", (name,))
        return digests


def digest_in_use(database: Database, module_sha256: str) -> bool:
    return database.connection.execute("SELECT 1 FROM app_versions WHERE module_sha256 = ? LIMIT 1",
                                       (module_sha256,)).fetchone() is not None


# ---- history and log lines


def add_event(database: Database, app: str, version: str | None, kind: str, message: str, at: float,
              level: str = "info") -> None:
    with database.transaction() as db:
        cursor = db.execute("INSERT INTO app_events (app, version, kind, level, message, at) VALUES (?, ?, ?, ?, ?, ?)",
                            (app, version, kind, level, message, at))
        if cursor.lastrowid is not None and cursor.lastrowid % 100 == 0:  # prune now and then, cheaply
            db.execute("DELETE FROM app_events WHERE app = ? AND id <= ?", (app, cursor.lastrowid - LOG_KEEP_PER_APP))


def list_events(database: Database, app: str, after: int | None, limit: int, kinds: tuple[str, ...] = ()) -> list[
        dict[str, Any]]:
    """Oldest first: the newest `limit`, or the first `limit` after the id `after`."""
    where, params = "app = ?", [app]
    if kinds:
        where += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    if after is None:
        rows = database.connection.execute(
            f"SELECT * FROM (SELECT * FROM app_events WHERE {where} ORDER BY id DESC LIMIT ?) ORDER BY id",  # noqa: S608
            (*params, limit))
    else:
        rows = database.connection.execute(
            f"SELECT * FROM app_events WHERE {where} AND id > ? ORDER BY id LIMIT ?", (*params, after, limit))  # noqa: S608
    return [dict(row) for row in rows]


# ---- an app's key-value store


def kv_get(database: Database, app: str, key: str) -> bytes | None:
    row = database.connection.execute("SELECT value FROM app_kv WHERE app = ? AND key = ?", (app, key)).fetchone()
    return None if row is None else bytes(row[0])


def kv_put(database: Database, app: str, key: str, value: bytes, quota: int) -> bool:
    """Store the value unless the app's keys and values would exceed `quota` bytes (then False)."""
    with database.transaction() as db:
        used = db.execute("SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM app_kv WHERE app = ? AND key != ?",
                          (app, key)).fetchone()[0]
        if used + len(key.encode()) + len(value) > quota:
            return False
        db.execute("INSERT INTO app_kv (app, key, value) VALUES (?, ?, ?)"
                   " ON CONFLICT (app, key) DO UPDATE SET value = excluded.value", (app, key, value))
        return True
