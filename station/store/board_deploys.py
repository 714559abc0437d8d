"""Deploys to boards: a config change or a file, from queued to done, failed or cancelled. Each
function is one transaction, so a kill -9 leaves every deploy in a state it can resume from: an
open deploy (queued or sending) is picked up again at start, and `sent` only ever records bytes
the board acknowledged. Knows the table; sending and spooling belong to station.boards.deploy."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from station.store.database import Database, new_id

OPEN_STATES = ("queued", "sending")
FINAL_STATES = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class DeployRecord:
    id: str
    board_id: str
    kind: str  # config | file
    path: str | None
    size: int
    sha256: str
    config: dict[str, Any] | None
    state: str
    sent: int
    attempts: int
    error: str | None
    created_by: str
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> DeployRecord:
        fields = dict(row)
        fields["config"] = None if fields["config"] is None else json.loads(fields["config"])
        return cls(**fields)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewDeploy:
    board_id: str
    kind: str
    path: str | None
    size: int
    sha256: str
    config: dict[str, Any] | None
    created_by: str


def insert(database: Database, deploy: NewDeploy, at: float) -> DeployRecord:
    row = {**asdict(deploy), "id": new_id(), "at": at,
           "config": None if deploy.config is None else json.dumps(deploy.config, sort_keys=True)}
    with database.transaction() as db:
        db.execute("INSERT INTO board_deploys (id, board_id, kind, path, size, sha256, config, state, created_by,"
                   " created_at, updated_at) VALUES (:id, :board_id, :kind, :path, :size, :sha256, :config,"
                   " 'queued', :created_by, :at, :at)", row)
        return _deploy(db, row["id"])


def get(database: Database, deploy_id: str) -> DeployRecord | None:
    row = database.connection.execute("SELECT * FROM board_deploys WHERE id = ?", (deploy_id,)).fetchone()
    return None if row is None else DeployRecord.from_row(row)


def list_for_board(database: Database, board_id: str, limit: int) -> list[DeployRecord]:
    """Newest first."""
    rows = database.connection.execute(
        "SELECT * FROM board_deploys WHERE board_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        (board_id, limit))
    return [DeployRecord.from_row(row) for row in rows]


def list_open(database: Database, board_id: str | None = None) -> list[DeployRecord]:
    """Every queued or sending deploy (of one board), oldest first: the order they are sent in."""
    rows = database.connection.execute(
        "SELECT * FROM board_deploys WHERE state IN ('queued', 'sending') AND (? IS NULL OR board_id = ?)"
        " ORDER BY created_at, id", (board_id, board_id))
    return [DeployRecord.from_row(row) for row in rows]


def start_attempt(database: Database, deploy_id: str, at: float) -> DeployRecord | None:
    """An open deploy goes out over a new session: state sending, one attempt more. None when it
    is no longer open (cancelled meanwhile)."""
    with database.transaction() as db:
        changed = db.execute("UPDATE board_deploys SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                             " WHERE id = ? AND state IN ('queued', 'sending')", (at, deploy_id)).rowcount
        return _deploy(db, deploy_id) if changed else None


def record_progress(database: Database, deploy_id: str, sent: int, at: float) -> None:
    with database.transaction() as db:
        db.execute("UPDATE board_deploys SET sent = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
                   (sent, at, deploy_id))


def requeue(database: Database, deploy_id: str, error: str, at: float) -> DeployRecord | None:
    """The link broke mid-deploy: back to queued with the reason, to resume on the next session."""
    with database.transaction() as db:
        db.execute("UPDATE board_deploys SET state = 'queued', error = ?, updated_at = ?"
                   " WHERE id = ? AND state IN ('queued', 'sending')", (error, at, deploy_id))
        return _deploy(db, deploy_id)


def finish(database: Database, deploy_id: str, state: str, at: float, error: str | None = None,
           sent: int | None = None) -> DeployRecord | None:
    """Close an open deploy as done, failed or cancelled. None when it was already closed."""
    if state not in FINAL_STATES:
        raise ValueError(f"not a final deploy state: {state!r}")
    with database.transaction() as db:
        changed = db.execute(
            "UPDATE board_deploys SET state = ?, error = ?, sent = COALESCE(?, sent), updated_at = ?,"
            " finished_at = ? WHERE id = ? AND state IN ('queued', 'sending')",
            (state, error, sent, at, at, deploy_id)).rowcount
        return _deploy(db, deploy_id) if changed else None


def sha256_in_use(database: Database, sha256: str) -> bool:
    """Does an open file deploy still need the spooled content with this digest?"""
    return database.connection.execute(
        "SELECT 1 FROM board_deploys WHERE kind = 'file' AND sha256 = ? AND state IN ('queued', 'sending')"
        " LIMIT 1", (sha256,)).fetchone() is not None


def _deploy(db: sqlite3.Connection, deploy_id: str) -> DeployRecord:
    return DeployRecord.from_row(db.execute("SELECT * FROM board_deploys WHERE id = ?", (deploy_id,)).fetchone())
