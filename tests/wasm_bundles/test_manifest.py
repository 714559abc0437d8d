from __future__ import annotations

import json

import pytest

from station.wasm.errors import InvalidManifest, LimitTooHigh
from station.wasm.manifest import (
    DEFAULT_FUEL_PER_CALL,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_MESH_PER_MINUTE,
    StationLimits,
    check_limits,
    parse_manifest,
)
from tests.wasm_bundles.builders import manifest_bytes, manifest_dict

MODULE = b"\0asm\1\0\0\0"


def refused(**overrides: object) -> InvalidManifest:
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(manifest_bytes(MODULE, **overrides))
    return caught.value


def test_a_minimal_manifest_gets_the_default_limits() -> None:
    manifest = parse_manifest(manifest_bytes(MODULE))
    assert manifest.name == "test-app"
    assert manifest.limits.memory_bytes == DEFAULT_MEMORY_BYTES
    assert manifest.limits.fuel_per_call == DEFAULT_FUEL_PER_CALL
    assert manifest.limits.mesh_per_minute == DEFAULT_MESH_PER_MINUTE
    assert manifest.boards == () and manifest.subscriptions == () and manifest.health_check is None


def test_a_full_manifest_parses() -> None:
    manifest = parse_manifest(manifest_bytes(
        MODULE, description="filters", entry_points=["on_telemetry", "health"], health_check="health",
        capabilities=["log", "clock", "kv", "publish"], boards=["esp32", "unix-sim"],
        limits={"memory_bytes": 1 << 20, "timeout_ms": 200},
        subscriptions=[{"event": "board_telemetry", "entry_point": "on_telemetry"}]))
    assert manifest.limits.memory_bytes == 1 << 20 and manifest.limits.timeout_ms == 200
    assert manifest.subscriptions[0].boards == ("*",)


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"name": "Telemetry"}, "name", "lowercase letter"),
    ({"name": "a" * 41}, "name", "1-40 characters"),
    ({"version": "1.2"}, "version", "MAJOR.MINOR.PATCH"),
    ({"version": "01.2.3"}, "version", "semantic version"),
    ({"module_sha256": "ABC"}, "module_sha256", "64 lowercase hex"),
    ({"host_api": "1"}, "host_api", "whole number"),
    ({"host_api": True}, "host_api", "whole number"),
    ({"entry_points": []}, "entry_points", "at least 1"),
    ({"entry_points": [f"f{i}" for i in range(17)]}, "entry_points", "at most 16"),
    ({"entry_points": ["run", "run"]}, "entry_points[1]", "twice"),
    ({"entry_points": ["run", "9lives"]}, "entry_points[1]", "identifier"),
    ({"health_check": "health"}, "health_check", "not one of entry_points"),
    ({"capabilities": ["log", "filesystem"]}, "capabilities[1]", "unknown capability 'filesystem'"),
    ({"capabilities": ["log", "log"]}, "capabilities[1]", "twice"),
    ({"limits": {"memory_bytes": 1024}}, "limits.memory_bytes", "at least 65536"),
    ({"limits": {"fuel_per_call": 1.5}}, "limits.fuel_per_call", "whole number"),
    ({"limits": {"cpu": 1}}, "limits.cpu", "not a manifest field"),
    ({"boards": "esp32"}, "boards", "must be a list"),
    ({"subscriptions": [{"event": "board_telemetry", "entry_point": "other"}]},
     "subscriptions[0].entry_point", "not one of entry_points"),
    ({"subscriptions": [{"event": "file_changed", "entry_point": "run"}]}, "subscriptions[0].event", "one of"),
    ({"description": "x" * 201}, "description", "at most 200"),
    ({"permissions": ["all"]}, "permissions", "not a manifest field"),
])
def test_errors_name_the_field_and_the_rule(overrides: dict[str, object], field: str, words: str) -> None:
    error = refused(**overrides)
    assert error.field == field
    assert words in error.reason
    assert "pydantic" not in str(error) and "type=" not in str(error)


def test_a_missing_field_is_named() -> None:
    document = manifest_dict(MODULE)
    del document["module_sha256"]
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(json.dumps(document).encode())
    assert (caught.value.field, caught.value.reason) == ("module_sha256", "is required")


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe", "not UTF-8"),
    (b"{", "not JSON"),
    (b"[]", "JSON object"),
    (b'{"name": "a", "name": "b"}', "twice"),
])
def test_a_file_that_is_not_a_manifest_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(data)
    assert words in caught.value.reason


def test_limits_within_the_maxima_pass() -> None:
    check_limits(parse_manifest(manifest_bytes(MODULE, limits={"memory_bytes": 64 << 20})), StationLimits())


@pytest.mark.parametrize(("limit", "asked", "allowed"), [
    ("memory_bytes", 128 << 20, 64 << 20),
    ("fuel_per_call", 3_000_000_000, 2_000_000_000),
    ("timeout_ms", 60_000, 10_000),
    ("kv_bytes", 2 << 20, 1 << 20),
    ("mesh_per_minute", 61, 60),
])
def test_limits_above_the_maxima_are_refused(limit: str, asked: int, allowed: int) -> None:
    manifest = parse_manifest(manifest_bytes(MODULE, limits={limit: asked}))
    with pytest.raises(LimitTooHigh) as caught:
        check_limits(manifest, StationLimits())
    assert (caught.value.limit, caught.value.asked, caught.value.allowed) == (limit, asked, allowed)


def test_the_station_maxima_come_from_the_caller() -> None:
    manifest = parse_manifest(manifest_bytes(MODULE, limits={"timeout_ms": 500}))
    with pytest.raises(LimitTooHigh):
        check_limits(manifest, StationLimits(timeout_ms=100))
