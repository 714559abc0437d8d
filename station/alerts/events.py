"""Alert events published on the station bus after the change is committed (processes, the
dashboard and sync listen). A duplicate folded into an existing alert publishes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class AlertEvent(Event):
    """Base of the alert events: subscribe to it to hear all three."""

    alert_id: str
    severity: str
    node_id: str | None
    source: str
    alert: dict[str, Any] = field(default_factory=dict)  # the row as committed (a copy)

    @classmethod
    def from_alert(cls, alert: dict[str, Any]) -> Self:
        return cls(alert_id=alert["id"], severity=alert["severity"], node_id=alert["node_id"],
                   source=alert["source"], alert=dict(alert))


@dataclass(frozen=True, kw_only=True)
class AlertCreated(AlertEvent):
    """A new alert (not a duplicate folded into an unresolved one)."""


@dataclass(frozen=True, kw_only=True)
class AlertAcknowledged(AlertEvent):
    @property
    def by(self) -> str:
        return str(self.alert["acknowledged_by"])


@dataclass(frozen=True, kw_only=True)
class AlertResolved(AlertEvent):
    @property
    def by(self) -> str:
        return str(self.alert["resolved_by"])
