"""The host functions of API v1 as wasmtime callbacks: guest memory access with bounds checks, JSON in
and out, capability checks, kv quota and the mesh_send budget. Owns the per-call context that the
callbacks find through a thread-local (each call runs start to end on one worker thread).

A host function never lets a Python exception describe a guest's mistake: it records the failure
on the call context and raises `HostCallAborted`, which traps the wasm call; the runner reports
the recorded failure. (wasmtime-py passes callback exceptions through one process-global slot, so
with several workers the exception object that comes out of a call may not be the one raised in
it; the context is per call and always right.) Must not import the runner or the engine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from station.wasm.errors import AppCallFailed, AppTimeout, AppTrap, CapabilityDenied
from station.wasm.host import (
    HOST_API,
    HOST_MODULE,
    KV_KEY_LIMIT,
    LOG_LEVELS,
    LOG_TEXT_LIMIT,
    MEMORY_EXPORT,
    HostServices,
    TokenBucket,
)

MISSING = -1
KV_OVER_QUOTA, KV_BAD_KEY = -1, -2
PUBLISH_BAD_JSON = -1
MESH_RATE_LIMITED, MESH_REFUSED = -1, -2
BOARD_NONE, BOARD_BAD_INPUT = -1, -2


class HostCallAborted(Exception):
    """Raised inside a callback to trap the wasm call; the reason is on the CallContext."""


@dataclass
class CallContext:
    """What the host functions of one call need. Lives for one call on one worker thread."""

    app: str
    entry_point: str
    capabilities: frozenset[str]
    host: HostServices
    kv_quota: int
    mesh_bucket: TokenBucket
    deadline: float  # time.monotonic() when the call's wall-clock budget ends
    failure: AppCallFailed | None = None

    def abort(self, failure: AppCallFailed) -> HostCallAborted:
        if self.failure is None:  # the first failure is the cause; later ones are consequences
            self.failure = failure
        return HostCallAborted(str(failure))


_current = threading.local()


def bind(context: CallContext | None) -> None:
    """Make `context` the one the callbacks of this thread see (None after the call)."""
    _current.context = context


def _context() -> CallContext:
    context: CallContext | None = getattr(_current, "context", None)
    if context is None:  # a callback outside a call of ours: nothing sane to do but trap
        raise HostCallAborted("host function called outside a call")
    return context


class GuestMemory:
    """The caller's exported memory, every access bounds-checked (a bad pointer traps, never reads past)."""

    def __init__(self, caller: wasmtime.Caller, context: CallContext, function: str) -> None:
        memory = caller.get(MEMORY_EXPORT)
        if not isinstance(memory, wasmtime.Memory):
            raise context.abort(AppTrap(context.app, context.entry_point,
                                        f"{function}: the module exports no memory named {MEMORY_EXPORT!r}"))
        self._caller, self._memory, self._context, self._function = caller, memory, context, function

    def check(self, ptr: int, length: int) -> None:
        size = self._memory.data_len(self._caller)
        # i32 arguments arrive signed: a negative one is a huge unsigned pointer, i.e. out of bounds
        if ptr < 0 or length < 0 or ptr + length > size:
            raise self._context.abort(AppTrap(
                self._context.app, self._context.entry_point,
                f"{self._function}: buffer {ptr}..{ptr + length} is outside the module's memory of {size} bytes"))

    def read(self, ptr: int, length: int) -> bytes:
        self.check(ptr, length)
        return bytes(self._memory.read(self._caller, ptr, ptr + length)) if length else b""

    def write_capped(self, out_ptr: int, out_cap: int, data: bytes) -> int:
        """The kv_get contract: copy min(len, cap) bytes, return the full length (the guest retries if bigger)."""
        self.check(out_ptr, out_cap)
        if len(data) > 0x7FFF_FFFF:
            raise self._context.abort(AppTrap(self._context.app, self._context.entry_point,
                                              f"{self._function}: result too large for i32"))
        count = min(len(data), out_cap)
        if count:
            self._memory.write(self._caller, data[:count], out_ptr)
        return len(data)


def _decode_json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


# ---- the functions; each takes (caller, context, memory-or-None, *wasm args) via _wrap


def _log(caller: wasmtime.Caller, ctx: CallContext, level: int, ptr: int, length: int) -> None:
    memory = GuestMemory(caller, ctx, "log")
    memory.check(ptr, length)
    raw = memory.read(ptr, min(length, LOG_TEXT_LIMIT))
    text = raw.decode("utf-8", errors="replace") + (" [truncated]" if length > LOG_TEXT_LIMIT else "")
    ctx.host.log(ctx.app, LOG_LEVELS[min(max(level, 0), len(LOG_LEVELS) - 1)], text)


def _clock_ms(_caller: wasmtime.Caller, _ctx: CallContext) -> int:
    return int(time.time() * 1000)


