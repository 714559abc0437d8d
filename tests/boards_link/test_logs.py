"""Board log lines from a real MicroPython agent: a write_config command makes the agent log
"config written: ..." over its sealed session; the station publishes a BoardLog event and
stores the line for `firefly board logs`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from station.boards.events import BoardLog
from station.store import board_logs as store
from tests.boards_link.conftest import LinkBoard, Station, enrolled, eventually

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]


async def test_a_board_log_line_is_published_and_stored(make_board: MakeBoard, make_station: MakeStation) -> None:
    _board, station, board_id = await enrolled(make_board, make_station)

    mark = station.recorder.mark()
    result = await station.service.command(board_id, "write_config", {"telemetry_s": 2.0, "log_level": "info"},
                                           timeout_s=5.0)
    assert result.ok
    event = await station.recorder.wait_for(BoardLog, after=mark, board_id=board_id)
    assert (event.level, event.message) == ("info", "config written: log_level, telemetry_s")

    # written by the log book's batch on its own, not only when a reader asks
    await eventually(lambda: store.count(station.database, board_id) >= 1, what="the line stored")
    stored = store.list_lines(station.database, board_id, None, 100)
    assert [(line["level"], line["message"]) for line in stored] == [("info", "config written: log_level, telemetry_s")]
    assert stored[0]["received_at"] >= event.at - 1
    assert station.service.logbook.lines(board_id, min_level="warning") == []
    assert station.service.logbook.lines(board_id, after=stored[0]["id"]) == []
