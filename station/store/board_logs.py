"""The board log table: lines boards sent over their authenticated sessions, in order of
arrival (the id), pruned to the newest lines per board. Each function is one transaction. Knows
the table; the levels, caps and batching policy belong to station/boards/logbook.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from station.store.database import Database

LINE_COLUMNS = "id, level, message, board_ts, received_at"


@dataclass(frozen=True)
class NewLine:
    board_id: str
    level: str
    message: str
    board_ts: int | None
    received_at: float


def append_lines(database: Database, lines: Sequence[NewLine], prune_boards: Collection[str] = (),
                 keep: int = 0) -> None:
    """Store `lines` in order, then keep only the newest `keep` lines of each of `prune_boards`."""
    with database.transaction() as db:
        db.executemany("INSERT INTO board_logs (board_id, level, message, board_ts, received_at)"
                       " VALUES (?, ?, ?, ?, ?)",
                       [(line.board_id, line.level, line.message, line.board_ts, line.received_at)
                        for line in lines])
        for board_id in prune_boards:
            _prune(db, board_id, keep)


def prune(database: Database, board_id: str, keep: int) -> int:
    """Delete all but the newest `keep` lines of the board; how many went."""
    with database.transaction() as db:
        return _prune(db, board_id, keep)


def _prune(db: sqlite3.Connection, board_id: str, keep: int) -> int:
    # The (board_id, id) index finds the newest line to drop by walking `keep` entries; the
    # delete then takes everything at or below it in one range.
    row = db.execute("SELECT id FROM board_logs WHERE board_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                     (board_id, keep)).fetchone()
    if row is None:
        return 0
    return int(db.execute("DELETE FROM board_logs WHERE board_id = ? AND id <= ?", (board_id, row[0])).rowcount)


def list_lines(database: Database, board_id: str, after: int | None, limit: int,
               levels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Oldest first. Without `after`: the newest `limit` lines; with it: the first `limit` lines
    after that id (paging forward skips nothing). `levels`: only lines at one of these levels."""
    where: list[str] = ["board_id = ?"]
    params: list[Any] = [board_id]
    if levels is not None:
        where.append(f"level IN ({', '.join('?' * len(levels))})")
        params.extend(levels)
    if after is not None:
        where.append("id > ?")
        params.append(after)
    order = "DESC" if after is None else "ASC"
    rows = database.connection.execute(
        f"SELECT {LINE_COLUMNS} FROM board_logs WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",  # noqa: S608
        [*params, limit]).fetchall()
    lines = [dict(row) for row in rows]
    return lines[::-1] if after is None else lines


def count(database: Database, board_id: str) -> int:
    return int(database.connection.execute("SELECT COUNT(*) FROM board_logs WHERE board_id = ?",
                                           (board_id,)).fetchone()[0])
