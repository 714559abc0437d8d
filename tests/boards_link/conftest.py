"""A station's boards service in the test's event loop (real SQLite, real bus, real CA in
tmp_path) and real MicroPython agents on ptys that the service opens like serial ports."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from station.boards.service import BoardService
from station.boards.session import BoardSession
from station.boards.transport import BoardTransport, open_transport
from station.bus import Event, EventBus
from station.config import BoardLinkConfig, BoardsConfig
from station.store import Database, open_database
from tests.edge_agent_runtime.board import Board, board_maker

WAIT_S = 15.0  # any one expected step: a cold MicroPython start and a handshake take well under 1 s
POLL_S = 0.05
# Fast agent intervals; the watchdog stays far above a SIGSTOP of a few seconds.
AGENT: dict[str, Any] = {"heartbeat_s": 0.5, "telemetry_s": 1.0, "watchdog_s": 60.0, "enroll_timeout_s": 5.0}
LINK = BoardsConfig(heartbeat_timeout_s=1.5, offline_after_s=3.0, backoff_initial_s=0.2, backoff_max_s=1.0)


class LinkBoard(Board):
    """A Board whose station end (the pty slave) is opened by the service under test."""

    def _read_loop(self) -> None:
        return  # the station reads the wire, not a test thread

    @property
    def url(self) -> str:
        return "pty://" + os.ttyname(self.slave)

    def boot(self, *extra: str) -> dict[str, Any]:
        self.start("--auth", "session", *extra)
        return {}


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(POLL_S)


class Recorder:
    """Every bus event, and a bounded wait for one matching a type and fields."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        bus.subscribe(Event, self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def mark(self) -> int:
        return len(self.events)

    async def wait_for(self, kind: type[Event], after: int = 0, timeout: float = WAIT_S, **fields: Any) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
                    return event
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [type(event).__name__ for event in self.events[after:]]
                raise AssertionError(f"no {kind.__name__} {fields} within {timeout} s; saw {seen}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue


@dataclass
class Opener:
    """open_transport, counting the opens: pyserial flushes a port's input when it opens it, so
    a test starts an agent only once the station holds the link."""

    opened: list[str] = field(default_factory=list)

    async def __call__(self, url: str) -> BoardTransport:
        transport = await open_transport(url)
        self.opened.append(url)
        return transport


@dataclass
class Station:
    service: BoardService
    recorder: Recorder
    opener: Opener
    database: Database

    @property
    def session(self) -> BoardSession:
        return self.service._sessions[0]

    async def wait_opened(self, count: int = 1) -> None:
        await eventually(lambda: len(self.opener.opened) >= count, what=f"{count} opens of the link")


@pytest.fixture
def make_board(tmp_path: Path) -> Iterator[Callable[..., LinkBoard]]:
    with board_maker(tmp_path, LinkBoard, AGENT) as make:
        yield make


@pytest.fixture
async def make_station(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Station] = []

    async def make(*urls: str, **overrides: Any) -> Station:
        database = open_database(tmp_path / f"station-{len(started)}.db")
        bus = EventBus()
        links = [BoardLinkConfig(name=f"b{index}", url=url) for index, url in enumerate(urls)]
        config = LINK.model_copy(update={"links": links, **overrides})
        opener = Opener()
        service = BoardService(config, database, bus, tmp_path / "data", opener)
        station = Station(service, Recorder(bus), opener, database)
        started.append(station)
        await service.start()
        return station

    try:
        yield make
    finally:
        for station in started:
            await asyncio.wait_for(station.service.stop(), WAIT_S)
            station.database.close()


def give_code(board: LinkBoard, station: Station) -> None:
    """Put a fresh one-time enrollment code in the board's config, as scripts/flash-board does."""
    code = station.service.create_code(profile="unix-sim")
    board.storage.save_config({**board.storage.load_config(), "enroll_token": code.code})


async def enrolled(make_board: Callable[..., LinkBoard],
                   make_station: Callable[..., Any]) -> tuple[LinkBoard, Station, str]:
    """A fresh board enrolled with a one-time code and connected: (board, station, board id)."""
    from station.boards.events import BoardOnline

    board = make_board()
    station = await make_station(board.url)
    give_code(board, station)
    await station.wait_opened()
    board.boot()
    online = await station.recorder.wait_for(BoardOnline)
    return board, station, online.board_id
