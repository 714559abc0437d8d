"""The station daemon: opens the store, starts services in order, owns them until a signal,
then shuts down in stages (reverse order, each stage with a timeout).

Owns process-level concerns (signals, sd_notify, the admin token, the CLI's client file);
must not contain any subsystem's logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from station import systemd
from station.admintoken import ensure_admin_token
from station.alerts.service import AlertService
from station.api.server import ApiService
from station.boards.service import BoardService
from station.bus import EventBus
from station.clientfile import write_client_file
from station.config import StationConfig
from station.logs import configure_logging
from station.mesh.service import MeshService
from station.presence import NodeGroups, PresenceService
from station.processes.engine import ProcessEngine
from station.services import Service, ServiceState
from station.store import Database, StoreError, open_database
from station.wasm.service import AppService
from station.zones import ZoneService

if TYPE_CHECKING:
    from station.mqtt.service import MqttService

logger = logging.getLogger(__name__)

DATA_DIR_MODE = 0o700  # keys, tokens and the database live here
YOUNG_GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


@dataclass
class Station:
    """What the services and the API share. Built once per daemon run."""

    config: StationConfig
    database: Database
    bus: EventBus
    admin_token: str
    mesh: MeshService
    alerts: AlertService
    processes: ProcessEngine = field(init=False)
    boards: BoardService = field(init=False)
    mqtt: MqttService | None = None  # only with [mqtt] enabled
    apps: AppService | None = None  # only with [wasm] enabled
    zones: ZoneService = field(init=False)
    presence: PresenceService = field(init=False)
    groups: NodeGroups = field(init=False)  # the presence service's; here for the engine and API
    services: list[Service] = field(default_factory=list)


TRIM_EVERY_S = 60.0  # a walk of the heap costs about a millisecond


def release_memory() -> None:
    """Hand freed heap back to the system: glibc keeps what start-up (imports, migrations, schema
    building) and bursts (board enrollment, a message storm) freed, 2-5 MB of a Pi's RAM for the
    station's whole life otherwise. No-op where libc is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS)
        return
    libc.malloc_trim(0)


def tune_garbage_collector() -> None:
    """Once started: what start-up built (modules, classes, schemas, the loaded processes) lives as
    long as the station, so it leaves the collector's view (`gc.freeze`), and young collections run
    every YOUNG_GC_THRESHOLD allocations instead of every 700. Under a burst of events the collector
    otherwise took ~20 % of the station's CPU, most of it walking start-up objects again and again.
    Cyclic garbage waits a little longer for its collection (a few MB at most)."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


class StartupError(Exception):
    """The station cannot start; the message says why."""


def build_station(config: StationConfig, extra_services: list[Service]) -> Station:
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(DATA_DIR_MODE)
    try:
        database = open_database(data_dir / "station.db", config.store.synchronous)
    except StoreError as exc:
        raise StartupError(str(exc)) from exc
    bus = EventBus()
    mesh = MeshService(config.mesh, database, bus)
    alerts = AlertService(database, bus)
    station = Station(config, database, bus, ensure_admin_token(data_dir), mesh, alerts)
    station.zones = ZoneService(config.zones, config.zones_hysteresis_m, database, bus)
    station.presence = PresenceService(config.mesh.node_offline_after_s, database, bus)
    station.groups = station.presence.groups
    station.boards = BoardService(config.boards, database, bus, data_dir)
    if config.mqtt.enabled:  # imported only when used: paho and ssl cost an idle station ~10 MB
        from station.mqtt.service import MqttService

        station.mqtt = MqttService(config.mqtt, bus)
    if config.wasm.enabled:
        station.apps = AppService(config.wasm, database, bus, data_dir, station)
    station.processes = ProcessEngine(station, config.processes)
    # the engine stops before the services its actions use
    # zones and presence before mesh: subscribed before the first packet, stopped after the last
    # alerts before mesh and the engine: the shutdown stops those sources of alerts first
    optional = [service for service in (station.mqtt, station.apps) if service is not None]
    # boards before the engine: the engine stops first, then no board event is left unheard
    station.services = [*extra_services, alerts, station.zones, station.presence, mesh, station.boards, *optional,
                        station.processes, ApiService(station)]
    return station


async def run_station(config: StationConfig, extra_services: list[Service] | None = None,
                      json_logs: bool = False) -> int:
    configure_logging(config.log_level, json_logs)
    try:
        station = build_station(config, extra_services or [])
    except StartupError as exc:
        logger.error("station failed to start: %s", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started: list[Service] = []
    try:
        for service in station.services:
            await _start(service)
            started.append(service)
        write_client_file(config)
        systemd.notify("READY=1")
        logger.info("station ready", extra={"api": f"http://{config.api.host}:{config.api.port}"})
        tune_garbage_collector()
        release_memory()
        async with asyncio.TaskGroup() as group:
            watchdog = group.create_task(_watchdog(stop))
            trimmer = group.create_task(_release_memory_now_and_then())
            await stop.wait()
            watchdog.cancel()
            trimmer.cancel()
        return 0
    except StartupError as exc:
        logger.error("station failed to start: %s", exc)
        return 1
    finally:
        systemd.notify("STOPPING=1")
        await _shutdown(started)
        await station.bus.drain(grace_s=2.0)
        station.database.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _start(service: Service) -> None:
    service.health.state = ServiceState.STARTING
    try:
        await service.start()
    except Exception as exc:
        service.health.state = ServiceState.FAILED
        raise StartupError(f"{service.name}: {exc}") from exc
    if service.health.state is ServiceState.STARTING:
        service.health.state = ServiceState.RUNNING
    logger.info("service started", extra={"service": service.name})


async def _shutdown(started: list[Service]) -> None:
    for service in reversed(started):
        service.health.state = ServiceState.STOPPING
        try:
            await asyncio.wait_for(service.stop(), service.stop_timeout_s)
        except TimeoutError:
            logger.error("service stop timed out", extra={"service": service.name})
        except Exception:
            logger.exception("service stop failed", extra={"service": service.name})
        service.health.state = ServiceState.STOPPED


async def _release_memory_now_and_then() -> None:
    while True:
        await asyncio.sleep(TRIM_EVERY_S)
        release_memory()


async def _watchdog(stop: asyncio.Event) -> None:
    interval = systemd.watchdog_interval_s()
    if interval is None:
        return
    while not stop.is_set():
        systemd.notify("WATCHDOG=1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)

