"""Opening the station database: refuse a corrupt or newer-than-code file without touching it,
then switch to WAL and apply pending migrations, each in its own transaction.

Owns the connection and transactions; must not know any table (the table-group modules do).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 5000  # a CLI reading the database may hold a read lock briefly


class StoreError(Exception):
    """Root of every store failure."""


class DatabaseCorrupt(StoreError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"database {path} is corrupt ({detail}); it was not modified")
        self.path, self.detail = path, detail


class DatabaseTooNew(StoreError):
    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"database {path} has schema version {found}, newer than this station's {known}: "
            "upgrade firefly-station; the database was not modified"
        )
        self.path, self.found, self.known = path, found, known


class _Entropy:
    """os.urandom fetched 4 KiB at a time: one getrandom call per id cost as much as the rest of an id.
    Thread-safe; a forked child starts with fresh bytes (never the parent's)."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._offset = b"", 0
        os.register_at_fork(after_in_child=self._forget)

    def hex8(self) -> str:
        with self._lock:
            if self._offset + 8 > len(self._buffer):
                self._buffer, self._offset = os.urandom(self.SIZE), 0
            start = self._offset
            self._offset += 8
            return self._buffer[start:start + 8].hex()

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._offset = b"", 0


_ENTROPY = _Entropy()


def new_id() -> str:
    """Stable, sortable record id (time-ordered UUID-like hex), safe to sync to the central vault."""
    return f"{time.time_ns():016x}{_ENTROPY.hex8()}"


_JSON = json.JSONEncoder(default=str)  # one encoder: json.dumps(default=...) builds a new one per call


def to_json(value: Any) -> str:
    """Compact-enough JSON for a stored column; what JSON cannot hold is stored as its str()."""
    return _JSON.encode(value)


def now() -> float:
    return time.time()


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the code, in order."""
    found = []
    for entry in resources.files("station.store.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    return found


class Database:
    """One connection, owned by the event loop's thread. Writes are short transactions."""

    def __init__(self, connection: sqlite3.Connection, path: Path, synchronous: str = "FULL") -> None:
        self.connection = connection
        self.path = path
        self.synchronous = synchronous

    def open_writer(self) -> Database:
        """A second connection to the same (already migrated) file with the same settings, for a writer
        whose transactions must not mix with this one's (the process journal, which may COMMIT on its
        own thread while the event loop goes on using this connection)."""
        return Database(_connect(self.path, self.synchronous), self.path, self.synchronous)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.begin()
        try:
            yield self.connection
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """Start a write transaction (waits up to BUSY_TIMEOUT_MS for another connection's)."""
        self.connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit, waiting for the disk; on failure the transaction is rolled back and the error raised."""
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self.connection.in_transaction:  # SQLite may have rolled back on its own (a full disk)
            self.connection.execute("ROLLBACK")

    def schema_version(self) -> int:
        return int(self.connection.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.connection.close()


def open_database(path: Path, synchronous: str = "FULL") -> Database:
    known = migrations()
    latest = known[-1][0] if known else 0
    if path.exists():
        _check_existing(path, latest)
    path.parent.mkdir(parents=True, exist_ok=True)
    database = Database(_connect(path, synchronous), path, synchronous)
    _migrate(database, known)
    return database


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def _check_existing(path: Path, latest: int) -> None:
    """Inspect read-only, so that a file we refuse stays byte-for-byte as it was."""
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DatabaseCorrupt(path, str(exc)) from exc
    try:
        found = int(probe.execute("PRAGMA user_version").fetchone()[0])
        verdict = probe.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise DatabaseCorrupt(path, str(exc)) from exc
    finally:
        probe.close()
    if verdict != "ok":
        raise DatabaseCorrupt(path, str(verdict))
    if found > latest:
        raise DatabaseTooNew(path, found, latest)


def _migrate(database: Database, known: list[tuple[int, str, str]]) -> None:
    current = database.schema_version()
    for version, _name, sql in known:
        if version <= current:
            continue
        with database.transaction() as connection:
            for statement in _statements(sql):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version}")


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
