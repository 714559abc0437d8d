"""Fixtures of the runtime tests: guest modules compiled once per session, a fake HostServices that
records every call, and runtimes over a scratch cache directory."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import wasmtime

from station.wasm.host import CAPABILITIES
from station.wasm.runner import CallLimits, LoadedApp, WasmRuntime
from tests.wasm_runtime import guests

_APP_NUMBERS = itertools.count()  # app names unique per session: mesh budgets are kept per name
DEFAULT_LIMITS = CallLimits(memory_bytes=2 * 1024 * 1024, fuel=50_000_000, timeout_ms=1000)


class FakeHost:
    """HostServices for tests: in-memory kv with a byte quota, recorded logs/publishes/mesh texts,
    canned telemetry and command results, and a gauge of how many host calls run at once."""

    def __init__(self, log_delay_s: float = 0.0) -> None:
        self.logs: list[tuple[str, str, str]] = []
        self.kv: dict[tuple[str, str], bytes] = {}
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.mesh: list[tuple[str, str, str, int]] = []
        self.commands: list[tuple[str, str, dict[str, Any], float]] = []
        self.telemetry = {"board-1": {"values": {"t": 21.5}, "at": 1_790_000_000}}
        self.log_delay_s = log_delay_s
        self.running = self.peak = 0
        self._lock = threading.Lock()

    def log(self, app: str, level: str, text: str) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.log_delay_s)
        with self._lock:
            self.running -= 1
            self.logs.append((app, level, text))

    def kv_get(self, app: str, key: str) -> bytes | None:
        return self.kv.get((app, key))

    def kv_put(self, app: str, key: str, value: bytes, quota: int) -> bool:
        used = sum(len(k) + len(v) for (owner, k), v in self.kv.items() if owner == app and k != key)
        if used + len(key) + len(value) > quota:
            return False
        self.kv[(app, key)] = value
        return True

    def publish(self, app: str, payload: dict[str, Any]) -> None:
        self.published.append((app, payload))

    def mesh_send(self, app: str, text: str, to: str, channel: int) -> None:
        if not 0 <= channel <= 7:
            raise ValueError(f"no channel {channel}")
        self.mesh.append((app, text, to, channel))

    def board_telemetry(self, board_id: str) -> dict[str, Any] | None:
        return self.telemetry.get(board_id)

    def board_command(self, board_id: str, cmd: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        self.commands.append((board_id, cmd, args, timeout_s))
        if board_id != "b1":
            return None
        return {"ok": True, "value": 42, "error": None}


@pytest.fixture(scope="session")
def wasm() -> dict[str, bytes]:
    """Every guest module, built once per session."""
    return {name.lower(): bytes(wasmtime.wat2wasm(getattr(guests, name))) for name in
            ("APP", "BIG_MEMORY", "NO_IMPORTS", "UNKNOWN_IMPORT", "WRONG_IMPORT_TYPE")}


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WasmRuntime]:
    runtime = WasmRuntime(tmp_path_factory.mktemp("wasm-cache"))
    runtime.start()
    yield runtime
    runtime.close()


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


LoadApp = Callable[..., LoadedApp]


@pytest.fixture
def load_app(runtime: WasmRuntime, wasm: dict[str, bytes], host: FakeHost) -> LoadApp:
    """load_app(module="app", capabilities=all, limits=DEFAULT_LIMITS, kv_quota=..., mesh_per_minute=...)"""
    def load(module: str = "app", capabilities: frozenset[str] = frozenset(CAPABILITIES),
             limits: CallLimits = DEFAULT_LIMITS, kv_quota: int = 65536, mesh_per_minute: int = 4,
             on: WasmRuntime = runtime, services: Any = host) -> LoadedApp:
        name = f"test-{module.replace('_', '-')}-{next(_APP_NUMBERS)}"
        return on.load(f"{name}@1.0.0", wasm[module], capabilities, limits, services, name, kv_quota,
                       mesh_per_minute)

    return load
