"""The contract between the daemon and the services it supervises, and their health states.
Must not know any concrete service."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ServiceState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"  # running, but part of it is down (a radio reconnecting)
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class ServiceHealth:
    state: ServiceState = ServiceState.STOPPED
    detail: dict[str, Any] = field(default_factory=dict)


class Service:
    """A part of the station with a start/stop life cycle. Subclasses own their tasks."""

    name: str = "service"
    stop_timeout_s: float = 5.0  # a stage of the staged shutdown

    def __init__(self) -> None:
        self.health = ServiceHealth()

    async def start(self) -> None:
        """Bring the service up; return once it can serve (long work goes into owned tasks)."""

    async def stop(self) -> None:
        """Cancel and await owned tasks; close what was opened."""
