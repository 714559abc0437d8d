from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._processes import MosquittoProcess as Mosquitto
from station.bus import EventBus
from station.store import Database, open_database
from tests.harness import Sim, Station


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[list[Sim]]:
    started: list[Sim] = []
    yield started
    for sim in started:
        sim.kill()


@pytest.fixture
def station_factory(tmp_path: Path) -> Iterator[list[Station]]:
    started: list[Station] = []
    yield started
    for station in started:
        station.kill9()


@pytest.fixture
def make_sim(tmp_path: Path, sim_factory: list[Sim]):  # type: ignore[no-untyped-def]
    def make(*args: str, pty_link: Path | None = None, port: int | None = None) -> Sim:
        sim = Sim(tmp_path, list(args), pty_link=pty_link)
        if port is not None:
            sim.port = port
        sim_factory.append(sim)
        return sim.start()

    return make


@pytest.fixture
def make_station(tmp_path: Path, station_factory: list[Station]):  # type: ignore[no-untyped-def]
    def make(radios: list[tuple[str, str]], wait_connected: bool = True, **overrides: object) -> Station:
        station = Station(tmp_path, radios)
        for key, value in overrides.items():
            setattr(station, key, value)
        station_factory.append(station)
        return station.start(wait_connected)

    return make


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A fresh, fully migrated station database."""
    database = open_database(tmp_path / "station.db")
    yield database
    database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()
