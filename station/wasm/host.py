"""Host API v1: the table of functions a WebAssembly app may import from module "firefly", the
capabilities that gate them, the `HostServices` protocol the station implements behind them, and
the mesh_send token bucket. This is the single table the validator and the runtime both read.

It must not touch wasmtime objects beyond building fresh `FuncType`s (a FuncType reused across
Engines aborts the process, so nothing here caches one), and must not call into wasm."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # wasmtime costs ~20 MB: imported where a module is compiled or run, not for this table
    import wasmtime

HOST_API_VERSION = 1
HOST_MODULE = "firefly"
CAPABILITIES: tuple[str, ...] = (
    "log", "clock", "kv", "publish", "mesh_send", "board_telemetry", "board_command",
)

# The guest side of the ABI, in the same text form as host functions (see `signature_text`).
ENTRY_POINT_SIGNATURE = "(i32, i32) -> i64"
ALLOC_SIGNATURE = "(i32) -> i32"
MEMORY_EXPORT = "memory"
ALLOC_EXPORT = "alloc"

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")  # index = the guest's level argument
LOG_TEXT_LIMIT = 1024  # bytes of one log line kept: a chatty app cannot flood the station log
KV_KEY_LIMIT = 128  # bytes; longer keys get -2 from kv_put
MESH_WINDOW_S = 60.0  # mesh_per_minute is a budget per this window


@dataclass(frozen=True)
class HostFunction:
    """One import of host API v1: its capability and wasm signature (value types as text)."""

    name: str
    capability: str
    params: tuple[str, ...]
    results: tuple[str, ...]

    @property
    def signature(self) -> str:
        """The wasm type as text, e.g. "(i32, i32) -> i64"; equal to `func_type_text` of a matching import."""
        return signature_text(self.params, self.results)

    def func_type(self) -> wasmtime.FuncType:
        """A NEW FuncType on every call: never keep one and never share it across Engines."""
        import wasmtime

        valtypes = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64,
                    "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}
        return wasmtime.FuncType([valtypes[name]() for name in self.params],
                                 [valtypes[name]() for name in self.results])

_I32_2 = ("i32", "i32")
_I32_4 = ("i32", "i32", "i32", "i32")
HOST_API: dict[str, HostFunction] = {
    function.name: function for function in (
        HostFunction("log", "log", ("i32", "i32", "i32"), ()),
        HostFunction("clock_ms", "clock", (), ("i64",)),
        HostFunction("kv_get", "kv", _I32_4, ("i32",)),
        HostFunction("kv_put", "kv", _I32_4, ("i32",)),
        HostFunction("publish", "publish", _I32_2, ("i32",)),
        HostFunction("mesh_send", "mesh_send", _I32_2, ("i32",)),
        HostFunction("board_telemetry", "board_telemetry", _I32_4, ("i32",)),
        HostFunction("board_command", "board_command", _I32_4, ("i32",)),
    )
}


def signature_text(params: tuple[str, ...] | list[str], results: tuple[str, ...] | list[str]) -> str:
    """"(i32, i32) -> i64": params always in parentheses; one result bare, none "()", several parenthesized."""
    shown = results[0] if len(results) == 1 else f"({', '.join(results)})"
    return f"({', '.join(params)}) -> {shown}"


def func_type_text(func_type: wasmtime.FuncType) -> str:
    """The text form of a wasmtime FuncType, comparable with `HostFunction.signature`."""
    return signature_text([str(value) for value in func_type.params], [str(value) for value in func_type.results])


class HostServices(Protocol):
    """What host functions call. They run in a worker thread: implementations must be thread-safe and
    marshal to the event loop (asyncio.run_coroutine_threadsafe) themselves. `app` is the app's name."""

    def log(self, app: str, level: str, text: str) -> None: ...
    def kv_get(self, app: str, key: str) -> bytes | None: ...
    def kv_put(self, app: str, key: str, value: bytes, quota: int) -> bool: ...  # False: over quota
    def publish(self, app: str, payload: dict[str, Any]) -> None: ...
    def mesh_send(self, app: str, text: str, to: str, channel: int) -> None: ...  # ValueError on bad input
    def board_telemetry(self, board_id: str) -> dict[str, Any] | None: ...
    def board_command(self, board_id: str, cmd: str, args: dict[str, Any],
                      timeout_s: float) -> dict[str, Any] | None: ...


class TokenBucket:
    """mesh_send budget of one app: `per_minute` tokens, refilled continuously, burst of `per_minute`.
    Thread-safe (calls of the same app can run in several workers at once)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.per_minute),
                               self._tokens + (now - self._at) * self.per_minute / MESH_WINDOW_S)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class MeshRateLimits:
    """One TokenBucket per app name, kept across calls and reloads: a new version (or a restart of the
    app) does not refill the budget."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, app: str, per_minute: int) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(app)
            if bucket is None or bucket.per_minute != per_minute:
                bucket = self._buckets[app] = TokenBucket(per_minute)
            return bucket
