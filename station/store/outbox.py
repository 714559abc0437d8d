"""Outbox tables: messages accepted for sending and their parts. Each function is one
transaction, so a kill -9 between two calls leaves a consistent outbox."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from station.store.database import Database, new_id, now

OPEN_STATUSES = ("queued", "sending")
FINAL_STATUSES = ("delivered", "failed", "expired")


@dataclass(frozen=True)
class NewMessage:
    to_node: str
    channel: int
    text: str
    want_ack: bool
    radio: str | None
    ttl_s: float
    parts: list[str]
    idempotency_key: str | None = None  # a process step's send: the same key never queues twice


@dataclass(frozen=True)
class PartToSend:
    message_id: str
    part_index: int
    payload: str
    to_node: str
    channel: int
    want_ack: bool
    radio: str | None
    packet_id: int | None  # set: resend after a crash with the same id, so the mesh drops a copy
    attempts: int


def insert_messages(database: Database, messages: list[NewMessage]) -> list[dict[str, Any]]:
    """Commit messages with their parts in one transaction; returns their rows."""
    created = now()
    rows = []
    with database.transaction() as db:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox_messages").fetchone()[0]
        for message in messages:
            if message.idempotency_key is not None:
                existing = db.execute("SELECT * FROM outbox_messages WHERE idempotency_key = ?",
                                      (message.idempotency_key,)).fetchone()
                if existing is not None:
                    rows.append(dict(existing))
                    continue
            seq += 1
            row = {
                "id": new_id(), "seq": seq, "to_node": message.to_node, "channel": message.channel,
                "text": message.text, "want_ack": int(message.want_ack), "radio": message.radio,
                "status": "queued", "reason": None, "parts_total": len(message.parts),
                "created_at": created, "expires_at": created + message.ttl_s, "completed_at": None,
                "idempotency_key": message.idempotency_key,
            }
            db.execute(
                f"INSERT INTO outbox_messages ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
                row,
            )
            db.executemany(
                "INSERT INTO outbox_parts (message_id, part_index, payload, status)"
                " VALUES (?, ?, ?, 'pending')",
                [(row["id"], index, payload) for index, payload in enumerate(message.parts)],
            )
            rows.append(row)
    return rows


def recover_inflight(database: Database) -> int:
    """After a restart, parts that were on the air go back to pending, keeping their packet id."""
    with database.transaction() as db:
        return db.execute("UPDATE outbox_parts SET status = 'pending' WHERE status = 'inflight'").rowcount


def next_parts(database: Database, radio: str, limit: int, at: float) -> list[PartToSend]:
    """The oldest sendable parts for `radio`: a part waits until the part before it is acked."""
    rows = database.connection.execute(
        """
        SELECT p.message_id, p.part_index, p.payload, p.packet_id, p.attempts,
               m.to_node, m.channel, m.want_ack, m.radio
        FROM outbox_messages m JOIN outbox_parts p ON p.message_id = m.id
        WHERE m.status IN ('queued', 'sending') AND (m.radio IS NULL OR m.radio = ?)
          AND p.status = 'pending' AND p.not_before <= ?
          AND (p.packet_id IS NULL OR p.radio IS NULL OR p.radio = ?)  -- a resend keeps its radio
          AND NOT EXISTS (SELECT 1 FROM outbox_parts q WHERE q.message_id = p.message_id
                          AND q.part_index < p.part_index AND q.status != 'acked')
        ORDER BY m.seq, p.part_index LIMIT ?
        """,
        (radio, at, radio, limit),
    ).fetchall()
    return [
        PartToSend(r["message_id"], r["part_index"], r["payload"], r["to_node"], r["channel"],
                   bool(r["want_ack"]), r["radio"], r["packet_id"], r["attempts"])
        for r in rows
    ]


def next_wakeup(database: Database) -> float | None:
    """When the earliest delayed part becomes sendable (None: nothing is waiting on a delay)."""
    row = database.connection.execute(
        "SELECT MIN(p.not_before) FROM outbox_parts p JOIN outbox_messages m ON m.id = p.message_id"
        " WHERE m.status IN ('queued', 'sending') AND p.status = 'pending'"
    ).fetchone()
    return None if row[0] is None else float(row[0])


def mark_inflight(db: sqlite3.Connection, part: PartToSend, packet_id: int, radio: str) -> None:
    db.execute(
        "UPDATE outbox_parts SET status = 'inflight', packet_id = ?, radio = ?,"
        " attempts = attempts + 1, sent_at = ? WHERE message_id = ? AND part_index = ?",
        (packet_id, radio, now(), part.message_id, part.part_index),
    )
    db.execute(
        "UPDATE outbox_messages SET status = 'sending' WHERE id = ? AND status = 'queued'",
        (part.message_id,),
    )


def mark_acked(db: sqlite3.Connection, message_id: str, part_index: int) -> bool:
    """Record an ACK; returns True when it completed the whole message (now delivered)."""
    at = now()
    db.execute(
        "UPDATE outbox_parts SET status = 'acked', acked_at = ?"
        " WHERE message_id = ? AND part_index = ? AND status = 'inflight'",
        (at, message_id, part_index),
    )
    remaining = db.execute(
        "SELECT COUNT(*) FROM outbox_parts WHERE message_id = ? AND status != 'acked'",
        (message_id,),
    ).fetchone()[0]
    if remaining:
        return False
    return db.execute(
        "UPDATE outbox_messages SET status = 'delivered', completed_at = ?"
        " WHERE id = ? AND status IN ('queued', 'sending')",
        (at, message_id),
    ).rowcount == 1


def mark_retry(db: sqlite3.Connection, message_id: str, part_index: int, error: str,
               not_before: float, *, new_packet_id: bool, counts: bool) -> None:
    """Back to pending after a NAK, a timeout or a refusal.

    A retry over the air gets a new packet id; a packet that may still be in the radio keeps
    its id so the mesh drops a copy. An attempt the radio refused does not count.
    """
    db.execute(
        "UPDATE outbox_parts SET status = 'pending', last_error = ?, not_before = ?,"
        " packet_id = CASE WHEN ? THEN NULL ELSE packet_id END, attempts = attempts - ?"
        " WHERE message_id = ? AND part_index = ? AND status = 'inflight'",
        (error, not_before, int(new_packet_id), int(not counts), message_id, part_index),
    )


def mark_failed(db: sqlite3.Connection, message_id: str, part_index: int, reason: str) -> bool:
    db.execute(
        "UPDATE outbox_parts SET status = 'failed', last_error = ?"
        " WHERE message_id = ? AND part_index = ?",
        (reason, message_id, part_index),
    )
    return _finish(db, message_id, "failed", reason)


def expire_due(database: Database, at: float) -> list[str]:
    """Messages past their expiry that are still open become expired; returns their ids."""
    with database.transaction() as db:
        ids = [row[0] for row in db.execute(
            "SELECT id FROM outbox_messages WHERE status IN ('queued', 'sending') AND expires_at <= ?",
            (at,),
        )]
        for message_id in ids:
            _finish(db, message_id, "expired", "not delivered before it expired")
    return ids


def _finish(db: sqlite3.Connection, message_id: str, status: str, reason: str) -> bool:
    return db.execute(
        "UPDATE outbox_messages SET status = ?, reason = ?, completed_at = ?"
        " WHERE id = ? AND status IN ('queued', 'sending')",
        (status, reason, now(), message_id),
    ).rowcount == 1


def get_message(database: Database, message_id: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT * FROM outbox_messages WHERE id = ?", (message_id,)
    ).fetchone()
    if row is None:
        return None
    message = dict(row)
    message["parts"] = [dict(part) for part in database.connection.execute(
        "SELECT part_index, status, packet_id, radio, attempts, last_error, sent_at, acked_at"
        " FROM outbox_parts WHERE message_id = ? ORDER BY part_index", (message_id,)
    )]
    return message


def list_messages(database: Database, status: str | None, limit: int) -> list[dict[str, Any]]:
    query, params = "SELECT * FROM outbox_messages", []
    if status:
        query += " WHERE status = ?"
        params.append(status)
    query += " ORDER BY seq DESC LIMIT ?"
    return [dict(row) for row in database.connection.execute(query, (*params, limit))]


def counts(database: Database) -> dict[str, int]:
    return {row[0]: row[1] for row in database.connection.execute(
        "SELECT status, COUNT(*) FROM outbox_messages GROUP BY status"
    )}
