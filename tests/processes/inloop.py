"""A real process engine in the test's event loop: real SQLite and bus, and only the station
services a test hands it (a process whose action needs another one fails that step, as on a
station where that service is not running)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from station.bus import EventBus
from station.config import ProcessesConfig
from station.processes.engine import ProcessEngine
from station.store import Database
from station.store import processes as store

WAIT_S = 15.0  # one execution of a few local steps takes milliseconds; a real board's answer < 1 s
POLL_S = 0.02


@dataclass
class EngineStation:
    """What the engine and its actions read of a station (daemon.Station's fields)."""

    database: Database
    bus: EventBus
    boards: Any = None
    alerts: Any = None
    mesh: Any = None
    mqtt: Any = None
    apps: Any = None


@asynccontextmanager
async def running_engine(station: EngineStation) -> AsyncIterator[ProcessEngine]:
    engine = ProcessEngine(station, ProcessesConfig(alert_on_failure=False))  # type: ignore[arg-type]
    await engine.start()
    try:
        yield engine
    finally:
        await asyncio.wait_for(engine.stop(), WAIT_S)


async def run_by_hand(engine: ProcessEngine, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute a process manually and return its finished execution with its steps."""
    started = await engine.execute(name, data or {}, "test")
    return await finished(engine, started["execution_id"])


async def finished(engine: ProcessEngine, execution_id: str) -> dict[str, Any]:
    await asyncio.wait_for(engine.wait_for(execution_id), WAIT_S)
    await engine.journal.write()
    execution = store.get_execution(engine.database, execution_id)
    assert execution is not None
    return execution


async def executions_of(engine: ProcessEngine, name: str) -> list[dict[str, Any]]:
    """Every execution of a process so far (newest first), once the journal is flushed."""
    await engine.journal.write()
    process = engine.catalog.get(name)
    rows, _ = store.list_executions(engine.database, process["id"], None, 100, 0)
    return rows


async def first_finished(engine: ProcessEngine, name: str, timeout: float = WAIT_S) -> dict[str, Any]:
    """The first execution of a process that an event started, once it finished."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await executions_of(engine, name)
        if rows:
            return await finished(engine, rows[-1]["id"])
        if time.monotonic() > deadline:
            raise AssertionError(f"no execution of {name} within {timeout} s")
        await asyncio.sleep(POLL_S)
