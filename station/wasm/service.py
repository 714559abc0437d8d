"""The apps service: the lifecycle of WebAssembly apps on the station (docs/wasm-apps.md).

    upload -> validated -> (load + health check) -> running | failed ; running <-> stopped

Deploying a version keeps the ones before it: the new one runs only once it loaded and passed its
health check, and one that fails leaves the old version running (rolled back automatically).
`rollback` goes back to the version that ran before. Every step is recorded in the app's history.
At start the station loads the active version of every app that should be running.

Owns the lifecycle, the app files under <data>/apps and the board-telemetry pipelines; the bundle
checks are bundle.py's and validate.py's, the sandbox is the runtime's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.boards.events import BoardTelemetry
from station.bus import EventBus, Unsubscribe
from station.config import WasmConfig
from station.files import write_atomic
from station.services import Service, ServiceState
from station.store import Database
from station.store import apps as store
from station.store.apps import AppVersionRecord
from station.wasm.bundle import AppBundle, read_bundle, verify_signature
from station.wasm.errors import AppCallFailed, AppError, AppNotFound, AppStateError
from station.wasm.events import AppStateChanged
from station.wasm.keys import TrustedKeys
from station.wasm.manifest import Manifest, StationLimits, check_limits, parse_manifest
from station.wasm.station_host import StationHost

if TYPE_CHECKING:
    from station.wasm.runner import LoadedApp, WasmRuntime

logger = logging.getLogger(__name__)

APPS_DIR = "apps"
MAX_PIPELINE_CALLS = 64  # telemetry calls waiting per app; beyond, the oldest readings are dropped


@dataclass
class _Running:
    version: str
    manifest: Manifest
    loaded: LoadedApp
    pipeline_backlog: int = 0


class AppService(Service):
    name = "apps"

    def __init__(self, config: WasmConfig, database: Database, bus: EventBus, data_dir: Path, station: Any) -> None:
        super().__init__()
        self._config, self._database, self._bus = config, database, bus
        self._dir = data_dir / APPS_DIR
        self.keys = TrustedKeys(database)
        self._host = StationHost(database, bus, station)
        self._runtime: WasmRuntime | None = None
        self._running: dict[str, _Running] = {}
        self._unsubscribe: Unsubscribe | None = None
        self._pipeline_tasks: set[asyncio.Task[None]] = set()
        self.limits = StationLimits(memory_bytes=config.max_memory_bytes, fuel_per_call=config.max_fuel_per_call,
                                    timeout_ms=config.max_timeout_ms, kv_bytes=config.max_kv_bytes,
                                    mesh_per_minute=config.max_mesh_per_minute)

    # ---- life cycle

    async def start(self) -> None:
        (self._dir / "modules").mkdir(parents=True, exist_ok=True)
        self._host.start()
        self._unsubscribe = self._bus.subscribe(BoardTelemetry, self._on_telemetry)
        for app in store.list_apps(self._database):
            if app.desired == "running" and app.active_version is not None:
                try:
                    await self._load(app.name, app.active_version)
                except AppError as exc:
                    logger.warning("app not started", extra={"app": app.name, "error": str(exc)})
        self._refresh_health()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._pipeline_tasks):
            task.cancel()
        await asyncio.gather(*self._pipeline_tasks, return_exceptions=True)
        self._running.clear()
        self._host.stop()
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    @property
    def runtime(self) -> WasmRuntime:
        """The sandbox, created on first use: wasmtime costs ~20 MB that a station without apps keeps."""
        if self._runtime is None:
            from station.wasm.runner import WasmRuntime

            self._runtime = WasmRuntime(self._dir / "cache", self._config.max_concurrent_calls)
            self._runtime.start()
        return self._runtime

    # ---- deploy

    async def deploy(self, data: bytes, by: str = "operator") -> dict[str, Any]:
        """Check, store and start a bundle. Refusals raise AppRefused with nothing stored; a version that
        fails to load or its health check is recorded as failed and the previous one keeps running."""
        bundle = read_bundle(data)
        key_id = verify_signature(bundle, self.keys, self._config.allow_unsigned)
        manifest = bundle.manifest
        check_limits(manifest, self.limits)
        from station.wasm.validate import check_compatibility, validate_module  # imports wasmtime

        check_compatibility(manifest)
        await asyncio.to_thread(validate_module, self.runtime, bundle)  # compiles the module: seconds on a Pi
        name, version = manifest.name, manifest.version
        self._store_module(bundle)
        now = time.time()
        store.upsert_version(self._database, AppVersionRecord(
            app=name, version=version, state="validated", module_sha256=manifest.module_sha256,
            manifest=bundle.manifest_bytes.decode(), signature=bundle.signature, key_id=key_id, error=None,
            deployed_by=by, deployed_at=now, updated_at=now))
        signer = f"signed by key {key_id}" if key_id else "unsigned"
        self._history(name, version, "deploy", f"validated version {version} ({signer}) from {by}")
        previous = self._active(name)
        try:
            await self._load(name, version)
        except AppError as exc:
            self._history(name, version, "rollback", f"version {version} failed ({exc}); "
                          + (f"version {previous} keeps running" if previous else "no earlier version to run"),
                          "warning")
            return {**self.show(name), "deployed": version, "ok": False, "error": str(exc)}
        store.activate(self._database, name, version, time.time(), superseded=previous)
        store.set_desired(self._database, name, "running", time.time())
        return {**self.show(name), "deployed": version, "ok": True, "error": None}

    async def _load(self, name: str, version: str) -> None:
        """Load `version`, run its health check and make it the running one (the old one stops)."""
        record = self._version(name, version)
        manifest = parse_manifest(record.manifest.encode())
        module = (self._dir / "modules" / f"{record.module_sha256}.wasm").read_bytes()
        if hashlib.sha256(module).hexdigest() != record.module_sha256:
            self._failed(name, version, "the stored module no longer matches its sha256 (disk damage)")
            raise AppStateError(name, "stored module damaged: deploy it again")
        limits = manifest.limits
        from station.wasm.runner import CallLimits

        try:
            loaded = await asyncio.to_thread(  # reads the cache or compiles: off the event loop
                self.runtime.load, f"{name}@{version}", module, frozenset(manifest.capabilities),
                CallLimits(limits.memory_bytes, limits.fuel_per_call, limits.timeout_ms), self._host, name,
                limits.kv_bytes, limits.mesh_per_minute)
            self._set_state(name, version, "loaded")
            if manifest.health_check is not None:
                async with asyncio.timeout(self._config.health_check_timeout_ms / 1000):
                    await self.runtime.call(loaded, manifest.health_check, {"version": version})
        except (AppError, TimeoutError) as exc:
            reason = str(exc) or f"health check took over {self._config.health_check_timeout_ms} ms"
            self._failed(name, version, reason)
            raise AppCallFailed(name, manifest.health_check or "load", reason) from None
        old = self._running.get(name)
        self._running[name] = _Running(version, manifest, loaded)
        self._host.running(name, version)
        self._set_state(name, version, "running")
        if old is not None and old.version != version:
            self._history(name, old.version, "stop", f"version {old.version} stopped for {version}")
        self._refresh_health()

    # ---- operator actions

    async def start_app(self, name: str) -> dict[str, Any]:
        version = self._active(name)
        if version is None:
            raise AppStateError(name, "no version has run yet: deploy one")
        store.set_desired(self._database, name, "running", time.time())
        if name not in self._running:
            await self._load(name, version)
        return self.show(name)

    def stop_app(self, name: str) -> dict[str, Any]:
        self._require(name)
        store.set_desired(self._database, name, "stopped", time.time())
        running = self._running.pop(name, None)
        if running is not None:
            self._host.running(name, None)
            self._set_state(name, running.version, "stopped")
        self._refresh_health()
        return self.show(name)

    async def rollback(self, name: str) -> dict[str, Any]:
        """Run the version that ran before the active one again; the active one is marked rolled_back."""
        current = self._active(name)
        earlier = [v for v in store.list_versions(self._database, name)
                   if v.version != current and v.state in ("superseded", "stopped")]
        if current is None or not earlier:
            raise AppStateError(name, "no earlier version that ran to roll back to")
        target = earlier[0].version
        await self._load(name, target)
        store.activate(self._database, name, target, time.time(), superseded=current, superseded_state="rolled_back")
        self._history(name, target, "rollback", f"rolled back from {current} to {target}")
        return self.show(name)

    def remove(self, name: str) -> None:
        self._require(name)
        running = self._running.pop(name, None)
        if running is not None:
            self._host.running(name, None)
        for digest in store.remove_app(self._database, name):
            if not store.digest_in_use(self._database, digest):
                (self._dir / "modules" / f"{digest}.wasm").unlink(missing_ok=True)
        self._history(name, None, "remove", "removed with its versions and key-value store")
        self._bus.publish(AppStateChanged(app=name, version="", state="removed"))
        self._refresh_health()

    async def call(self, name: str, entry_point: str, payload: Any) -> Any:
        """Call a running app's entry point (process action run_wasm, `firefly app call`)."""
        running = self._running.get(name)
        if running is None:
            self._require(name)
            raise AppStateError(name, "not running")
        if entry_point not in running.manifest.entry_points:
            known = ", ".join(running.manifest.entry_points)
            raise AppStateError(name, f"no entry point {entry_point!r} (it has {known})")
        return await self.runtime.call(running.loaded, entry_point, payload)

    # ---- views

    def apps(self) -> list[dict[str, Any]]:
        return [self.show(app.name) for app in store.list_apps(self._database)]

    def show(self, name: str) -> dict[str, Any]:
        app = self._require(name)
        versions = store.list_versions(self._database, name)
        running = self._running.get(name)
        active = next((v for v in versions if v.version == app.active_version), None)
        manifest = json.loads(active.manifest) if active else None
        return {"name": name, "active_version": app.active_version, "desired": app.desired,
                "state": "running" if running else ("failed" if versions and versions[0].state == "failed"
                                                     and app.active_version is None else "stopped"),
                "running_version": running.version if running else None,
                "capabilities": manifest["capabilities"] if manifest else [],
                "entry_points": manifest["entry_points"] if manifest else [],
                "versions": [{k: v for k, v in version.as_dict().items() if k not in ("manifest", "signature")}
                             for version in versions]}

    def history(self, name: str, after: int | None = None, limit: int = 100,
                kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        self._require(name)
        return store.list_events(self._database, name, after, limit, kinds)

    # ---- pipelines: board telemetry into apps

    def _on_telemetry(self, event: BoardTelemetry) -> None:
        for name, running in self._running.items():
            for subscription in running.manifest.subscriptions:
                if subscription.event != "board_telemetry":
                    continue
                if "*" not in subscription.boards and event.board_id not in subscription.boards:
                    continue
                if running.pipeline_backlog >= MAX_PIPELINE_CALLS:
                    continue  # the app cannot keep up: readings are dropped, not queued without bound
                running.pipeline_backlog += 1
                task = asyncio.create_task(self._pipe(name, running, subscription.entry_point, event))
                self._pipeline_tasks.add(task)
                task.add_done_callback(self._pipeline_tasks.discard)

    async def _pipe(self, name: str, running: _Running, entry_point: str, event: BoardTelemetry) -> None:
        try:
            await self.runtime.call(running.loaded, entry_point,
                                    {"board_id": event.board_id, "values": dict(event.values), "at": event.at})
        except AppCallFailed as exc:
            self._history(name, running.version, "fail", f"{entry_point} on telemetry of {event.board_id}: {exc}",
                          "warning")
        finally:
            running.pipeline_backlog -= 1

    # ---- helpers

    def _store_module(self, bundle: AppBundle) -> None:
        target = self._dir / "modules" / f"{bundle.manifest.module_sha256}.wasm"
        if target.exists():
            return
        write_atomic(target, bundle.module)

    def _require(self, name: str) -> store.AppRecord:
        app = store.get_app(self._database, name)
        if app is None:
            raise AppNotFound(name)
        return app

    def _active(self, name: str) -> str | None:
        app = store.get_app(self._database, name)
        return None if app is None else app.active_version

    def _version(self, name: str, version: str) -> AppVersionRecord:
        record = store.get_version(self._database, name, version)
        if record is None:
            raise AppNotFound(name, version)
        return record

    def _set_state(self, name: str, version: str, state: str, reason: str | None = None) -> None:
        store.set_version_state(self._database, name, version, state, time.time(), reason)
        self._history(name, version, state, f"version {version} {state}" + (f": {reason}" if reason else ""),
                      "warning" if state == "failed" else "info")
        self._bus.publish(AppStateChanged(app=name, version=version, state=state, reason=reason))

    def _failed(self, name: str, version: str, reason: str) -> None:
        logger.warning("app version failed", extra={"app": name, "version": version, "reason": reason})
        self._set_state(name, version, "failed", reason)

    def _history(self, name: str, version: str | None, kind: str, message: str, level: str = "info") -> None:
        store.add_event(self._database, name, version, kind, message, time.time(), level)

    def _refresh_health(self) -> None:
        self.health.detail = {"running": sorted(self._running), "apps": len(store.list_apps(self._database))}
        if self.health.state in (ServiceState.RUNNING, ServiceState.DEGRADED):
            self.health.state = ServiceState.RUNNING
