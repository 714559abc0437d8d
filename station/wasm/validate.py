"""Validation of an app's module against its manifest and host API v1, and of the app against
this station (host API version, board profiles), before anything is stored or loaded.

Owns the rules: the module compiles; it imports only functions of HOST_API from module
"firefly", with their exact signatures, and only those whose capability the manifest declares;
it exports `memory`, `alloc` and every entry point with the ABI's signatures; the limits fit the
station. It never instantiates or calls the module (the runtime does) and reads no database."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from station.boards.flashing import BOARDS_DIR
from station.wasm.bundle import AppBundle
from station.wasm.cache import compile_module
from station.wasm.engine import ExportInfo, ImportInfo, ModuleInfo, describe
from station.wasm.errors import (
    BadExportSignature,
    CapabilityNotDeclared,
    IncompatibleApp,
    InvalidModule,
    MissingExport,
    UnknownImport,
)
from station.wasm.host import (
    ALLOC_EXPORT,
    ALLOC_SIGNATURE,
    ENTRY_POINT_SIGNATURE,
    HOST_API,
    HOST_API_VERSION,
    HOST_MODULE,
    MEMORY_EXPORT,
)
from station.wasm.manifest import Manifest, StationLimits, check_limits
from station.wasm.runner import WasmRuntime

WASM_MAGIC = b"\0asm"
SUPPORTED_HOST_APIS: tuple[int, ...] = (HOST_API_VERSION,)


@dataclass(frozen=True)
class ModuleReport:
    """What a valid module uses and offers, for the operator and the store."""

    imports: tuple[str, ...]  # host functions imported, sorted
    capabilities_used: tuple[str, ...]  # capabilities those imports need
    capabilities_unused: tuple[str, ...]  # declared but never imported: harmless, worth a look
    exports: tuple[ExportInfo, ...]  # (name, kind, type text)
    entry_points: tuple[str, ...]


@dataclass(frozen=True)
class CompatibilityReport:
    host_api: int
    any_board: bool  # the manifest names no board: it handles data of any board
    boards: tuple[str, ...]  # the manifest's boards this station has profiles for
    unknown_boards: tuple[str, ...]  # named by the manifest, unknown here (ignored)


def validate_module(engine_runtime: WasmRuntime | None, bundle: AppBundle,
                    maxima: StationLimits | None = None) -> ModuleReport:
    """Check the bundle's module against its manifest and the host API; raise the first refusal
    (InvalidModule, UnknownImport, CapabilityNotDeclared, MissingExport, BadExportSignature, and
    LimitTooHigh when `maxima` is given). `engine_runtime` None inspects with a private Engine."""
    manifest = bundle.manifest
    if maxima is not None:
        check_limits(manifest, maxima)
    info = inspect_module(engine_runtime, bundle.module)
    used = _check_imports(info.imports, manifest)
    _check_exports(info.exports, manifest)
    capabilities = sorted({HOST_API[name].capability for name in used})
    return ModuleReport(imports=tuple(sorted(used)), capabilities_used=tuple(capabilities),
                        capabilities_unused=tuple(c for c in manifest.capabilities if c not in capabilities),
                        exports=info.exports, entry_points=manifest.entry_points)


def _check_imports(imports: tuple[ImportInfo, ...], manifest: Manifest) -> set[str]:
    used: set[str] = set()
    for entry in imports:
        function = HOST_API.get(entry.name) if entry.module == HOST_MODULE else None
        if function is None:
            raise UnknownImport(entry.module, entry.name)
        if not _same_signature(entry.type, function.signature):
            # the name exists with another type: a module built against another host API version
            raise UnknownImport(entry.module, f"{entry.name} with type {entry.type} (host API v{HOST_API_VERSION}"
                                              f" has {function.signature})")
        if function.capability not in manifest.capabilities:
            raise CapabilityNotDeclared(entry.name, function.capability)
        used.add(entry.name)
    return used


def _check_exports(exports: tuple[ExportInfo, ...], manifest: Manifest) -> None:
    by_name = {entry.name: entry for entry in exports}
    memory = by_name.get(MEMORY_EXPORT)
    if memory is None or memory.kind != "memory":
        raise MissingExport(MEMORY_EXPORT, "its linear memory, where input and output JSON live")
    expected = [(ALLOC_EXPORT, ALLOC_SIGNATURE, "the buffer allocator the host writes input into")]
    expected += [(name, ENTRY_POINT_SIGNATURE, "an entry point of the manifest") for name in manifest.entry_points]
    for name, signature, role in expected:
        entry = by_name.get(name)
        if entry is None:
            raise MissingExport(name, f"{role}, a function {signature}")
        if entry.kind != "func" or not _same_signature(entry.type, signature):
            actual = entry.type if entry.kind == "func" else entry.kind
            raise BadExportSignature(name, f"a function {signature}", actual)


def inspect_module(engine_runtime: WasmRuntime | None, module: bytes) -> ModuleInfo:
    """The module's imports and exports, from the runtime (through its compiled-module cache) or
    from a private Engine. InvalidModule when it is not WebAssembly or does not validate."""
    if not module.startswith(WASM_MAGIC):
        raise InvalidModule("it does not start with the WebAssembly magic bytes \\0asm (a .wat text? build it first)")
    if engine_runtime is not None:
        return engine_runtime.inspect(module)
    return describe(compile_module(wasmtime.Engine(), module))


def _same_signature(actual: str, expected: str) -> bool:
    return _parse_signature(actual) == _parse_signature(expected)


def _parse_signature(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """"(i32, i32) -> i64" as (params, results), tolerant of spacing and of "()" or "(i64)" results."""
    if "->" not in text:
        return None
    params, results = (part.strip() for part in text.split("->", 1))

    def types(part: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in part.strip("()").split(",") if item.strip())

    return types(params), types(results)


def known_board_profiles(boards_dir: Path = BOARDS_DIR) -> frozenset[str]:
    """The profile names of boards/*.toml (the file's `name`, else its stem)."""
    names = set()
    for path in boards_dir.glob("*.toml"):
        try:
            name = tomllib.loads(path.read_text(encoding="utf-8")).get("name", path.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue
        names.add(str(name))
    return frozenset(names)


def check_compatibility(manifest: Manifest, known_profiles: Iterable[str] | None = None,
                        supported_host_apis: Iterable[int] = SUPPORTED_HOST_APIS) -> CompatibilityReport:
    """IncompatibleApp when the station does not offer the manifest's host API, or when the
    manifest names boards and none of them is a profile this station knows."""
    supported = tuple(supported_host_apis)
    if manifest.host_api not in supported:
        raise IncompatibleApp(f"it targets host API {manifest.host_api}; this station offers "
                              f"{', '.join(str(version) for version in supported)}")
    profiles = frozenset(known_profiles) if known_profiles is not None else known_board_profiles()
    known = tuple(board for board in manifest.boards if board in profiles)
    unknown = tuple(board for board in manifest.boards if board not in profiles)
    if manifest.boards and not known:
        raise IncompatibleApp(f"it handles boards {', '.join(manifest.boards)}; this station knows "
                              f"{', '.join(sorted(profiles)) or 'no board profile'}")
    return CompatibilityReport(host_api=manifest.host_api, any_board=not manifest.boards, boards=known,
                               unknown_boards=unknown)
