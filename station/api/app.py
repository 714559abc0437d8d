"""The FastAPI application: routers, error mapping, shared state. Must not hold business logic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from station import __version__
from station.api.routes import alerts, apps, boards, groups, health, mesh, processes, tokens, zones

if TYPE_CHECKING:
    from station.daemon import Station


def create_app(station: Station) -> FastAPI:
    app = FastAPI(title="Firefly station", version=__version__, docs_url="/api/docs",
                  openapi_url="/api/v1/openapi.json", redoc_url=None)
    app.state.station = station
    app.state.admin_token = station.admin_token
    app.include_router(health.router, prefix="/api/v1")
    app.include_router(mesh.router, prefix="/api/v1")
    app.include_router(alerts.router, prefix="/api/v1")
    app.include_router(tokens.router, prefix="/api/v1")
    app.include_router(processes.router, prefix="/api/v1")
    app.include_router(boards.router, prefix="/api/v1")
    app.include_router(apps.router, prefix="/api/v1")
    app.include_router(zones.router, prefix="/api/v1")
    app.include_router(groups.router, prefix="/api/v1")
    return app
