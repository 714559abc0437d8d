"""Mesh events published on the station bus (processes, the dashboard and sync listen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class MeshMessageReceived(Event):
    radio: str
    from_node: str
    to_node: str
    channel: int
    text: str
    packet_id: int | None


@dataclass(frozen=True, kw_only=True)
class NodeUpdated(Event):
    node_id: str
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NodePositionUpdated(Event):
    node_id: str
    latitude: float
    longitude: float
    altitude: float | None


@dataclass(frozen=True, kw_only=True)
class OutboxMessageFinished(Event):
    message_id: str
    status: str  # delivered, failed or expired
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class RadioLinkChanged(Event):
    radio: str
    state: str
    reason: str | None
