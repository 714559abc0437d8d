"""Alerts table. Each function is one transaction, so a kill -9 between two calls leaves every
alert either fully changed or untouched. Knows the table and its dedup rule; the transition
rules (which status may follow which) belong to station.alerts.service."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from station.store.database import Database, new_id, now

UNRESOLVED_STATUSES = ("active", "acknowledged")

# status -> (timestamp column, actor column) stamped when an alert enters it
_STAMPS = {
    "acknowledged": ("acknowledged_at", "acknowledged_by"),
    "resolved": ("resolved_at", "resolved_by"),
}


@dataclass(frozen=True)
class NewAlert:
    severity: str
    title: str
    message: str
    source: str
    node_id: str | None
    dedup_key: str | None


def insert_or_fold(database: Database, alert: NewAlert) -> tuple[dict[str, Any], bool]:
    """Commit a new alert, or fold it into the unresolved alert with the same dedup key
    (occurrences + 1). Returns the alert's row and whether it was folded."""
    at = now()
    with database.transaction() as db:
        existing = None
        if alert.dedup_key is not None:
            existing = db.execute(
                "SELECT id FROM alerts WHERE dedup_key = ? AND status IN (?, ?)",
                (alert.dedup_key, *UNRESOLVED_STATUSES),
            ).fetchone()
        if existing is not None:
            db.execute(
                "UPDATE alerts SET occurrences = occurrences + 1, updated_at = ? WHERE id = ?",
                (at, existing["id"]),
            )
            return _fetch(db, existing["id"]), True
        row = {
            "id": new_id(), "severity": alert.severity, "title": alert.title, "message": alert.message,
            "source": alert.source, "node_id": alert.node_id, "dedup_key": alert.dedup_key,
            "status": "active", "created_at": at, "acknowledged_at": None, "acknowledged_by": None,
            "resolved_at": None, "resolved_by": None, "updated_at": at, "occurrences": 1,
        }
        db.execute(
            "INSERT INTO alerts (id, severity, title, message, source, node_id, dedup_key, status,"
            " created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, updated_at,"
            " occurrences) VALUES (:id, :severity, :title, :message, :source, :node_id, :dedup_key,"
            " :status, :created_at, :acknowledged_at, :acknowledged_by, :resolved_at, :resolved_by,"
            " :updated_at, :occurrences)",
            row,
        )
    return row, False


def set_status(database: Database, alert_id: str, status: str, from_statuses: tuple[str, ...],
               by: str) -> tuple[dict[str, Any] | None, bool]:
    """Move an alert to `status` (stamping when and by whom) if it is in one of `from_statuses`.

    Returns the alert's row after the attempt (None: no such alert) and whether it changed;
    the check and the change are one transaction, so two callers cannot both win.
    """
    at_column, by_column = _STAMPS[status]
    marks = ", ".join("?" * len(from_statuses))
    at = now()
    with database.transaction() as db:
        changed = db.execute(
            f"UPDATE alerts SET status = ?, {at_column} = ?, {by_column} = ?, updated_at = ?"  # noqa: S608
            f" WHERE id = ? AND status IN ({marks})",
            (status, at, by, at, alert_id, *from_statuses),
        ).rowcount == 1
        row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return (None if row is None else dict(row)), changed


def get_alert(database: Database, alert_id: str) -> dict[str, Any] | None:
    row = database.connection.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return None if row is None else dict(row)


def list_alerts(database: Database, status: str | None, severity: str | None,
                limit: int) -> list[dict[str, Any]]:
    """Newest first, optionally filtered by status and severity."""
    clauses, params = [], []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if severity is not None:
        clauses.append("severity = ?")
        params.append(severity)
    query = "SELECT * FROM alerts"
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    query += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [dict(row) for row in database.connection.execute(query, (*params, limit))]


def counts(database: Database) -> dict[str, int]:
    """Alerts per status (statuses with none are absent)."""
    return {row[0]: row[1] for row in database.connection.execute(
        "SELECT status, COUNT(*) FROM alerts GROUP BY status"
    )}


def _fetch(db: sqlite3.Connection, alert_id: str) -> dict[str, Any]:
    return dict(db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())
