"""The zone and group endpoints in-process (the real app over ASGI, real SQLite): status
codes 201/404/409/422 with the field named, and the token requirement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from station.api.app import create_app
from station.bus import EventBus
from station.config import ZoneConfig
from station.mesh.events import NodePositionUpdated
from station.presence import PresenceService
from station.store import open_database
from station.zones import ZoneService

TOKEN = "test-admin-token"
LAT, LON = 46.5588, 6.7812
NODE = "!0000abcd"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SimpleNamespace]]:
    database = open_database(tmp_path / "station.db")
    bus = EventBus()
    zones = ZoneService([ZoneConfig(name="base", center=(LAT, LON), radius_m=300)], 25.0, database, bus)
    presence = PresenceService(7200.0, database, bus)
    await zones.start()
    await presence.start()
    station = SimpleNamespace(admin_token=TOKEN, database=database, bus=bus, zones=zones, presence=presence,
                              groups=presence.groups, services=[zones, presence])
    transport = httpx.ASGITransport(app=create_app(station))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://station/api/v1",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, station
    await presence.stop()
    await zones.stop()
    database.close()


def detail(response: httpx.Response) -> Any:
    return response.json()["detail"]


async def test_zone_crud_and_errors(api: tuple[httpx.AsyncClient, SimpleNamespace]) -> None:
    client, _ = api
    circle = {"name": "spring", "center": [LAT + 0.01, LON], "radius_m": 150, "description": "water"}
    created = await client.post("/zones", json=circle)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "circle" and created.json()["source"] == "api"
    again = await client.post("/zones", json=circle)
    assert again.status_code == 409 and detail(again)["field"] == "name"
    listed = (await client.get("/zones")).json()["zones"]
    assert [z["name"] for z in listed] == ["base", "spring"]
    changed = await client.put("/zones/spring", json={"radius_m": 500, "active": False})
    assert changed.status_code == 200
    assert (changed.json()["radius_m"], changed.json()["active"]) == (500, False)
    assert (await client.get("/zones/spring")).json()["description"] == "water"
    assert (await client.delete("/zones/spring")).json() == {"deleted": "spring"}
    missing = await client.get("/zones/spring")
    assert missing.status_code == 404 and detail(missing)["field"] == "name"
    assert (await client.put("/zones/spring", json={"radius_m": 5})).status_code == 404
    assert (await client.get("/zones/spring/nodes")).status_code == 404


async def test_config_zones_are_read_only(api: tuple[httpx.AsyncClient, SimpleNamespace]) -> None:
    client, _ = api
    refused = [await client.put("/zones/base", json={"radius_m": 5}), await client.delete("/zones/base")]
    for response in refused:
        assert response.status_code == 409
        assert "config file" in detail(response)["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "z", "center": [LAT, LON], "radius_m": 0}, "radius_m"),
        ({"name": "z", "center": [95, LON], "radius_m": 10}, "center.0"),
        ({"name": "z", "center": [LAT, LON]}, "radius_m"),
        ({"name": "z", "points": [[1, 1], [1, 1], [1, 1]]}, "points"),
        ({"name": "z z", "center": [LAT, LON], "radius_m": 10}, "name"),
    ],
)
async def test_invalid_zone_is_422_naming_the_field(api: tuple[httpx.AsyncClient, SimpleNamespace],
                                                   body: dict[str, Any], field: str) -> None:
    client, _ = api
    response = await client.post("/zones", json=body)
    assert response.status_code == 422
    assert detail(response)["field"] == field


async def test_nodes_in_zone_and_events(api: tuple[httpx.AsyncClient, SimpleNamespace]) -> None:
    client, station = api
    station.bus.publish(NodePositionUpdated(node_id=NODE, latitude=LAT, longitude=LON, altitude=None))
    nodes = (await client.get("/zones/base/nodes")).json()
    assert [n["node_id"] for n in nodes["nodes"]] == [NODE]
    events = (await client.get("/zones/base/events")).json()["events"]
    assert [(e["kind"], e["node_id"]) for e in events] == [("entered", NODE)]


async def test_node_groups(api: tuple[httpx.AsyncClient, SimpleNamespace]) -> None:
    client, _ = api
    assert (await client.get(f"/mesh/nodes/{NODE}/groups")).json() == {"node_id": NODE, "groups": []}
    put = await client.put(f"/mesh/nodes/{NODE}/groups", json={"groups": ["rangers", "medics"]})
    assert put.json() == {"node_id": NODE, "groups": ["medics", "rangers"], "added": ["medics", "rangers"],
                          "removed": []}
    group = (await client.get("/groups/rangers")).json()
    assert [m["node_id"] for m in group["members"]] == [NODE]
    assert (await client.get("/groups/nobody")).status_code == 404
    bad_node = await client.put("/mesh/nodes/bob/groups", json={"groups": ["x"]})
    assert bad_node.status_code == 422 and detail(bad_node)["field"] == "node_id"
    bad_group = await client.put(f"/mesh/nodes/{NODE}/groups", json={"groups": ["a b"]})
    assert bad_group.status_code == 422 and detail(bad_group)["field"] == "groups"


async def test_token_is_required(api: tuple[httpx.AsyncClient, SimpleNamespace]) -> None:
    client, _ = api
    for path in ("/zones", "/zones/base/nodes", f"/mesh/nodes/{NODE}/groups", "/groups/rangers"):
        response = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401, path
