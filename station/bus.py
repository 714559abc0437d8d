"""In-process event bus: typed events, subscribe() returns the function that unsubscribes.

A failing listener is logged and contained; it never breaks the publisher or other
listeners. Owns the tasks of async listeners. Must not persist anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every bus event; subclasses are frozen dataclasses named for what happened."""

    at: float = field(default_factory=time.time)


E = TypeVar("E", bound=Event)
Listener = Callable[[Any], Awaitable[None] | None]
Unsubscribe = Callable[[], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[type[Event], list[Listener]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type[E], listener: Callable[[E], Awaitable[None] | None]) -> Unsubscribe:
        """Call `listener` for every published event of `event_type` (or a subclass)."""
        listeners = self._listeners.setdefault(event_type, [])
        listeners.append(listener)

        def unsubscribe() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for event_type in type(event).__mro__:
            for listener in tuple(self._listeners.get(event_type, ())):
                self._deliver(listener, event)

    def _deliver(self, listener: Listener, event: Event) -> None:
        try:
            outcome = listener(event)
        except Exception:
            logger.exception("bus listener failed", extra={"event": type(event).__name__})
            return
        if outcome is not None:
            task = asyncio.ensure_future(outcome)
            self._tasks.add(task)
            task.add_done_callback(self._listener_done)

    def _listener_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("bus listener failed", exc_info=task.exception())

    async def drain(self, grace_s: float) -> None:
        """Wait for running async listeners (shutdown), cancelling what outlives `grace_s`."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
