"""Fifty virtual boards on one station: every one a real MicroPython agent that enrolls with its
own one-time code, authenticates (mutual handshake, sealed frames) and then keeps its heartbeats
on time for a whole observation window, none ever stale or offline.

Sizing, measured on the 2-core build machine (unix port, agents from source): an agent takes
~80 ms of CPU from spawn to connected (boot, enrollment, handshake), then ~1.4 ms of CPU per
second at 1 Hz heartbeats, and ~13.5 MB RSS; 50 boards are all connected ~2.6 s after the first
spawn, and the in-loop station spends ~22 ms of CPU per second on their heartbeats. The test
takes ~30 s, most of it the observation window.

The rule for "on time": the agent schedules heartbeats against its own clock and skips (never
bursts) beats it was too late for, so over a window of W seconds a board sends W / interval
beats, give or take one at each edge. A board passes if, at the station,
- it stays `connected` at every sample and no stale/offline transition is published;
- it never goes longer than MAX_GAP_BEATS intervals without a heartbeat (one missed beat,
  plus half an interval for scheduling on a loaded machine): so it misses at most one in a row;
- its count over the window is at least W / interval - 1: so it misses at most one in total
  (scheduling jitter may move one beat across the window's edge).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from station.boards import BoardStateChanged, LinkState
from station.boards.events import BoardOffline, BoardOnline
from station.boards.session import BoardSession
from tests.boards_link.conftest import LinkBoard, Station, eventually, give_code

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]

BOARDS = 50
HEARTBEAT_S = 1.0  # the benchmark's 1 Hz; the field default is 5 s, a shorter beat is the harder case
WINDOW_S = 20.0  # 20 beats per board, 1,000 in all
SAMPLE_S = 0.1  # how often the station's counters and states are sampled
MAX_GAP_BEATS = 2.5  # see the module docstring
CODES_AT_ONCE = 20  # the station keeps at most 20 unused codes live (enrollment.py): enroll in waves
CONNECT_TIMEOUT_S = 40.0  # a wave takes ~1 s here; generous for a loaded CI runner
# The station's view of a late board: stale after three missed beats, offline after six, so
# the gap rule above fails a slow board long before the link would.
LINK_OVERRIDES = {"heartbeat_timeout_s": 3 * HEARTBEAT_S, "offline_after_s": 6 * HEARTBEAT_S}
AGENT = {"heartbeat_s": HEARTBEAT_S, "telemetry_s": 5.0, "watchdog_s": 60.0, "enroll_timeout_s": 10.0}


@dataclass
class BeatLog:
    """One board's heartbeats as the station counts them, sampled every SAMPLE_S."""

    session: BoardSession
    start_count: int = 0
    last_count: int = 0
    last_change: float = 0.0
    longest_gap_s: float = 0.0
    bad_states: set[str] | None = None

    def begin(self, now: float) -> None:
        self.start_count = self.last_count = self.session.counters.heartbeats
        self.last_change = now
        self.bad_states = set()

    def sample(self, now: float) -> None:
        count = self.session.counters.heartbeats
        if count != self.last_count:
            self.last_count, self.last_change = count, now
        self.longest_gap_s = max(self.longest_gap_s, now - self.last_change)
        if self.session.state is not LinkState.CONNECTED:
            assert self.bad_states is not None
            self.bad_states.add(self.session.state.value)

    @property
    def beats(self) -> int:
        return self.last_count - self.start_count


async def _enroll_all(boards: list[LinkBoard], station: Station) -> None:
    """One fresh code per board, CODES_AT_ONCE boards at a time, each wave connected before the next."""
    await station.wait_opened(len(boards))  # pyserial flushes a pty it opens: hold every link first
    for first in range(0, len(boards), CODES_AT_ONCE):
        wave = boards[first:first + CODES_AT_ONCE]
        for board in wave:
            give_code(board, station)
            board.boot()
        expected = first + len(wave)

        def wave_connected(count: int = expected) -> bool:
            return _online(station) >= count

        await eventually(wave_connected, CONNECT_TIMEOUT_S, what=f"{expected} boards connected")


def _online(station: Station) -> int:
    return sum(isinstance(event, BoardOnline) for event in station.recorder.events)


async def test_fifty_boards_stay_connected_with_heartbeats_on_time(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    boards = [make_board(AGENT, name=f"board-{index}") for index in range(BOARDS)]
    station = await make_station(*(board.url for board in boards), **LINK_OVERRIDES)
    started = time.monotonic()
    await _enroll_all(boards, station)
    connect_s = time.monotonic() - started

    sessions = station.service._sessions
    assert all(session.state is LinkState.CONNECTED for session in sessions)
    assert sum(session.counters.enrollments for session in sessions) == BOARDS
    board_ids = {session.board_id for session in sessions}
    assert len(board_ids) == BOARDS and None not in board_ids
    assert station.service.health.detail == {"links": BOARDS, "states": {"connected": BOARDS}}

    logs = [BeatLog(session) for session in sessions]
    await asyncio.sleep(2 * HEARTBEAT_S)  # the first beat after the handshake is in for every board
    mark = station.recorder.mark()
    window_start = time.monotonic()
    for log in logs:
        log.begin(window_start)
    while (now := time.monotonic()) - window_start < WINDOW_S:
        for log in logs:
            log.sample(now)
        await asyncio.sleep(SAMPLE_S)
    for log in logs:
        log.sample(time.monotonic())

    expected = WINDOW_S / HEARTBEAT_S
    late = {log.session.board_id: {"beats": log.beats, "longest_gap_s": round(log.longest_gap_s, 2),
                                   "states": sorted(log.bad_states or ())}
            for log in logs
            if log.beats < expected - 1 or log.longest_gap_s > MAX_GAP_BEATS * HEARTBEAT_S or log.bad_states}
    assert not late, f"{len(late)} of {BOARDS} boards fell behind (connected in {connect_s:.1f} s): {late}"
    assert all(log.beats <= expected + 1 for log in logs), "an agent burst heartbeats instead of skipping late ones"
    left = [event for event in station.recorder.events[mark:]
            if isinstance(event, BoardOffline)
            or (isinstance(event, BoardStateChanged) and event.new in ("stale", "offline"))]
    assert left == []
    assert all(session.counters.reconnects == 0 and session.counters.dropped_mac == 0
               and session.counters.dropped_replay == 0 for session in sessions)
    assert all(board.process is not None and board.process.poll() is None for board in boards)
