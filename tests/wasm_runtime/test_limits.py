"""Timeouts (fuel and wall clock), concurrency bounds, and the event loop staying responsive."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from station.wasm.errors import AppBusy, AppCallFailed, AppTimeout
from station.wasm.runner import CallLimits, WasmRuntime
from tests.wasm_runtime.conftest import FakeHost, LoadApp

HUGE_FUEL = 10**15  # hours of looping: only the deadline can stop it


async def test_infinite_loop_runs_out_of_fuel(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app(limits=CallLimits(memory_bytes=2**21, fuel=1_000_000, timeout_ms=10_000))
    with pytest.raises(AppTimeout, match="fuel exhausted"):
        await runtime.call(app, "spin", {})
    assert await runtime.call(app, "ok", {}) == {"ok": True}


async def test_infinite_loop_hits_the_wall_clock_deadline(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app(limits=CallLimits(memory_bytes=2**21, fuel=HUGE_FUEL, timeout_ms=100))
    started = time.monotonic()
    with pytest.raises(AppTimeout, match="deadline of 100 ms"):
        await runtime.call(app, "spin", {})
    assert 0.09 <= time.monotonic() - started < 1.0


async def test_event_loop_stays_responsive_during_a_long_call(runtime: WasmRuntime, load_app: LoadApp) -> None:
    app = load_app(limits=CallLimits(memory_bytes=2**21, fuel=HUGE_FUEL, timeout_ms=300))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(AppTimeout):
            await runtime.call(app, "spin", {})
    finally:
        task.cancel()
    assert ticks >= 15  # ~30 in 300 ms on an idle box; the wasm thread does not hold the GIL


async def test_concurrent_calls_complete_bounded_by_max_concurrent_calls(tmp_path: Path, load_app: LoadApp) -> None:
    runtime = WasmRuntime(tmp_path / "cache", max_concurrent_calls=2)
    slow = FakeHost(log_delay_s=0.05)
    try:
        app = load_app(on=runtime, services=slow)
        results = await asyncio.gather(*(runtime.call(app, "log_all", index) for index in range(8)))
    finally:
        runtime.close()
    assert results == [None] * 8
    assert len(slow.logs) == 8 * 5
    assert slow.peak == 2  # never more than max_concurrent_calls at once, and it did run two at once


async def test_close_interrupts_running_calls_and_refuses_new_ones(tmp_path: Path, load_app: LoadApp) -> None:
    runtime = WasmRuntime(tmp_path / "cache", max_concurrent_calls=1)
    app = load_app(on=runtime, limits=CallLimits(memory_bytes=2**21, fuel=HUGE_FUEL, timeout_ms=10_000))
    running = asyncio.ensure_future(runtime.call(app, "spin", {}))
    queued = asyncio.ensure_future(runtime.call(app, "ok", {}))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await asyncio.to_thread(runtime.close)
    with pytest.raises(AppTimeout):
        await running
    with pytest.raises(AppCallFailed, match="closed"):
        await queued
    assert time.monotonic() - started < 2.0  # not the call's 10 s deadline
    with pytest.raises(AppCallFailed, match="closed"):
        await runtime.call(app, "ok", {})


async def test_too_many_waiting_calls_get_busy(tmp_path: Path, load_app: LoadApp,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("station.wasm.runner.MAX_WAITING_PER_WORKER", 1)  # one running + one waiting per worker
    runtime = WasmRuntime(tmp_path / "cache", max_concurrent_calls=1)
    try:
        app = load_app(on=runtime, services=FakeHost(log_delay_s=0.05))
        calls = [asyncio.ensure_future(runtime.call(app, "log_all", index)) for index in range(3)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        runtime.close()
    assert results[:2] == [None, None]
    assert isinstance(results[2], AppBusy)
