"""The zone service against a real SQLite store and the bus: CRUD, config zones read-only,
crossings published after commit, and no repeated entry after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from station.bus import EventBus
from station.config import ZoneConfig
from station.mesh.events import NodePositionUpdated
from station.store import mesh as mesh_store
from station.store import open_database
from station.zones import (
    InvalidZone,
    ZoneCrossed,
    ZoneEntered,
    ZoneExists,
    ZoneExited,
    ZoneNotFound,
    ZoneReadOnly,
    ZoneService,
)
from station.zones.geometry import METERS_PER_DEGREE

LAT, LON = 46.5588, 6.7812
NODE = "!0000abcd"
CONFIGURED = [ZoneConfig(name="base", center=(LAT, LON), radius_m=300, description="from the file")]


def north(metres: float) -> float:
    return LAT + metres / METERS_PER_DEGREE


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "station.db"
        self.events: list[ZoneCrossed] = []

    async def start(self, configured: list[ZoneConfig] | None = None) -> ZoneService:
        self.database = open_database(self.path)
        self.bus = EventBus()
        self.bus.subscribe(ZoneCrossed, self.events.append)
        self.service = ZoneService(CONFIGURED if configured is None else configured, 25.0,
                                   self.database, self.bus)
        await self.service.start()
        return self.service

    async def restart(self, configured: list[ZoneConfig] | None = None) -> ZoneService:
        await self.service.stop()
        self.database.close()
        return await self.start(configured)

    def report(self, metres_north: float, node: str = NODE) -> None:
        self.bus.publish(NodePositionUpdated(node_id=node, latitude=north(metres_north), longitude=LON,
                                             altitude=None))

    def seen(self) -> list[tuple[str, str, str]]:
        return [(type(e).__name__, e.zone, e.node_id) for e in self.events]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    await h.start()
    yield h
    await h.service.stop()
    h.database.close()


async def test_crossings_are_published_and_kept(harness: Harness) -> None:
    zones = harness.service
    mesh_store.upsert_node(harness.database, 0xABCD, {"node_id": NODE, "long_name": "Ranger Ann"})
    harness.report(1000)
    harness.report(0)
    assert harness.seen() == [("ZoneEntered", "base", NODE)]
    event = harness.events[0]
    assert isinstance(event, ZoneEntered) and event.latitude == pytest.approx(LAT)
    inside = zones.nodes_in_zone("base")
    assert [(n["node_id"], n["long_name"]) for n in inside] == [(NODE, "Ranger Ann")]
    harness.report(5000)
    assert harness.seen()[-1] == ("ZoneExited", "base", NODE)
    assert isinstance(harness.events[-1], ZoneExited)
    assert zones.nodes_in_zone("base") == []
    logged = zones.events("base")
    assert [e["kind"] for e in logged] == ["entered", "exited"]
    assert zones.events("base", after=logged[0]["seq"]) == logged[1:]
    assert zones.health.detail["entries"] == 1 and zones.health.detail["exits"] == 1


async def test_restart_does_not_announce_an_entry_again(harness: Harness) -> None:
    harness.report(0)
    assert len(harness.events) == 1
    zones = await harness.restart()
    harness.report(10)
    assert len(harness.events) == 1  # still inside, known from the store
    assert [n["node_id"] for n in zones.nodes_in_zone("base")] == [NODE]
    harness.report(5000)
    assert harness.seen()[-1][0] == "ZoneExited"


async def test_create_update_delete_an_api_zone(harness: Harness) -> None:
    zones = harness.service
    created = zones.create("spring", center=[north(2000), LON], radius_m=100, description="water")
    assert created.source == "api" and created.id and created.kind == "circle"
    assert [z.name for z in zones.list()] == ["base", "spring"]
    harness.report(2000)
    assert harness.seen()[-1] == ("ZoneEntered", "spring", NODE)
    bigger = zones.update("spring", radius_m=400)
    assert bigger.to_dict()["radius_m"] == 400 and bigger.description == "water"
    assert [n["node_id"] for n in zones.nodes_in_zone("spring")] == [NODE]  # membership kept
    square = [[north(1900), LON - 0.002], [north(2100), LON - 0.002], [north(2100), LON + 0.002],
              [north(1900), LON + 0.002]]
    polygon = zones.update("spring", points=square)
    assert polygon.kind == "polygon" and polygon.to_dict()["center"] is None
    off = zones.update("spring", active=False)
    assert not off.active and zones.nodes_in_zone("spring") == []
    count = len(harness.events)
    harness.report(2000)
    assert len(harness.events) == count  # inactive zones are not evaluated
    zones.update("spring", active=True)
    harness.report(2001)
    assert harness.seen()[-1] == ("ZoneEntered", "spring", NODE)
    zones.delete("spring")
    with pytest.raises(ZoneNotFound):
        zones.get("spring")
    await harness.restart()
    assert [z.name for z in harness.service.list()] == ["base"]


async def test_api_zones_survive_a_restart_with_their_members(harness: Harness) -> None:
    harness.service.create("spring", points=[[north(-150), LON - 0.003], [north(150), LON - 0.003],
                                             [north(0), LON + 0.003]])
    harness.report(0)
    zones = await harness.restart()
    assert zones.get("spring").kind == "polygon"
    assert [n["node_id"] for n in zones.nodes_in_zone("spring")] == [NODE]


async def test_config_zones_are_read_only_and_names_unique(harness: Harness) -> None:
    zones = harness.service
    assert zones.get("base").source == "config"
    with pytest.raises(ZoneReadOnly):
        zones.update("base", radius_m=10)
    with pytest.raises(ZoneReadOnly):
        zones.delete("base")
    with pytest.raises(ZoneExists):
        zones.create("base", center=[LAT, LON], radius_m=10)
    zones.create("spring", center=[LAT, LON], radius_m=10)
    with pytest.raises(ZoneExists):
        zones.create("spring", center=[LAT, LON], radius_m=10)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "bad name", "center": [LAT, LON], "radius_m": 10}, "name"),
        ({"name": "z", "center": [91, LON], "radius_m": 10}, "center.0"),
        ({"name": "z", "center": [LAT, 181], "radius_m": 10}, "center.1"),
        ({"name": "z", "center": [LAT, LON], "radius_m": 0.5}, "radius_m"),
        ({"name": "z", "center": [LAT, LON], "radius_m": 2_000_000}, "radius_m"),
        ({"name": "z", "center": [LAT, LON]}, "radius_m"),
        ({"name": "z", "radius_m": 10}, "center"),
        ({"name": "z"}, "center"),
        ({"name": "z", "points": [[1, 1], [1, 2]]}, "points"),
        ({"name": "z", "points": [[1, 1], [1, 2], [1, 1]]}, "points"),
        ({"name": "z", "points": [[1, 1]] * 501}, "points"),
        ({"name": "z", "points": [[1, 1], [1, 2], [2, 2]], "center": [LAT, LON]}, "center"),
    ],
)
async def test_bad_zones_are_refused_naming_the_field(harness: Harness, fields: dict[str, Any],
                                                    field: str) -> None:
    with pytest.raises(InvalidZone) as caught:
        harness.service.create(**fields)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert [z.name for z in harness.service.list()] == ["base"]


async def test_memberships_of_zones_gone_from_the_config_are_forgotten(harness: Harness) -> None:
    harness.report(0)
    zones = await harness.restart(configured=[])
    assert zones.list() == []
    zones = await harness.restart()
    harness.report(0)
    assert [e[0] for e in harness.seen()] == ["ZoneEntered", "ZoneEntered"]  # it re-entered a new zone
