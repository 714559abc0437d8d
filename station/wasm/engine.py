"""The wasmtime Engine of a runtime and what hangs on it directly: its configuration (fuel and epoch
interruption), the epoch ticker thread that turns wall-clock deadlines into traps, and module inspection
(imports/exports as text) for the validator and the loader. Never runs wasm, never builds a Store."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import wasmtime

from station.wasm.errors import InvalidModule, UnknownImport
from station.wasm.host import HOST_API, HOST_MODULE, func_type_text

EPOCH_TICK_S = 0.010  # the ticker's period: a deadline overshoots by at most about this much
TICKER_JOIN_S = 2.0  # the ticker stops within one tick; this is only a guard


def epoch_ticks(timeout_ms: int) -> int:
    """Ticks to the deadline: +1 because the next tick may come right after the deadline is set."""
    return max(1, math.ceil(timeout_ms / 1000 / EPOCH_TICK_S)) + 1


class ImportInfo(NamedTuple):
    module: str
    name: str
    type: str  # "(i32, i32) -> i64" for functions (see host.signature_text), a description otherwise


class ExportInfo(NamedTuple):
    name: str
    kind: str  # "func", "memory", "global", "table" or "tag"
    type: str


@dataclass(frozen=True)
class ModuleInfo:
    imports: tuple[ImportInfo, ...]
    exports: tuple[ExportInfo, ...]

    def export(self, name: str) -> ExportInfo | None:
        return next((item for item in self.exports if item.name == name), None)


def _extern_text(extern: Any) -> tuple[str, str]:
    """(kind, type text) of a wasmtime extern type."""
    if isinstance(extern, wasmtime.FuncType):
        return "func", func_type_text(extern)
    if isinstance(extern, wasmtime.MemoryType):
        limits = extern.limits
        return "memory", f"memory {limits.min}..{'' if limits.max is None else limits.max} pages"
    if isinstance(extern, wasmtime.GlobalType):
        return "global", f"global {'mut ' if extern.mutable else ''}{extern.content}"
    if isinstance(extern, wasmtime.TableType):
        limits = extern.limits
        return "table", f"table {extern.element} {limits.min}..{'' if limits.max is None else limits.max}"
    return "tag", type(extern).__name__


def describe(module: wasmtime.Module) -> ModuleInfo:
    imports = tuple(ImportInfo(item.module, item.name or "", _extern_text(item.type)[1]) for item in module.imports)
    exports = tuple(ExportInfo(item.name, *_extern_text(item.type)) for item in module.exports)
    return ModuleInfo(imports, exports)


def check_imports(info: ModuleInfo) -> None:
    """Only functions of HOST_API, with their exact types (the linker would refuse the rest less clearly)."""
    for item in info.imports:
        function = HOST_API.get(item.name) if item.module == HOST_MODULE else None
        if function is None:
            raise UnknownImport(item.module, item.name)
        if item.type != function.signature:
            raise InvalidModule(f"import {HOST_MODULE}.{item.name} has type {item.type}, "
                                f"host API v1 defines {function.signature}")


class EpochTicker:
    """Advances the Engine's epoch every EPOCH_TICK_S so a call's deadline traps even an infinite loop."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wasm-epoch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(EPOCH_TICK_S):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TICKER_JOIN_S)
            self._thread = None


def new_engine() -> wasmtime.Engine:
    """The one Engine of a runtime: fuel metering and epoch interruption on (both needed per call)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return wasmtime.Engine(config)
