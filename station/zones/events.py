"""Zone events published on the station bus: a node entered or left a zone (the process
engine's zone_entry and zone_exit triggers). Published only after the change is committed."""

from __future__ import annotations

from dataclasses import dataclass

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class ZoneCrossed(Event):
    """Base of both directions: subscribe to this to see every crossing."""

    node_id: str
    zone: str
    latitude: float  # the position report that decided the crossing
    longitude: float


@dataclass(frozen=True, kw_only=True)
class ZoneEntered(ZoneCrossed):
    pass


@dataclass(frozen=True, kw_only=True)
class ZoneExited(ZoneCrossed):
    pass
