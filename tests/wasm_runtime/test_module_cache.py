"""The compiled-module cache: hits, and entries that are tampered with are never deserialized."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
import wasmtime

from station.wasm.cache import ModuleCache
from station.wasm.errors import InvalidModule
from station.wasm.runner import WasmRuntime


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return wasmtime.Engine(config)


@pytest.fixture
def deserialized(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every byte string handed to Module.deserialize."""
    seen: list[bytes] = []
    original = wasmtime.Module.deserialize.__func__  # type: ignore[attr-defined]

    def recording(cls: type[wasmtime.Module], engine: wasmtime.Engine, encoded: bytes) -> wasmtime.Module:
        seen.append(bytes(encoded))
        return original(cls, engine, encoded)  # type: ignore[no-any-return]

    monkeypatch.setattr(wasmtime.Module, "deserialize", classmethod(recording))
    return seen


def test_second_load_is_a_hit_and_the_key_is_private(tmp_path: Path, wasm: dict[str, bytes]) -> None:
    cache = ModuleCache(tmp_path, _engine())
    cache.load(wasm["app"])
    cache.load(wasm["app"])
    assert cache.counters() == {"cache_hits": 1, "cache_misses": 1, "cache_rejected": 0}
    artifact, sidecar = cache.paths(hashlib.sha256(wasm["app"]).hexdigest())
    assert artifact.exists() and sidecar.exists()
    assert stat.S_IMODE((tmp_path / "cache.key").stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind


@pytest.mark.parametrize("attack", ["flip_byte", "plain_sha256_sidecar", "swap_entries", "truncate"])
def test_tampered_entry_is_rejected_recompiled_and_never_deserialized(
        tmp_path: Path, wasm: dict[str, bytes], deserialized: list[bytes], attack: str) -> None:
    engine = _engine()
    ModuleCache(tmp_path, engine).load(wasm["app"])
    artifact, sidecar = ModuleCache(tmp_path, engine).paths(hashlib.sha256(wasm["app"]).hexdigest())
    good = artifact.read_bytes()
    if attack == "flip_byte":
        tampered = bytearray(good)
        tampered[len(tampered) // 2] ^= 0xFF
        artifact.write_bytes(bytes(tampered))
    elif attack == "plain_sha256_sidecar":  # forged by someone who can write the cache but not read the key
        tampered = bytearray(good)
        tampered[-1] ^= 0x01
        artifact.write_bytes(bytes(tampered))
        sidecar.write_text(hashlib.sha256(bytes(tampered)).hexdigest())
    elif attack == "swap_entries":  # an authentic entry of another module under this module's name
        other = ModuleCache(tmp_path, engine)
        other.load(wasm["no_imports"])
        other_artifact, other_sidecar = other.paths(hashlib.sha256(wasm["no_imports"]).hexdigest())
        artifact.write_bytes(other_artifact.read_bytes())
        sidecar.write_bytes(other_sidecar.read_bytes())
    else:
        artifact.write_bytes(good[:100])
    planted = artifact.read_bytes()

    cache = ModuleCache(tmp_path, engine)
    module = cache.load(wasm["app"])
    assert cache.counters() == {"cache_hits": 0, "cache_misses": 1, "cache_rejected": 1}
    assert planted not in deserialized
    assert {export.name for export in module.exports} >= {"memory", "alloc", "echo"}
    again = ModuleCache(tmp_path, engine)
    again.load(wasm["app"])  # the recompiled entry is authentic
    assert again.counters() == {"cache_hits": 1, "cache_misses": 0, "cache_rejected": 0}


def test_readable_key_is_replaced(tmp_path: Path, wasm: dict[str, bytes]) -> None:
    ModuleCache(tmp_path, _engine()).load(wasm["app"])
    (tmp_path / "cache.key").chmod(0o644)
    cache = ModuleCache(tmp_path, _engine())
    cache.load(wasm["app"])
    assert cache.counters()["cache_rejected"] == 1
    assert stat.S_IMODE((tmp_path / "cache.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("module", [b"", b"hello", b"(module)", b"\x00asm\x01\x00\x00\x00\x01\xff"])
def test_not_wasm_is_invalid(tmp_path: Path, module: bytes) -> None:
    with pytest.raises(InvalidModule):
        ModuleCache(tmp_path, _engine()).load(module)


def test_runtime_loads_through_its_cache(tmp_path: Path, wasm: dict[str, bytes]) -> None:
    runtime = WasmRuntime(tmp_path)
    try:
        runtime.inspect(wasm["app"])
        runtime.inspect(wasm["app"])
        assert runtime.cache.counters()["cache_hits"] == 1
    finally:
        runtime.close()
