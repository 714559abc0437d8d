"""time_schedule triggers: fires each schedule at its times, and at start catches up on the
runs missed while the station was off (per process: skip, once, or all up to a maximum).

The last fire time of each trigger is journaled, so a restart neither repeats nor loses a run.
Owns timing only; the engine decides whether a fired trigger starts an execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from station.processes.schedule import Schedule, parse_schedule
from station.processes.triggers import SCHEDULE
from station.store import processes as store

if TYPE_CHECKING:
    from station.processes.engine import ProcessEngine
    from station.processes.runtime import Binding

logger = logging.getLogger(__name__)

MAX_SLEEP_S = 30.0  # re-check at least this often: the wall clock may be set (GPS, NTP) meanwhile


class Scheduler:
    def __init__(self, engine: ProcessEngine) -> None:
        self._engine = engine
        self._entries: dict[str, tuple[Binding, Schedule]] = {}
        self._next: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def reload(self, bindings: list[Binding]) -> None:
        entries = {}
        for binding in bindings:
            entries[binding.key] = (binding, parse_schedule(binding.spec.config, "config"))
        now = self._engine.now()
        self._next = {
            key: self._next.get(key) or schedule.next_after(now)
            for key, (_binding, schedule) in entries.items()
        }
        self._entries = entries
        self._wake.set()

    async def start(self) -> None:
        self._catch_up()
        self._task = asyncio.create_task(self._loop(), name="process-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _catch_up(self) -> None:
        now = self._engine.now()
        for key, (binding, schedule) in self._entries.items():
            last = store.schedule_last_fire(self._engine.database, key)
            if last is None:
                self._record(key, now)  # first start of this trigger: nothing was missed
                continue
            policy = binding.runtime.definition.catch_up
            missed = schedule.fire_times_between(datetime.fromtimestamp(last, UTC), now, policy.max)
            if missed and policy.policy != "skip":
                chosen = missed[-1:] if policy.policy == "once" else missed
                for when in chosen:
                    self._fire(binding, when, catch_up={"missed": len(missed), "policy": policy.policy})
                logger.info(
                    "schedule caught up",
                    extra={"process_name": binding.runtime.name, "missed": len(missed), "fired": len(chosen)},
                )
            self._record(key, now)
            self._next[key] = schedule.next_after(now)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self._engine.now()
            for key, due in list(self._next.items()):
                entry = self._entries.get(key)
                if entry is None or due > now:
                    continue
                binding, schedule = entry
                self._fire(binding, due)
                self._record(key, due.timestamp())
                self._next[key] = schedule.next_after(max(due, now))
            soonest = min(self._next.values(), default=None)
            delay = MAX_SLEEP_S if soonest is None else (soonest - self._engine.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(delay, MAX_SLEEP_S)))

    def _fire(self, binding: Binding, when: datetime, catch_up: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {
            "type": "schedule",
            "scheduled_for": when.isoformat(),
            "fired_at": self._engine.now().isoformat(),
        }
        if catch_up is not None:
            payload["catch_up"] = catch_up
        self._engine.consider(binding, SCHEDULE, payload, 0, "schedule")

    def _record(self, key: str, at: datetime | float) -> None:
        stamp = at.timestamp() if isinstance(at, datetime) else at
        self._engine.journal.write_soon(store.schedule_fired_sql(key, stamp))
