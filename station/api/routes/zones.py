"""Zone endpoints: list, create, read, change and delete zones, who is inside, crossings.
Thin: validation and work happen in station.zones (config-file zones are read-only here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from station.api.auth import require_token
from station.zones import InvalidZone, ZoneExists, ZoneNotFound, ZoneReadOnly, ZoneService
from station.zones.service import MAX_EVENTS_PAGE

router = APIRouter(prefix="/zones", tags=["zones"], dependencies=[Depends(require_token)])


class ZoneIn(BaseModel):
    """Loosely typed on purpose: station.zones checks every field and names the bad one."""

    model_config = ConfigDict(extra="forbid")
    name: str
    center: list[float] | None = Field(default=None, description="[lat, lon] of a circle")
    radius_m: float | None = Field(default=None, description="radius of a circle, 1..1000000 m")
    points: list[list[float]] | None = Field(default=None, description="[[lat, lon], ...] of a polygon")
    description: str = ""
    active: bool = True


class ZoneChange(BaseModel):
    """Only the fields given change; points make it a polygon, center/radius_m a circle."""

    model_config = ConfigDict(extra="forbid")
    center: list[float] | None = None
    radius_m: float | None = None
    points: list[list[float]] | None = None
    description: str | None = None
    active: bool | None = None


async def _zones(request: Request) -> ZoneService:
    service: ZoneService = request.app.state.station.zones
    return service


Zones = Annotated[ZoneService, Depends(_zones)]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ZoneNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "name", "error": str(exc)}) from exc
    except (ZoneExists, ZoneReadOnly) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail={"field": "name", "error": str(exc)}) from exc
    except InvalidZone as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": exc.field, "error": str(exc)}) from exc


@router.get("")
async def list_zones(zones: Zones) -> dict[str, Any]:
    return {"zones": [zone.to_dict() for zone in zones.list()]}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_zone(body: ZoneIn, zones: Zones) -> dict[str, Any]:
    with _errors():
        return zones.create(body.name, center=body.center, radius_m=body.radius_m, points=body.points,
                            description=body.description, active=body.active).to_dict()


@router.get("/{name}")
async def get_zone(name: str, zones: Zones) -> dict[str, Any]:
    with _errors():
        return zones.get(name).to_dict()


@router.put("/{name}")
async def update_zone(name: str, body: ZoneChange, zones: Zones) -> dict[str, Any]:
    with _errors():
        return zones.update(name, **body.model_dump(exclude_none=True)).to_dict()


@router.delete("/{name}")
async def delete_zone(name: str, zones: Zones) -> dict[str, Any]:
    with _errors():
        zones.delete(name)
    return {"deleted": name}


@router.get("/{name}/nodes")
async def nodes_in_zone(name: str, zones: Zones) -> dict[str, Any]:
    with _errors():
        return {"zone": name, "nodes": zones.nodes_in_zone(name)}


@router.get("/{name}/events")
async def zone_events(
    name: str,
    zones: Zones,
    after: Annotated[int, Query(description="seq cursor from the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 100,
) -> dict[str, Any]:
    with _errors():
        return {"zone": name, "events": zones.events(name, after, limit)}
