"""Calls of a well-behaved module and of modules that misbehave in the ways a call can fail."""

from __future__ import annotations

import pytest

from station.wasm.errors import AppMemoryExceeded, AppOutputInvalid, AppTrap, CapabilityDenied
from station.wasm.runner import CallLimits, WasmRuntime
from tests.wasm_runtime.conftest import DEFAULT_LIMITS, FakeHost, LoadApp


async def test_entry_point_gets_json_and_returns_json(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app()
    payload = {"board": "b1", "values": {"t": 21.5, "tags": ["a", "é"]}, "n": None}
    assert await runtime.call(app, "echo", payload) == payload  # alloc'd by the guest, read back as its output
    assert await runtime.call(app, "ok", None) == {"ok": True}
    assert await runtime.call(app, "nothing", {}) is None


async def test_every_call_gets_a_fresh_instance(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app()
    assert [await runtime.call(app, "calls", {}) for _ in range(3)] == [1, 1, 1]


async def test_a_trap_is_contained_and_the_next_call_works(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app()
    with pytest.raises(AppTrap, match="unreachable") as caught:
        await runtime.call(app, "trap", {})
    assert caught.value.app == app.app_name and caught.value.entry_point == "trap"
    assert await runtime.call(app, "echo", [1, 2]) == [1, 2]


async def test_missing_entry_point_traps(runtime: WasmRuntime, load_app: LoadApp) -> None:
    with pytest.raises(AppTrap, match="no function 'absent'"):
        await runtime.call(load_app(), "absent", {})


async def test_memory_bomb_is_stopped_at_the_limit(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app(limits=CallLimits(memory_bytes=1024 * 1024, fuel=50_000_000, timeout_ms=1000))
    with pytest.raises(AppMemoryExceeded, match="1048576"):
        await runtime.call(app, "bomb", {})
    assert await runtime.call(app, "ok", {}) == {"ok": True}


async def test_initial_memory_above_the_limit(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app("big_memory", capabilities=frozenset())
    with pytest.raises(AppMemoryExceeded, match="more memory than its limit"):
        await runtime.call(app, "echo", {})
    roomy = load_app("big_memory", capabilities=frozenset(),
                     limits=CallLimits(memory_bytes=8 * 1024 * 1024, fuel=1_000_000, timeout_ms=1000))
    assert await runtime.call(roomy, "echo", {"a": 1}) == {"a": 1}


async def test_ungranted_host_function_is_denied(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app(capabilities=frozenset({"clock"}))
    with pytest.raises(CapabilityDenied, match="capability 'log'"):
        await runtime.call(app, "log_all", "hello")
    assert host.logs == []  # refused before the service saw anything
    assert isinstance(await runtime.call(app, "clock_s", {}), int)


@pytest.mark.parametrize(("entry_point", "reason"), [
    ("bad_out", "outside its memory"),
    ("huge_out", "outside its memory"),
    ("not_json", "not UTF-8 JSON"),
])
async def test_invalid_output(runtime: WasmRuntime, load_app: LoadApp, entry_point: str, reason: str) -> None:
    with pytest.raises(AppOutputInvalid, match=reason):
        await runtime.call(load_app(), entry_point, {})


async def test_input_that_is_not_json_is_refused(runtime: WasmRuntime, load_app: LoadApp) -> None:
    with pytest.raises(AppTrap, match="JSON-serializable"):
        await runtime.call(load_app(), "echo", {"bad": object()})


async def test_input_larger_than_memory_traps_cleanly(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app(limits=DEFAULT_LIMITS)
    with pytest.raises(AppTrap, match="alloc"):
        await runtime.call(app, "echo", "x" * 70_000)  # the bump allocator hands out memory it does not have