def _kv_key(memory: GuestMemory, ptr: int, length: int) -> str | None:
    raw = memory.read(ptr, length)
    if not 0 < length <= KV_KEY_LIMIT:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _kv_get(caller: wasmtime.Caller, ctx: CallContext, key_ptr: int, key_len: int, out_ptr: int, out_cap: int) -> int:
    memory = GuestMemory(caller, ctx, "kv_get")
    key = _kv_key(memory, key_ptr, key_len)
    value = None if key is None else ctx.host.kv_get(ctx.app, key)
    if value is None:
        memory.check(out_ptr, out_cap)
        return MISSING
    return memory.write_capped(out_ptr, out_cap, value)


def _kv_put(caller: wasmtime.Caller, ctx: CallContext, key_ptr: int, key_len: int, val_ptr: int, val_len: int) -> int:
    memory = GuestMemory(caller, ctx, "kv_put")
    key = _kv_key(memory, key_ptr, key_len)
    value = memory.read(val_ptr, val_len)
    if key is None:
        return KV_BAD_KEY
    return 0 if ctx.host.kv_put(ctx.app, key, value, ctx.kv_quota) else KV_OVER_QUOTA


def _publish(caller: wasmtime.Caller, ctx: CallContext, ptr: int, length: int) -> int:
    payload = _decode_json_object(GuestMemory(caller, ctx, "publish").read(ptr, length))
    if payload is None:
        return PUBLISH_BAD_JSON
    ctx.host.publish(ctx.app, payload)
    return 0


def _mesh_send(caller: wasmtime.Caller, ctx: CallContext, ptr: int, length: int) -> int:
    request = _decode_json_object(GuestMemory(caller, ctx, "mesh_send").read(ptr, length))
    if request is None:
        return MESH_REFUSED
    text, to, channel = request.get("text"), request.get("to", "broadcast"), request.get("channel", 0)
    if not isinstance(text, str) or not text or not isinstance(to, str) or type(channel) is not int:
        return MESH_REFUSED
    if not ctx.mesh_bucket.take():
        return MESH_RATE_LIMITED
    try:
        ctx.host.mesh_send(ctx.app, text, to, channel)
    except ValueError:
        return MESH_REFUSED
    return 0


def _board_telemetry(caller: wasmtime.Caller, ctx: CallContext, id_ptr: int, id_len: int,
                     out_ptr: int, out_cap: int) -> int:
    memory = GuestMemory(caller, ctx, "board_telemetry")
    try:
        board_id = memory.read(id_ptr, id_len).decode("utf-8")
    except UnicodeDecodeError:
        board_id = ""
    telemetry = ctx.host.board_telemetry(board_id) if board_id else None
    if telemetry is None:
        memory.check(out_ptr, out_cap)
        return BOARD_NONE
    return memory.write_capped(out_ptr, out_cap, _encode(telemetry))


def _board_command(caller: wasmtime.Caller, ctx: CallContext, ptr: int, length: int,
                   out_ptr: int, out_cap: int) -> int:
    memory = GuestMemory(caller, ctx, "board_command")
    request = _decode_json_object(memory.read(ptr, length))
    memory.check(out_ptr, out_cap)
    if request is None:
        return BOARD_BAD_INPUT
    board_id, cmd, args = request.get("board_id"), request.get("cmd"), request.get("args", {})
    if not isinstance(board_id, str) or not isinstance(cmd, str) or not isinstance(args, dict):
        return BOARD_BAD_INPUT
    remaining_s = ctx.deadline - time.monotonic()
    if remaining_s <= 0:
        raise ctx.abort(AppTimeout(ctx.app, ctx.entry_point, "the wall-clock deadline passed before board_command"))
    result = ctx.host.board_command(board_id, cmd, args, remaining_s)
    if result is None:
        return BOARD_NONE
    return memory.write_capped(out_ptr, out_cap, _encode(result))


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "log": _log, "clock_ms": _clock_ms, "kv_get": _kv_get, "kv_put": _kv_put, "publish": _publish,
    "mesh_send": _mesh_send, "board_telemetry": _board_telemetry, "board_command": _board_command,
}


def _wrap(name: str, implementation: Callable[..., Any]) -> Callable[..., Any]:
    capability = HOST_API[name].capability

    def callback(caller: wasmtime.Caller, *args: int) -> Any:
        ctx = _context()
        if capability not in ctx.capabilities:
            raise ctx.abort(CapabilityDenied(
                ctx.app, ctx.entry_point, f"host function {name} needs capability {capability!r}, not granted"))
        try:
            return implementation(caller, ctx, *args)
        except HostCallAborted:
            raise
        except Exception as exc:  # a failing HostServices must not escape as anything but this call's trap
            raise ctx.abort(AppTrap(ctx.app, ctx.entry_point,
                                    f"host function {name} failed: {type(exc).__name__}: {exc}")) from exc

    return callback


def define_host_functions(linker: wasmtime.Linker) -> None:
    """Define EVERY function of HOST_API on `linker` (ungranted ones trap with CapabilityDenied at call time).
    FuncTypes are built fresh here, for the linker's own Engine."""
    assert set(_IMPLEMENTATIONS) == set(HOST_API), "host API table and implementations disagree"
    for name, function in HOST_API.items():
        linker.define_func(HOST_MODULE, name, function.func_type(), _wrap(name, _IMPLEMENTATIONS[name]),
                           access_caller=True)
