"""Runs the API's uvicorn server inside the station's event loop as a supervised service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from station.api.app import create_app
from station.services import Service, ServiceState

if TYPE_CHECKING:
    from station.daemon import Station

STARTUP_TIMEOUT_S = 10.0  # binding a loopback port takes milliseconds; longer means it failed


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon owns SIGTERM/SIGINT and stops us in its staged shutdown


class ApiService(Service):
    name = "api"

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        api = self._station.config.api
        config = uvicorn.Config(
            create_app(self._station),
            host=api.host,
            port=api.port,
            log_level=logging.getLevelName(logging.getLogger().level).lower(),
            access_log=False,
            log_config=None,  # uvicorn logs through the station's handlers (text or JSON)
            lifespan="off",
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(), name="api")
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    raise RuntimeError(f"cannot listen on {api.host}:{api.port}")
                await asyncio.sleep(0.02)
        self.health.state = ServiceState.RUNNING
        self.health.detail = {"listen": f"{api.host}:{api.port}"}

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
