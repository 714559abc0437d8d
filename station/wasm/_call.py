"""One call of a loaded app, synchronously, on the current (worker) thread: a fresh Store with the call's
fuel, epoch deadline and memory limit, a fresh instance, the input JSON written through `alloc`, the entry
point called, its output JSON read back, and every way that can fail mapped to one AppCallFailed.

Owns nothing that outlives a call (isolation: a trap or a memory bomb cannot poison the next one). Must
not touch the event loop; runner.WasmRuntime offloads to here."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import wasmtime

from station.wasm import _hostcalls
from station.wasm.engine import epoch_ticks
from station.wasm.errors import AppCallFailed, AppMemoryExceeded, AppOutputInvalid, AppTimeout, AppTrap
from station.wasm.host import ALLOC_EXPORT, MEMORY_EXPORT

if TYPE_CHECKING:
    from station.wasm.runner import LoadedApp

WASM_PAGE = 65536
MAX_REASON = 300  # characters of a wasmtime message kept in an error (its backtrace is noise to an operator)


def trap_reason(exc: BaseException) -> str:
    """wasmtime's "Caused by" line ("wasm trap: ...") without the backtrace."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = lines[-1] if lines else type(exc).__name__
    return reason[:MAX_REASON]


def run_call(engine: wasmtime.Engine, app: LoadedApp, entry_point: str, payload: Any) -> Any:
    """Run `entry_point` with `payload` (JSON-able) and return its decoded JSON output (None for no output)."""
    if entry_point not in app.exports:
        raise AppTrap(app.app_name, entry_point, f"the module exports no function {entry_point!r}")
    try:
        data = json.dumps(payload, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise AppTrap(app.app_name, entry_point, f"the input is not JSON-serializable: {exc}") from exc
    limits = app.limits
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=limits.memory_bytes)
    store.set_fuel(limits.fuel)
    store.set_epoch_deadline(epoch_ticks(limits.timeout_ms))
    context = _hostcalls.CallContext(
        app=app.app_name, entry_point=entry_point, capabilities=app.capabilities, host=app.host,
        kv_quota=app.kv_quota, mesh_bucket=app.mesh_bucket,
        deadline=time.monotonic() + limits.timeout_ms / 1000)
    _hostcalls.bind(context)
    memory: wasmtime.Memory | None = None
    start_size = 0
    try:
        exports = _instantiate(app, entry_point, store).exports(store)  # enumerates them all: once per call
        memory = _export(exports, MEMORY_EXPORT, wasmtime.Memory, app, entry_point)
        start_size = memory.data_len(store)
        alloc = _export(exports, ALLOC_EXPORT, wasmtime.Func, app, entry_point)
        ptr = _write_input(alloc, store, memory, data, app, entry_point)
        func = _export(exports, entry_point, wasmtime.Func, app, entry_point)
        result = func(store, ptr, len(data))
        return _read_output(store, memory, result, app, entry_point)
    except AppCallFailed:
        raise
    except Exception as exc:
        raise _classify(exc, context, store, memory, start_size, app, entry_point) from exc
    finally:
        _hostcalls.bind(None)


def _instantiate(app: LoadedApp, entry_point: str, store: wasmtime.Store) -> wasmtime.Instance:
    try:
        return app.instance_pre.instantiate(store)
    except wasmtime.WasmtimeError as exc:
        reason = trap_reason(exc)
        if "exceeds memory limits" in reason or ("memory" in reason and "limit" in reason):
            raise AppMemoryExceeded(app.app_name, entry_point,
                                    f"the module needs more memory than its limit of {app.limits.memory_bytes} "
                                    f"bytes ({reason})") from exc
        raise


def _export(exports: Mapping[str, Any], name: str, kind: type[Any], app: LoadedApp, entry_point: str) -> Any:
    item = exports.get(name)
    if not isinstance(item, kind):
        raise AppTrap(app.app_name, entry_point, f"the module exports no {kind.__name__.lower()} named {name!r}")
    return item


def _write_input(alloc: wasmtime.Func, store: wasmtime.Store, memory: wasmtime.Memory, data: bytes,
                 app: LoadedApp, entry_point: str) -> int:
    ptr = alloc(store, len(data))
    if not isinstance(ptr, int):
        raise AppTrap(app.app_name, entry_point, "alloc did not return an i32")
    ptr &= 0xFFFF_FFFF
    size = memory.data_len(store)
    if ptr + len(data) > size:
        raise AppTrap(app.app_name, entry_point,
                      f"alloc({len(data)}) returned {ptr}, outside the module's memory of {size} bytes")
    if data:
        memory.write(store, data, ptr)
    return ptr


def _read_output(store: wasmtime.Store, memory: wasmtime.Memory, result: Any, app: LoadedApp,
                 entry_point: str) -> Any:
    if not isinstance(result, int):
        raise AppOutputInvalid(app.app_name, entry_point, f"returned {result!r}, expected an i64")
    packed = result & 0xFFFF_FFFF_FFFF_FFFF
    if packed == 0:
        return None
    out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
    size = memory.data_len(store)
    if out_ptr + out_len > size:
        raise AppOutputInvalid(app.app_name, entry_point,
                               f"output {out_ptr}..{out_ptr + out_len} is outside its memory of {size} bytes")
    raw = bytes(memory.read(store, out_ptr, out_ptr + out_len))
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AppOutputInvalid(app.app_name, entry_point,
                               f"output is not UTF-8 JSON: {exc} (starts {raw[:40]!r})") from exc


def _classify(exc: Exception, context: _hostcalls.CallContext, store: wasmtime.Store,
              memory: wasmtime.Memory | None, start_size: int, app: LoadedApp, entry_point: str) -> AppCallFailed:
    """The one AppCallFailed for whatever came out of wasmtime (or escaped a host function)."""
    if context.failure is not None:  # a host function's refusal is the cause, whatever exception carried it
        return context.failure
    name = app.app_name
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    reason = trap_reason(exc)
    if memory is not None:
        size = memory.data_len(store)
        if size > start_size and size + WASM_PAGE > app.limits.memory_bytes:
            return AppMemoryExceeded(name, entry_point, f"memory grew to its limit of {app.limits.memory_bytes} "
                                                        f"bytes, then the call failed ({reason})")
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return AppTimeout(name, entry_point, f"fuel exhausted ({app.limits.fuel} units per call)")
    if code == wasmtime.TrapCode.INTERRUPT:
        return AppTimeout(name, entry_point, f"wall-clock deadline of {app.limits.timeout_ms} ms passed")
    if isinstance(exc, wasmtime.Trap | wasmtime.WasmtimeError):
        return AppTrap(name, entry_point, reason)
    if isinstance(exc, _hostcalls.HostCallAborted):  # another call's host failure came out here (see _hostcalls)
        return AppTrap(name, entry_point, "trapped (the trap's details were lost to a concurrent call)")
    return AppTrap(name, entry_point, f"{type(exc).__name__}: {reason}")
