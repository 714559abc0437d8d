"""Presence with a controllable clock: registration, offline after the threshold, online
again, the radio's node list as a silent baseline, and restarts that announce nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from station.bus import Event, EventBus
from station.mesh.events import NodeUpdated, RadioLinkChanged
from station.presence import NodeOffline, NodeOnline, NodeRegistered, PresenceService
from station.store import mesh as mesh_store
from station.store import open_database

OFFLINE_AFTER_S = 7200.0
ANN, BOB, CAT = "!000000a1", "!000000b2", "!000000c3"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "station.db"
        self.clock = Clock()
        self.events: list[Event] = []

    async def start(self) -> PresenceService:
        self.database = open_database(self.path)
        self.bus = EventBus()
        for kind in (NodeRegistered, NodeOnline, NodeOffline):
            self.bus.subscribe(kind, self.events.append)
        self.service = PresenceService(OFFLINE_AFTER_S, self.database, self.bus, self.clock)
        await self.service.start()
        return self.service

    async def restart(self) -> PresenceService:
        await self.service.stop()
        self.database.close()
        return await self.start()

    def hear(self, node: str) -> None:
        self.bus.publish(NodeUpdated(node_id=node, changes={}))

    def seen(self) -> list[tuple[str, str]]:
        return [(type(e).__name__, e.node_id) for e in self.events]  # type: ignore[attr-defined]

    def radio_lists(self, *nodes: tuple[str, float | None]) -> None:
        """What Receiver.import_nodes does at connect, then the link's RadioLinkChanged."""
        for node, last_heard in nodes:
            fields = {"node_id": node, "last_heard": last_heard}
            mesh_store.upsert_node(self.database, int(node[1:], 16), fields)
        self.bus.publish(RadioLinkChanged(radio="r0", state="connected", reason=None))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    await h.start()
    yield h
    await h.service.stop()
    h.database.close()


async def test_first_heard_registers_then_offline_then_online(harness: Harness) -> None:
    presence = harness.service
    harness.hear(ANN)
    harness.hear(ANN)
    assert harness.seen() == [("NodeRegistered", ANN)]
    assert isinstance(harness.events[0], NodeRegistered) and harness.events[0].source == "packet"
    harness.clock.advance(OFFLINE_AFTER_S - 1)
    assert presence.sweep() == []
    harness.clock.advance(1)
    assert presence.sweep() == [ANN]
    offline = harness.events[-1]
    assert isinstance(offline, NodeOffline) and offline.last_heard == harness.clock.now - OFFLINE_AFTER_S
    assert presence.sweep() == []  # announced once
    harness.clock.advance(600)
    harness.hear(ANN)
    online = harness.events[-1]
    assert isinstance(online, NodeOnline)
    assert online.offline_for_s == 600 and online.last_heard == harness.clock.now - 600 - OFFLINE_AFTER_S
    assert presence.online_nodes() == [ANN]
    assert presence.health.detail == {"nodes": 1, "online": 1, "offline": 0}


async def test_hearing_a_node_keeps_it_online(harness: Harness) -> None:
    harness.hear(ANN)
    for _ in range(10):
        harness.clock.advance(OFFLINE_AFTER_S / 2)
        harness.hear(ANN)
        assert harness.service.sweep() == []
    assert harness.seen() == [("NodeRegistered", ANN)]


async def test_restart_announces_nothing_again(harness: Harness) -> None:
    harness.hear(ANN)
    harness.hear(BOB)
    harness.clock.advance(OFFLINE_AFTER_S)
    harness.hear(BOB)
    harness.service.sweep()
    assert harness.seen() == [("NodeRegistered", ANN), ("NodeRegistered", BOB), ("NodeOffline", ANN)]
    presence = await harness.restart()
    harness.hear(BOB)
    assert presence.sweep() == []
    assert presence.status(ANN)["online"] is False  # type: ignore[index]
    harness.hear(ANN)
    assert harness.seen()[-1] == ("NodeOnline", ANN)
    assert len(harness.events) == 4


async def test_silence_counts_only_while_the_station_listens(harness: Harness) -> None:
    harness.hear(ANN)
    await harness.service.stop()
    harness.database.close()
    harness.clock.advance(3 * OFFLINE_AFTER_S)  # the station was off for six hours
    presence = await harness.start()
    assert presence.sweep() == []  # not declared offline the moment it starts
    harness.clock.advance(OFFLINE_AFTER_S)
    assert presence.sweep() == [ANN]


async def test_last_heard_survives_a_restart_within_a_minute(harness: Harness) -> None:
    harness.hear(ANN)
    harness.clock.advance(30)
    harness.hear(ANN)  # not written yet (once a minute), but flushed at stop
    presence = await harness.restart()
    assert presence.status(ANN)["last_heard_at"] == harness.clock.now  # type: ignore[index]


async def test_radio_node_list_is_a_silent_baseline_on_a_fresh_station(harness: Harness) -> None:
    now = harness.clock.now
    harness.radio_lists((ANN, now - 60), (BOB, now - 3 * OFFLINE_AFTER_S), (CAT, None))
    assert harness.events == []
    presence = harness.service
    assert [n["node_id"] for n in presence.nodes() if n["online"]] == [ANN]
    harness.hear(ANN)
    harness.hear(BOB)
    assert harness.seen() == [("NodeOnline", BOB)]  # known, but offline until now


async def test_after_the_baseline_a_new_node_in_the_radio_list_is_registered(harness: Harness) -> None:
    harness.hear(ANN)
    harness.radio_lists((ANN, harness.clock.now), (BOB, harness.clock.now - 10))
    registered = [e for e in harness.events if isinstance(e, NodeRegistered)]
    assert [(e.node_id, e.source) for e in registered] == [(ANN, "packet"), (BOB, "radio")]
    harness.hear(BOB)
    assert len(harness.events) == 2


async def test_upgrade_with_a_populated_node_database_is_a_baseline(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    database = open_database(h.path)
    mesh_store.upsert_node(database, 0xA1, {"node_id": ANN, "last_heard": h.clock.now - 10})
    database.close()
    presence = await h.start()
    assert h.events == [] and presence.online_nodes() == [ANN]
    h.hear(ANN)
    assert h.events == []
    await presence.stop()
    h.database.close()


async def test_sweep_interval_follows_the_threshold() -> None:
    assert PresenceService(7200, None, EventBus()).sweep_interval_s == 60  # type: ignore[arg-type]
    assert PresenceService(2, None, EventBus()).sweep_interval_s == pytest.approx(0.1)  # type: ignore[arg-type]
