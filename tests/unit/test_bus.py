from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from station.bus import Event, EventBus


@dataclass(frozen=True, kw_only=True)
class Ping(Event):
    n: int


async def test_subscribe_publish_unsubscribe() -> None:
    bus = EventBus()
    seen: list[int] = []
    unsubscribe = bus.subscribe(Ping, lambda event: seen.append(event.n))
    bus.publish(Ping(n=1))
    unsubscribe()
    bus.publish(Ping(n=2))
    assert seen == [1]


async def test_base_class_listeners_see_subclass_events() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)
    bus.publish(Ping(n=3))
    assert isinstance(seen[0], Ping)


async def test_failing_listener_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[int] = []

    def broken(event: Ping) -> None:
        raise ValueError("listener bug")

    async def broken_async(event: Ping) -> None:
        raise ValueError("async listener bug")

    bus.subscribe(Ping, broken)
    bus.subscribe(Ping, broken_async)
    bus.subscribe(Ping, lambda event: seen.append(event.n))
    bus.publish(Ping(n=4))
    await asyncio.sleep(0)
    await bus.drain(grace_s=1.0)
    assert seen == [4]
    assert "listener failed" in caplog.text
