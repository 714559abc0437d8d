"""The station's board link against real MicroPython agents on ptys: enrollment with a
one-time code, the authenticated session, heartbeats, a sealed command round trip,
revocation, a wrong code, and a board that stops answering and comes back."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable

import pytest

from station.boards import BoardNotFound, BoardStateChanged, LinkState
from station.boards.events import BoardOffline, BoardOnline, BoardTelemetry
from tests.boards_link.conftest import LinkBoard, Station, enrolled, eventually

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]


async def test_fresh_board_enrolls_connects_and_reconnects_without_a_code(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    session = station.session
    assert session.state is LinkState.CONNECTED and session.board_id == board_id
    assert session.counters.enrollments == 1
    record = station.service.trust.registry.get(board_id)
    assert record.state == "connected" and record.profile == "unix-sim"
    assert record.agent_version and "heartbeat" in record.capabilities
    await eventually(lambda: session.counters.heartbeats >= 3, what="three heartbeats")
    await station.recorder.wait_for(BoardTelemetry, board_id=board_id)
    assert station.service.health.detail == {"links": 1, "states": {"connected": 1}}
    assert board.storage.load_config().get("enroll_token") is None  # the agent dropped the used code

    mark = station.recorder.mark()
    board.kill9()
    board.boot()  # same state directory: it holds the certificate now
    await station.recorder.wait_for(BoardOnline, after=mark, board_id=board_id)
    assert session.counters.enrollments == 1 and session.counters.auth_refused == 0
    heartbeats = session.counters.heartbeats
    await eventually(lambda: session.counters.heartbeats >= heartbeats + 2, what="heartbeats after the restart")
    assert session.counters.dropped_replay == 0


async def test_command_round_trip_over_the_sealed_session(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    _board, station, board_id = await enrolled(make_board, make_station)
    result = await station.service.command(board_id, "read_sensor", {"name": "temperature"}, timeout_s=5.0)
    assert result.ok and isinstance(result.value, int | float)
    everything = await station.service.command(board_id, "read_sensor", timeout_s=5.0)
    assert everything.ok and set(everything.value) == {"temperature", "battery"}
    refused = await station.service.command(board_id, "run", {"name": "no-such-handler"}, timeout_s=5.0)
    assert not refused.ok and refused.error


async def test_revocation_closes_the_session_at_once_and_a_reconnect_is_refused(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    mark = station.recorder.mark()
    station.service.revoke(board_id, "lost in the field", by="test")
    offline = await station.recorder.wait_for(BoardOffline, after=mark, timeout=2.0, board_id=board_id)
    assert offline.reason == "revoked"
    assert station.session.state is not LinkState.CONNECTED

    await station.wait_opened(2)  # the station holds the link again: the restarted board's hello is read
    board.kill9()
    board.boot()
    await eventually(lambda: station.session.counters.auth_refused >= 1, what="the refused handshake")
    assert station.session.status()["state"] != LinkState.CONNECTED
    assert station.service.trust.registry.get(board_id).state == "revoked"
    assert not [event for event in station.recorder.events[mark:] if isinstance(event, BoardOnline)]


async def test_a_wrong_enrollment_code_is_refused(make_board: MakeBoard, make_station: MakeStation) -> None:
    board = make_board({"enroll_token": "ZZZZ-ZZZZ"})
    station = await make_station(board.url)
    station.service.create_code(profile="unix-sim")  # a live code exists, but not this one
    await station.wait_opened()
    board.boot()
    await eventually(lambda: station.session.counters.enrollments_refused == 1, what="the refused enrollment")
    await eventually(lambda: "enrollment failed" in board.stderr(), what="the agent's log of the refusal")
    assert "unknown_code" in board.stderr()
    assert not board.storage.is_enrolled()
    assert station.service.trust.registry.list() == []
    with pytest.raises(BoardNotFound):
        station.service.trust.registry.get(str(board.storage.load_identity().board_id))  # type: ignore[union-attr]


async def test_a_silent_board_goes_stale_then_offline_and_comes_back(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    assert board.process is not None
    mark = station.recorder.mark()
    os.kill(board.process.pid, signal.SIGSTOP)
    try:
        await station.recorder.wait_for(BoardStateChanged, after=mark, board_id=board_id, new="stale")
        offline = await station.recorder.wait_for(BoardOffline, after=mark, board_id=board_id)
        assert offline.reason == "heartbeat_timeout"
        assert station.service.trust.registry.get(board_id).state == "offline"
        await station.wait_opened(2)  # rebuilt
    finally:
        os.kill(board.process.pid, signal.SIGCONT)
    await station.recorder.wait_for(BoardOnline, after=mark, board_id=board_id)
    assert station.session.counters.resumed == 1  # same boot of the agent: its session went on
    assert station.service.trust.registry.get(board_id).state == "connected"
    heartbeats = station.session.counters.heartbeats
    await eventually(lambda: station.session.counters.heartbeats >= heartbeats + 2, what="heartbeats after SIGCONT")
    result = await station.service.command(board_id, "read_sensor", {"name": "battery"}, timeout_s=5.0)
    assert result.ok
