"""A direct wasmtime harness for the example apps: host API v1 implemented by a stub that
records what the app did, one fresh Store and instance per call (as the station's runtime)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from station.wasm.host import HOST_API, HOST_MODULE

FUEL = 10_000_000  # the examples need a few thousand units; an accidental loop ends here


@dataclass
class StubHost:
    kv: dict[str, bytes] = field(default_factory=dict)
    logs: list[tuple[int, str]] = field(default_factory=list)
    published: list[Any] = field(default_factory=list)
    mesh: list[Any] = field(default_factory=list)
    mesh_result: int = 0


def call(module: bytes, entry_point: str, payload: bytes, host: StubHost) -> Any:
    """Write `payload` through the app's alloc, call the entry point, return its output JSON (None for 0)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(FUEL)
    compiled = wasmtime.Module(engine, module)
    linker = wasmtime.Linker(engine)
    for item in compiled.imports:
        function = HOST_API[item.name or ""]
        linker.define_func(HOST_MODULE, function.name, function.func_type(), _STUBS[function.name](host),
                           access_caller=True)
    instance = linker.instantiate(store, compiled)
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    alloc, entry = exports["alloc"], exports[entry_point]
    assert isinstance(alloc, wasmtime.Func) and isinstance(entry, wasmtime.Func)
    ptr = alloc(store, len(payload))
    memory.write(store, payload, ptr)
    result = entry(store, ptr, len(payload))
    if result == 0:
        return None
    out_ptr, out_len = result >> 32, result & 0xFFFFFFFF
    return json.loads(bytes(memory.read(store, out_ptr, out_ptr + out_len)))


def _read(caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
    memory = caller.get("memory")
    assert isinstance(memory, wasmtime.Memory)
    return bytes(memory.read(caller, ptr, ptr + length))


def _write(caller: wasmtime.Caller, ptr: int, data: bytes) -> None:
    memory = caller.get("memory")
    assert isinstance(memory, wasmtime.Memory)
    memory.write(caller, data, ptr)


def _log(host: StubHost) -> Any:
    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        host.logs.append((level, _read(caller, ptr, length).decode()))
    return log


def _kv_get(host: StubHost) -> Any:
    def kv_get(caller: wasmtime.Caller, key_ptr: int, key_len: int, out_ptr: int, out_cap: int) -> int:
        value = host.kv.get(_read(caller, key_ptr, key_len).decode())
        if value is None:
            return -1
        _write(caller, out_ptr, value[:out_cap])
        return len(value)
    return kv_get


def _publish(host: StubHost) -> Any:
    def publish(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        try:
            host.published.append(json.loads(_read(caller, ptr, length)))
        except ValueError:
            return -1
        return 0
    return publish


def _mesh_send(host: StubHost) -> Any:
    def mesh_send(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        host.mesh.append(json.loads(_read(caller, ptr, length)))
        return host.mesh_result
    return mesh_send


_STUBS = {"log": _log, "kv_get": _kv_get, "publish": _publish, "mesh_send": _mesh_send}
