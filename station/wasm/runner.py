"""The WebAssembly runtime apps run in: `WasmRuntime` ties one Engine (engine.py), the Linker with every
host function of API v1 (_hostcalls.py), the compiled-module cache (cache.py) and a bounded pool of
worker threads (_workers.py) together; `load` makes a `LoadedApp` and `call` offloads each call (_call.py) so the event
loop never runs wasm. Owns the Engine, the ticker and the workers; knows nothing of bundles, manifests or
storage (validate.py and service.py do)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import wasmtime

from station.wasm._call import run_call
from station.wasm._hostcalls import define_host_functions
from station.wasm._workers import CallWorkers, WorkersClosed, WorkersFull
from station.wasm.cache import ModuleCache
from station.wasm.engine import EpochTicker, ModuleInfo, check_imports, describe, epoch_ticks, new_engine
from station.wasm.errors import AppBusy, AppCallFailed, InvalidModule
from station.wasm.host import HostServices, MeshRateLimits, TokenBucket

MAX_WAITING_PER_WORKER = 16  # calls queued beyond this many per worker get AppBusy: a backlog means a stuck app


@dataclass(frozen=True)
class CallLimits:
    memory_bytes: int
    fuel: int
    timeout_ms: int


@dataclass(frozen=True)
class LoadedApp:
    """A compiled app ready to call; cheap to keep, one per loaded app version."""

    app_id: str
    app_name: str
    module: wasmtime.Module
    instance_pre: wasmtime.InstancePre
    capabilities: frozenset[str]
    limits: CallLimits
    host: HostServices
    kv_quota: int
    mesh_bucket: TokenBucket
    exports: frozenset[str]


class WasmRuntime:
    """Runs apps: `start()` once, `load()` each app version, `await call()`, `close()` at shutdown."""

    def __init__(self, cache_dir: Path, max_concurrent_calls: int = 4) -> None:
        self.engine = new_engine()
        self.cache = ModuleCache(cache_dir, self.engine)
        self.max_concurrent_calls = max_concurrent_calls
        self._linker = wasmtime.Linker(self.engine)
        define_host_functions(self._linker)
        self._ticker = EpochTicker(self.engine)
        self._workers = CallWorkers(max_concurrent_calls, thread_name_prefix="wasm-call")
        self._mesh = MeshRateLimits()
        self._lock = threading.Lock()
        self._max_ticks = 1
        self._closed = False

    def start(self) -> None:
        """Start the epoch ticker (idempotent). Calls made before start() start it themselves."""
        if not self._closed:
            self._ticker.start()

    def close(self) -> None:
        """Refuse new calls, drop queued ones, interrupt running ones at once, stop the ticker. Does not wait
        for the workers: one blocked in a host function that needs the event loop would deadlock a caller
        on the loop; each traps as soon as it is back in wasm, its deadline already passed."""
        self._closed = True
        self._workers.close()
        for _ in range(self._max_ticks):  # every running call's deadline passes now, not in up to 10 s
            self.engine.increment_epoch()
        self._ticker.stop()

    def inspect(self, module: bytes) -> ModuleInfo:
        """Imports and exports of wasm bytes (InvalidModule if they are not a valid core module)."""
        return describe(self.cache.load(module))

    def load(self, app_id: str, module: bytes, capabilities: frozenset[str], limits: CallLimits,
             host: HostServices, app_name: str, kv_quota: int, mesh_per_minute: int) -> LoadedApp:
        """Compile via the cache and pre-link: the result is ready to call. InvalidModule / UnknownImport if the
        module is not runnable here (validation refuses those earlier; this is the second line)."""
        compiled = self.cache.load(module)
        info = describe(compiled)
        check_imports(info)
        try:
            instance_pre = self._linker.instantiate_pre(compiled)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(str(exc).strip().splitlines()[0]) from exc
        with self._lock:
            self._max_ticks = max(self._max_ticks, epoch_ticks(limits.timeout_ms))
        return LoadedApp(
            app_id=app_id, app_name=app_name, module=compiled, instance_pre=instance_pre,
            capabilities=frozenset(capabilities), limits=limits, host=host, kv_quota=kv_quota,
            mesh_bucket=self._mesh.bucket(app_name, mesh_per_minute),
            exports=frozenset(item.name for item in info.exports if item.kind == "func"))

    async def call(self, app: LoadedApp, entry_point: str, payload: Any) -> Any:
        """Run `entry_point` with `payload` in a worker thread; its JSON output, None for none. Raises AppTrap,
        AppTimeout, AppMemoryExceeded, AppOutputInvalid, CapabilityDenied, AppBusy (all AppCallFailed)."""
        if self._closed:
            raise AppCallFailed(app.app_name, entry_point, "the WebAssembly runtime is closed")
        self.start()
        waiting_limit = self.max_concurrent_calls * (1 + MAX_WAITING_PER_WORKER)
        try:
            job = self._workers.submit(partial(run_call, self.engine, app, entry_point, payload), waiting_limit)
        except WorkersFull as exc:
            raise AppBusy(app.app_name, entry_point, str(exc)) from exc
        except WorkersClosed as exc:  # closed between the check above and here
            raise AppCallFailed(app.app_name, entry_point, "the WebAssembly runtime is closed") from exc
        try:
            return await job.outcome
        except WorkersClosed as exc:
            closed = "the WebAssembly runtime closed before the call ran"
            raise AppCallFailed(app.app_name, entry_point, closed) from exc
        except asyncio.CancelledError:
            # our caller was cancelled: a queued call is dropped (and frees its place now); a running one
            # finishes on its worker (within the call's deadline) on its own
            self._workers.drop(job)
            raise
