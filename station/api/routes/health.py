"""GET /api/v1/health: each service's state, without a token (for monitors and systemd)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from station import __version__
from station.services import ServiceState

router = APIRouter(tags=["health"])

_HEALTHY = {ServiceState.RUNNING}


@router.get("/health")
async def get_health(request: Request) -> dict[str, Any]:
    station = request.app.state.station
    services = {
        service.name: {"state": service.health.state.value, **service.health.detail}
        for service in station.services
    }
    healthy = all(service.health.state in _HEALTHY for service in station.services)
    return {"status": "ok" if healthy else "degraded", "version": __version__, "services": services}
