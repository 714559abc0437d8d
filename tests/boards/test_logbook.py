"""Board log lines: the store's pruning, level filter and paging on a real database, and the
log book turning messages into BoardLog events and storing them in batches."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.protocol import ERROR, LOG, make
from station.boards.errors import InvalidBoardInput
from station.boards.events import BoardLog
from station.boards.logbook import FLUSH_DELAY_S, MESSAGE_MAX_CHARS, PRUNE_EVERY_LINES, BoardLogBook, board_log
from station.bus import EventBus
from station.store import Database
from station.store import board_logs as store


def _lines(board_id: str, count: int, level: str = "info", start: int = 0) -> list[store.NewLine]:
    return [store.NewLine(board_id, level, f"line {start + i}", None, 1000.0 + start + i) for i in range(count)]


def _messages(database: Database, board_id: str) -> list[str]:
    return [line["message"] for line in store.list_lines(database, board_id, None, 10_000)]


def test_pruning_keeps_the_newest_lines_of_that_board_only(database: Database) -> None:
    store.append_lines(database, _lines("a", 30) + _lines("b", 5))
    store.append_lines(database, _lines("a", 10, start=30), prune_boards=["a"], keep=12)
    assert _messages(database, "a") == [f"line {i}" for i in range(28, 40)]
    assert _messages(database, "b") == [f"line {i}" for i in range(5)]  # untouched

    assert store.prune(database, "b", keep=2) == 3
    assert _messages(database, "b") == ["line 3", "line 4"]
    assert store.prune(database, "b", keep=2) == 0  # nothing more to drop
    assert store.count(database, "a") == 12


def test_listing_filters_by_level_and_pages_after_an_id(database: Database) -> None:
    levels = ["debug", "info", "warning", "error"] * 5
    store.append_lines(database, [store.NewLine("a", level, f"{level} {i}", i, float(i))
                                  for i, level in enumerate(levels)])
    warnings = store.list_lines(database, "a", None, 100, ("warning", "error"))
    assert [line["level"] for line in warnings] == ["warning", "error"] * 5
    assert set(warnings[0]) == {"id", "level", "message", "board_ts", "received_at"}
    assert warnings[0]["board_ts"] == 2

    newest = store.list_lines(database, "a", None, 3)
    assert [line["message"] for line in newest] == ["info 17", "warning 18", "error 19"]  # oldest first

    first = store.list_lines(database, "a", 0, 8)
    second = store.list_lines(database, "a", first[-1]["id"], 8)
    third = store.list_lines(database, "a", second[-1]["id"], 8)
    assert [line["message"] for line in first + second + third] == [f"{lv} {i}" for i, lv in enumerate(levels)]
    assert store.list_lines(database, "a", third[-1]["id"], 8) == []
    assert store.list_lines(database, "nobody", None, 8) == []


def test_board_log_event_from_log_and_error_messages() -> None:
    logged = board_log("a", make(LOG, level="warning", msg="low battery", ts=1_800_000_000))
    assert (logged.level, logged.message, logged.board_ts) == ("warning", "low battery", 1_800_000_000)
    error = board_log("a", make(ERROR, code="bad_config", msg="heartbeat_s out of range"))
    assert (error.level, error.message, error.board_ts) == ("error", "bad_config: heartbeat_s out of range", None)
    hostile = board_log("a", make(LOG, level="info", msg="\x1b[2Jcleared\nforged line" + "x" * 500, ts=2**64 - 1))
    assert len(hostile.message) == MESSAGE_MAX_CHARS and hostile.message.isprintable()
    assert hostile.message.startswith(" [2Jcleared forged line") and hostile.board_ts is None


async def test_log_book_stores_bus_events_in_one_batch_and_prunes(database: Database, bus: EventBus) -> None:
    book = BoardLogBook(database, bus, keep=10)
    book.start()
    for i in range(PRUNE_EVERY_LINES + 5):
        bus.publish(BoardLog(board_id="a", level="info", message=f"line {i}", board_ts=None))
    bus.publish(BoardLog(board_id="b", level="error", message="boom", board_ts=7))
    assert store.count(database, "a") == 0  # waiting for the batch
    await asyncio.sleep(FLUSH_DELAY_S * 2)
    assert store.count(database, "a") == 10  # written, and pruned at its first flush
    assert _messages(database, "a") == [f"line {i}" for i in range(PRUNE_EVERY_LINES - 5, PRUNE_EVERY_LINES + 5)]

    bus.publish(BoardLog(board_id="a", level="warning", message="listed at once", board_ts=None))
    lines = book.lines("a", min_level="warning")  # a listing flushes what waits
    assert [(line["level"], line["message"]) for line in lines] == [("warning", "listed at once")]
    assert book.lines("b", limit=5)[0]["board_ts"] == 7
    with pytest.raises(InvalidBoardInput, match="loud"):
        book.lines("a", min_level="loud")

    book.close()
    bus.publish(BoardLog(board_id="a", level="info", message="after close", board_ts=None))
    assert "after close" not in _messages(database, "a")
    assert store.count(database, "a") == 11  # pruned again only after PRUNE_EVERY_LINES more
