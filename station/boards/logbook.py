"""Board log lines for the operator (`firefly board logs`): turning a board's `log` or `error`
message into a BoardLog event (capped, printable), and storing every BoardLog event in batches,
pruned to the newest `[boards] log_lines_per_board` per board. Must not read frames (session.py
publishes the events) nor know sessions.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from edge_agent.protocol import ERROR, LOG_LEVELS
from station.boards.errors import InvalidBoardInput
from station.boards.events import BoardLog
from station.bus import EventBus, Unsubscribe
from station.store import Database
from station.store import board_logs as store

logger = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 200  # the agent's own cap (LOG_TEXT_LIMIT); a board is not trusted to keep it
BOARD_TS_MAX = 2**63 - 1  # SQLite's INTEGER: a larger "clock" is garbage, kept as no clock
# Lines wait at most this long and are written in one transaction: an SD card wears with every
# commit, and a chatty board must not cost the event loop an fsync per line.
FLUSH_DELAY_S = 0.5
FLUSH_MAX_LINES = 200  # ...or at once when this many wait: bounds memory and one transaction
# A board's oldest lines are deleted once per this many new ones (one indexed range delete), so
# a board holds at most log_lines_per_board + PRUNE_EVERY_LINES - 1 lines between prunes.
PRUNE_EVERY_LINES = 100
MAX_LIST_LIMIT = 1000  # lines per listing: bounds one query and one API response
DEFAULT_LIST_LIMIT = 100


def board_log(board_id: str, msg: dict[str, Any]) -> BoardLog:
    """The BoardLog event for an authenticated `log` or `error` message."""
    if msg["t"] == ERROR:
        level, text = "error", f"{msg.get('code', '')}: {msg.get('msg', '')}"
    else:
        level, text = str(msg.get("level")), str(msg.get("msg", ""))
    ts = msg.get("ts")
    board_ts = ts if isinstance(ts, int) and not isinstance(ts, bool) and 0 <= ts <= BOARD_TS_MAX else None
    return BoardLog(board_id=board_id, level=level if level in LOG_LEVELS else "info",
                    message=printable(text), board_ts=board_ts)


def printable(text: str) -> str:
    """At most MESSAGE_MAX_CHARS, one line, no terminal control sequences."""
    text = text[:MESSAGE_MAX_CHARS]
    return text if text.isprintable() else "".join(c if c.isprintable() else " " for c in text)


def levels_from(min_level: str | None) -> tuple[str, ...] | None:
    """The levels at or above `min_level` (None: all)."""
    if min_level is None:
        return None
    if min_level not in LOG_LEVELS:
        raise InvalidBoardInput("level", min_level, "one of " + ", ".join(LOG_LEVELS))
    return LOG_LEVELS[LOG_LEVELS.index(min_level):]


class BoardLogBook:
    """Stores BoardLog events from the bus. Listing flushes first, so a reader sees every line
    the station heard."""

    def __init__(self, database: Database, bus: EventBus, keep: int) -> None:
        self._database, self._bus, self._keep = database, bus, keep
        self._pending: list[store.NewLine] = []
        self._timer: asyncio.TimerHandle | None = None
        # lines stored per board since its last prune; a board absent is pruned at its first
        # flush, so a smaller log_lines_per_board applies after a restart
        self._since_prune: dict[str, int] = {}
        self._unsubscribe: Unsubscribe | None = None
        self.lost = 0  # lines a failed write dropped

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(BoardLog, self._on_log)

    def close(self) -> None:
        """Stop listening and write what waits (at shutdown, after the sessions stopped)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.flush()

    def _on_log(self, event: BoardLog) -> None:
        self._pending.append(store.NewLine(event.board_id, event.level, event.message, event.board_ts, event.at))
        if len(self._pending) >= FLUSH_MAX_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._pending = self._pending, []
        if not lines:
            return
        counts: dict[str, int] = {}
        for line in lines:
            counts[line.board_id] = counts.get(line.board_id, 0) + 1
        prune = [board_id for board_id, n in counts.items()
                 if self._since_prune.get(board_id, PRUNE_EVERY_LINES) + n >= PRUNE_EVERY_LINES]
        started = time.monotonic()
        try:
            store.append_lines(self._database, lines, prune, self._keep)
        except sqlite3.Error as exc:  # a full disk or a locked database must not take the link down
            self.lost += len(lines)
            logger.warning("board log lines not stored", extra={"lines": len(lines), "error": str(exc)})
            return
        for board_id, n in counts.items():
            self._since_prune[board_id] = 0 if board_id in prune else self._since_prune.get(board_id, 0) + n
        logger.debug("board log lines stored", extra={"lines": len(lines), "pruned_boards": len(prune),
                                                      "ms": round((time.monotonic() - started) * 1000, 1)})

    def lines(self, board_id: str, after: int | None = None, limit: int = DEFAULT_LIST_LIMIT,
              min_level: str | None = None) -> list[dict[str, Any]]:
        """Oldest first: the newest `limit` lines, or the first `limit` after the id `after`."""
        self.flush()
        return store.list_lines(self._database, board_id, after, min(limit, MAX_LIST_LIMIT),
                                levels_from(min_level))
