"""Process engine events on the station bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class ExecutionFinished(Event):
    execution_id: str
    process_id: str
    process: str
    status: str
    error: str | None


@dataclass(frozen=True, kw_only=True)
class BotTriggerFired(Event):
    """A bot was fired, by a matching mesh text or by a process's trigger_bot action."""

    bot: str
    input: dict[str, Any] = field(default_factory=dict)
    source: str = "process"


@dataclass(frozen=True, kw_only=True)
class NotificationSent(Event):
    title: str
    message: str
    severity: str
    process: str | None = None
