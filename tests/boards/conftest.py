"""Fixtures for the board trust store: a real SQLite database, a real EventBus, a CA in
tmp_path and a clock the tests move by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.crypto import generate_keypair
from station.boards import BoardCA, BoardEvent, BoardRegistry, Enrollment, FailedRedemptions
from station.bus import EventBus
from station.store import Database

START = 1_800_000_000.0  # 2027-01-15: after the CA's earliest plausible time


class Clock:
    def __init__(self, at: float = START) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


def new_key() -> bytes:
    return generate_keypair()[1]


@pytest.fixture
def clock() -> Clock:
    return Clock()




@pytest.fixture
def events(bus: EventBus) -> list[BoardEvent]:
    seen: list[BoardEvent] = []
    bus.subscribe(BoardEvent, seen.append)
    return seen


@pytest.fixture
def ca(tmp_path: Path) -> BoardCA:
    return BoardCA.open(tmp_path / "data")


@pytest.fixture
def enrollment(database: Database, bus: EventBus, ca: BoardCA, clock: Clock) -> Enrollment:
    return Enrollment(database, bus, ca, cert_valid_days=365, clock=clock,
                      failures=FailedRedemptions(clock=clock))


@pytest.fixture
def registry(database: Database, bus: EventBus, ca: BoardCA, clock: Clock) -> BoardRegistry:
    return BoardRegistry(database, bus, ca, cert_valid_days=365, clock=clock)
