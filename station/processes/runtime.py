"""A loaded process: its parsed definition, compiled conditions and the bookkeeping of its
limits (concurrency mode, queue, rate window). Pure state; the engine drives it."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from station.processes.conditions import CompiledCondition, compile_condition
from station.processes.definition import ProcessDefinition, TriggerSpec


@dataclass
class Binding:
    """One trigger of one process, as the engine's index holds it."""

    runtime: ProcessRuntime
    index: int
    spec: TriggerSpec
    conditions: CompiledCondition | None

    @property
    def key(self) -> str:
        return f"{self.runtime.process_id}:t{self.index}"


@dataclass
class Pending:
    trigger_type: str
    event: dict[str, Any]
    depth: int
    triggered_by: str
    trace: dict[str, Any]
    execution_id: str | None = None  # set when resumed from the database


@dataclass
class ProcessRuntime:
    process_id: str
    name: str
    version: int
    definition: ProcessDefinition
    conditions: CompiledCondition | None = None
    bindings: list[Binding] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    queue: collections.deque[Pending] = field(default_factory=collections.deque)
    recent_starts: collections.deque[float] = field(default_factory=collections.deque)

    @classmethod
    def load(cls, process_id: str, name: str, version: int, definition: ProcessDefinition) -> ProcessRuntime:
        runtime = cls(
            process_id,
            name,
            version,
            definition,
            compile_condition(definition.conditions) if definition.conditions is not None else None,
        )
        runtime.bindings = [
            Binding(
                runtime,
                index,
                spec,
                compile_condition(spec.conditions) if spec.conditions is not None else None,
            )
            for index, spec in enumerate(definition.triggers)
        ]
        return runtime

    def blocked_by(self, max_depth: int, depth: int) -> str | None:
        """Why a new run may not start now (None: it may); 'queue' means wait in line."""
        definition = self.definition
        if depth > max_depth:
            return f"chain depth {depth} exceeds processes.max_chain_depth {max_depth}"
        limit = definition.rate_limit
        if limit is not None:
            clock = time.monotonic()
            while self.recent_starts and self.recent_starts[0] <= clock - limit.per_seconds:
                self.recent_starts.popleft()
            if len(self.recent_starts) >= limit.max_runs:
                return f"rate limit: {limit.max_runs} runs per {limit.per_seconds:g} s"
        if not self.active:
            return None
        if definition.mode == "single":
            return "already running (mode single)"
        if definition.mode == "parallel" and len(self.active) < definition.max_parallel:
            return None
        # queued mode, or parallel at its maximum: wait in line (a burst is smoothed, not dropped)
        if len(self.queue) >= definition.max_queued:
            return f"queue full ({definition.max_queued} waiting)"
        return "queue"

    def started(self, execution_id: str) -> None:
        self.active.add(execution_id)
        if self.definition.rate_limit is not None:
            self.recent_starts.append(time.monotonic())
