"""The in-memory state of one execution while it runs: its definition, the trigger event, the
template context (vars, event, steps, execution) and what its steps produced so far."""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

from station.processes.definition import ProcessDefinition

# Depth of the process chain whose action is running in this task: an event published from
# inside an action starts its processes one level deeper (loops are cut at a maximum depth).
CHAIN_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("process_chain_depth", default=-1)


@dataclass
class ExecutionRun:
    id: str
    process_id: str
    process_name: str
    version: int
    definition: ProcessDefinition
    trigger_type: str
    event: dict[str, Any]
    depth: int
    parent_id: str | None = None
    parent_path: str | None = None
    started_at: float = field(default_factory=time.time)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> step row (final)
    outputs: dict[str, Any] = field(default_factory=dict)  # action id -> {"result", "status"}
    steps_completed: int = 0
    log_seq: int = 0
    done: asyncio.Future[str] | None = None

    def context(self) -> dict[str, Any]:
        """What templates and conditions see."""
        return {
            "event": self.event,
            "vars": self.definition.variables,
            "steps": self.outputs,
            "execution": {
                "id": self.id,
                "process": self.process_name,
                "depth": self.depth,
                "trigger": self.trigger_type,
            },
        }

    def idempotency_key(self, path: str) -> str:
        """The same for every attempt and every resume of one step: sends happen once."""
        return f"{self.id}/{path}"
