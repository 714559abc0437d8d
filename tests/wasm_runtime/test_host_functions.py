"""Each host function of API v1 against a fake HostServices, including the guest passing garbage."""

from __future__ import annotations

import json
import time

import pytest

from station.wasm.errors import AppTrap
from station.wasm.host import HOST_API, LOG_TEXT_LIMIT
from station.wasm.runner import WasmRuntime
from tests.wasm_runtime.conftest import FakeHost, LoadApp


async def test_log_levels(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app()
    assert await runtime.call(app, "log_all", "hello") is None
    # the guest logs its input bytes: the JSON text of the payload; level 9 is clamped to error
    assert host.logs == [(app.app_name, level, '"hello"') for level in ("debug", "info", "warning", "error", "error")]


async def test_log_text_is_capped(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    await runtime.call(load_app(), "log_long", {})
    (_app, level, text), = host.logs
    assert level == "info" and text.endswith(" [truncated]")
    assert len(text.removesuffix(" [truncated]")) <= LOG_TEXT_LIMIT


@pytest.mark.parametrize("entry_point", ["log_garbage", "log_past_end", "kv_get_bad_buffer"])
async def test_pointers_outside_memory_trap(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost,
                                            entry_point: str) -> None:
    with pytest.raises(AppTrap, match="outside the module's memory"):
        await runtime.call(load_app(), entry_point, {})
    assert host.logs == []


async def test_clock(runtime: WasmRuntime, load_app: LoadApp) -> None:
    assert abs(await runtime.call(load_app(), "clock_s", {}) - time.time()) < 5


async def test_kv_put_get_and_the_retry_contract(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app()
    value = {"count": 12345, "note": "longer than four bytes"}
    assert await runtime.call(app, "kv_get_small", {}) == -1  # missing
    assert await runtime.call(app, "kv_put", value) == 0
    assert host.kv[(app.app_name, "k")] == json.dumps(value, separators=(",", ":")).encode()
    stored = len(host.kv[(app.app_name, "k")])
    assert await runtime.call(app, "kv_get_small", {}) == stored  # the full length, though only 4 bytes fit
    assert await runtime.call(app, "kv_get_retry", {}) == value  # retried with a buffer of that length
    assert await runtime.call(app, "kv_put", 7) == 0
    assert await runtime.call(app, "kv_get_retry", {}) == 7  # fits the first buffer: no retry


async def test_kv_quota_and_key_length(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app(kv_quota=16)
    assert await runtime.call(app, "kv_put", "short") == 0
    assert await runtime.call(app, "kv_put", "much longer than the sixteen byte quota") == -1
    assert host.kv[(app.app_name, "k")] == b'"short"'
    assert await runtime.call(app, "kv_put_long_key", "v") == -2  # 200-byte key, the limit is 128


async def test_publish(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app()
    assert await runtime.call(app, "publish", {"alarm": "frost", "t": -2.5}) == 0
    assert host.published == [(app.app_name, {"alarm": "frost", "t": -2.5})]
    assert await runtime.call(app, "publish", [1, 2]) == -1  # JSON, but not an object


async def test_mesh_send_and_its_rate_limit(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app(mesh_per_minute=2)
    assert await runtime.call(app, "mesh", {"text": "frost at site 3"}) == 0
    assert await runtime.call(app, "mesh", {"text": "to one", "to": "!a1b2c3d4", "channel": 1}) == 0
    assert await runtime.call(app, "mesh", {"text": "third in a minute"}) == -1  # rate limited
    assert host.mesh == [(app.app_name, "frost at site 3", "broadcast", 0), (app.app_name, "to one", "!a1b2c3d4", 1)]
    again = load_app(mesh_per_minute=60)
    assert await runtime.call(again, "mesh", {"to": "broadcast"}) == -2  # no text
    assert await runtime.call(again, "mesh", {"text": "x", "channel": "1"}) == -2
    assert await runtime.call(again, "mesh", {"text": "x", "channel": 99}) == -2  # the service refused it
    assert await runtime.call(load_app(mesh_per_minute=0), "mesh", {"text": "never"}) == -1


async def test_board_telemetry(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app()
    assert await runtime.call(app, "telemetry", {}) == {"values": {"t": 21.5}, "at": 1_790_000_000}
    assert await runtime.call(app, "telemetry_none", {}) == -1


async def test_board_command(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    app = load_app()
    request = {"board_id": "b1", "cmd": "relay", "args": {"on": True}}
    assert await runtime.call(app, "command", request) == {"ok": True, "value": 42, "error": None}
    assert await runtime.call(app, "command", {"board_id": "b9", "cmd": "relay"}) == -1  # not connected
    assert await runtime.call(app, "command", {"cmd": "relay"}) == -2
    board, cmd, args, timeout_s = host.commands[0]
    assert (board, cmd, args) == ("b1", "relay", {"on": True})
    assert 0 < timeout_s <= app.limits.timeout_ms / 1000  # what is left of the call's deadline


async def test_a_failing_service_becomes_a_trap(runtime: WasmRuntime, load_app: LoadApp, host: FakeHost) -> None:
    def broken(app: str, payload: object) -> None:
        raise ConnectionError("bus closed")

    host.publish = broken  # type: ignore[method-assign]
    with pytest.raises(AppTrap, match="publish failed: ConnectionError: bus closed"):
        await runtime.call(load_app(), "publish", {"a": 1})


def test_host_api_table() -> None:
    assert HOST_API["kv_get"].signature == "(i32, i32, i32, i32) -> i32"
    assert HOST_API["log"].signature == "(i32, i32, i32) -> ()"
    assert HOST_API["clock_ms"].signature == "() -> i64"
    assert HOST_API["mesh_send"].capability == "mesh_send"
    first, second = HOST_API["log"].func_type(), HOST_API["log"].func_type()
    assert first is not second  # built fresh every time: never shared across Engines
