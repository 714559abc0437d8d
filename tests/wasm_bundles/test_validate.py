from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.wasm.bundle import AppBundle, build_bundle, read_bundle
from station.wasm.errors import (
    BadExportSignature,
    CapabilityNotDeclared,
    IncompatibleApp,
    InvalidModule,
    LimitTooHigh,
    MissingExport,
    UnknownImport,
)
from station.wasm.manifest import StationLimits, parse_manifest
from station.wasm.runner import WasmRuntime
from station.wasm.validate import check_compatibility, known_board_profiles, validate_module
from tests.wasm_bundles.builders import manifest_bytes, wat_module

LOG = '(import "firefly" "log" (func (param i32 i32 i32)))'
MESH_SEND = '(import "firefly" "mesh_send" (func (param i32 i32) (result i32)))'
KV_GET = '(import "firefly" "kv_get" (func (param i32 i32 i32 i32) (result i32)))'


@pytest.fixture(params=["private-engine", "runtime"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WasmRuntime | None]:
    """Validation gives the same verdicts with the station's runtime and without one."""
    if request.param == "private-engine":
        yield None
        return
    wasm_runtime = WasmRuntime(tmp_path / "cache")
    yield wasm_runtime
    wasm_runtime.close()


def bundle_of(module: bytes, **overrides: object) -> AppBundle:
    return read_bundle(build_bundle(manifest_bytes(module, **overrides), module, None))


def test_a_valid_module_gets_a_report(runtime: WasmRuntime | None) -> None:
    module = wat_module(imports=LOG + KV_GET, entry_points=("run", "health"))
    report = validate_module(runtime, bundle_of(module, entry_points=["run", "health"], health_check="health",
                                                capabilities=["log", "kv", "clock"]))
    assert report.imports == ("kv_get", "log")
    assert report.capabilities_used == ("kv", "log")
    assert report.capabilities_unused == ("clock",)
    assert report.entry_points == ("run", "health")
    assert {(item.name, item.kind) for item in report.exports} == {
        ("memory", "memory"), ("alloc", "func"), ("run", "func"), ("health", "func")}


@pytest.mark.parametrize("module", [b"(module)", b"\x7fELF\x02\x01\x01" + b"\0" * 40, b"PK\x03\x04 a zip",
                                    b"\0asm\x01\0\0\0\x01\xff\xff\xff"])
def test_a_module_that_is_not_wasm_is_invalid(runtime: WasmRuntime | None, module: bytes) -> None:
    bundle = AppBundle(parse_manifest(manifest_bytes(module)), manifest_bytes(module), module, None)
    with pytest.raises(InvalidModule):
        validate_module(runtime, bundle)


def test_a_module_writing_to_a_path_is_refused(runtime: WasmRuntime | None) -> None:
    path_open = ('(import "wasi_snapshot_preview1" "path_open"'
                 ' (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))')
    with pytest.raises(UnknownImport) as caught:
        validate_module(runtime, bundle_of(wat_module(imports=path_open)))
    assert (caught.value.module, caught.value.name) == ("wasi_snapshot_preview1", "path_open")
    assert "wasi_snapshot_preview1.path_open" in str(caught.value)


@pytest.mark.parametrize("imports", [
    '(import "firefly" "open_file" (func (param i32 i32) (result i32)))',
    '(import "env" "log" (func (param i32 i32 i32)))',
    '(import "firefly" "memory" (memory 1))',
    '(import "firefly" "log" (global i32))',
])
def test_anything_outside_the_host_api_is_an_unknown_import(runtime: WasmRuntime | None, imports: str) -> None:
    with pytest.raises(UnknownImport):
        validate_module(runtime, bundle_of(wat_module(imports=imports), capabilities=["log"]))


def test_a_host_function_with_another_signature_is_refused_with_both_types(runtime: WasmRuntime | None) -> None:
    wrong = '(import "firefly" "log" (func (param i32 i32) (result i32)))'
    with pytest.raises(UnknownImport) as caught:
        validate_module(runtime, bundle_of(wat_module(imports=wrong)))
    assert "(i32, i32) -> i32" in str(caught.value) and "(i32, i32, i32) -> ()" in str(caught.value)


def test_an_import_needs_its_capability(runtime: WasmRuntime | None) -> None:
    with pytest.raises(CapabilityNotDeclared) as caught:
        validate_module(runtime, bundle_of(wat_module(imports=LOG + MESH_SEND), capabilities=["log"]))
    assert (caught.value.function, caught.value.capability) == ("mesh_send", "mesh_send")
    validate_module(runtime, bundle_of(wat_module(imports=LOG + MESH_SEND), capabilities=["log", "mesh_send"]))


def test_a_missing_entry_point_is_a_missing_export(runtime: WasmRuntime | None) -> None:
    with pytest.raises(MissingExport) as caught:
        validate_module(runtime, bundle_of(wat_module(), entry_points=["run", "on_telemetry"]))
    assert caught.value.name == "on_telemetry"


def test_memory_and_alloc_are_required(runtime: WasmRuntime | None) -> None:
    with pytest.raises(MissingExport) as caught:
        validate_module(runtime, bundle_of(wat_module(memory=False)))
    assert caught.value.name == "memory"
    with pytest.raises(MissingExport) as caught:
        validate_module(runtime, bundle_of(wat_module(alloc=False)))
    assert caught.value.name == "alloc"


def test_exports_need_the_abi_signatures(runtime: WasmRuntime | None) -> None:
    bad_entry = wat_module(entry_points=(), extra='(func (export "run") (param i32) (result i32) (i32.const 0))')
    with pytest.raises(BadExportSignature) as caught:
        validate_module(runtime, bundle_of(bad_entry))
    assert (caught.value.name, caught.value.actual) == ("run", "(i32) -> i32")
    bad_alloc = wat_module(alloc=False, extra='(global (export "alloc") i32 (i32.const 0))')
    with pytest.raises(BadExportSignature) as caught:
        validate_module(runtime, bundle_of(bad_alloc))
    assert caught.value.name == "alloc"


def test_limits_are_checked_against_given_maxima(runtime: WasmRuntime | None) -> None:
    bundle = bundle_of(wat_module(), limits={"memory_bytes": 32 << 20})
    validate_module(runtime, bundle, StationLimits())
    with pytest.raises(LimitTooHigh):
        validate_module(runtime, bundle, StationLimits(memory_bytes=16 << 20))


def test_the_known_board_profiles_are_the_repository_ones() -> None:
    assert {"esp32", "rp2040", "unix-sim", "qemu-riscv32"} <= known_board_profiles()


def test_compatibility() -> None:
    module = wat_module()
    any_board = check_compatibility(parse_manifest(manifest_bytes(module)))
    assert any_board.any_board and any_board.host_api == 1
    some = check_compatibility(parse_manifest(manifest_bytes(module, boards=["esp32", "esp8266"])))
    assert (some.any_board, some.boards, some.unknown_boards) == (False, ("esp32",), ("esp8266",))
    with pytest.raises(IncompatibleApp, match="esp8266"):
        check_compatibility(parse_manifest(manifest_bytes(module, boards=["esp8266"])))
    with pytest.raises(IncompatibleApp, match="host API 2"):
        check_compatibility(parse_manifest(manifest_bytes(module, host_api=2)))
    with pytest.raises(IncompatibleApp):
        check_compatibility(parse_manifest(manifest_bytes(module, boards=["esp32"])), known_profiles=["rp2040"])
