"""Deciding zone entries and exits from position reports, with hysteresis.

A node outside a zone enters once it is at least the hysteresis inside the boundary; a node
inside exits once it is at least the hysteresis outside; in between its state is kept, so
a node sitting on the border with GPS jitter does not flap. Each zone carries a bounding box
widened by its hysteresis: a report outside the box needs no geometry at all.

Holds the active zones and who is inside which, in memory. Pure decisions: `evaluate`
proposes transitions, the caller commits them and then calls `apply`. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from station.zones.geometry import Box, Circle, PreparedPolygon, bounding_box, depth_m, narrowest_m
from station.zones.model import Zone

NARROW_ZONE_SHARE = 0.25  # hysteresis is capped at a quarter of a zone's width: a small zone stays enterable


@dataclass(frozen=True, slots=True)
class Transition:
    zone: str
    node_id: str
    entered: bool  # False: exited
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class _Compiled:
    zone: Zone
    hysteresis_m: float
    box: Box
    prepared: Circle | PreparedPolygon


def effective_hysteresis(zone: Zone, hysteresis_m: float) -> float:
    return min(hysteresis_m, narrowest_m(zone.shape) * NARROW_ZONE_SHARE)


class Evaluator:
    def __init__(self, hysteresis_m: float) -> None:
        self.hysteresis_m = hysteresis_m
        self._zones: dict[str, _Compiled] = {}
        self._inside: dict[str, set[str]] = {}  # node id -> names of the zones it is in

    def set_zone(self, zone: Zone) -> None:
        """Add or replace an active zone (an inactive one is removed)."""
        if not zone.active:
            self.remove_zone(zone.name)
            return
        margin = effective_hysteresis(zone, self.hysteresis_m)
        shape = zone.shape
        prepared = shape if isinstance(shape, Circle) else PreparedPolygon(shape)
        self._zones[zone.name] = _Compiled(zone, margin, bounding_box(shape, margin), prepared)

    def remove_zone(self, name: str) -> None:
        """Stop evaluating a zone and forget who was in it (the caller clears the store)."""
        self._zones.pop(name, None)
        for zones in self._inside.values():
            zones.discard(name)

    def load_members(self, members: Iterable[tuple[str, str]]) -> None:
        """(zone, node id) pairs from the store, at start."""
        for zone, node in members:
            self._inside.setdefault(node, set()).add(zone)

    @property
    def zone_count(self) -> int:
        return len(self._zones)

    def member_count(self) -> int:
        return sum(len(zones) for zones in self._inside.values())

    def evaluate(self, node_id: str, latitude: float, longitude: float) -> list[Transition]:
        inside = self._inside.get(node_id, set())
        found: list[Transition] = []
        for compiled in self._zones.values():
            name = compiled.zone.name
            member = name in inside
            if not compiled.box.contains(latitude, longitude):
                if member:  # outside the widened box: outside by more than the hysteresis
                    found.append(Transition(name, node_id, False, latitude, longitude))
                continue
            margin = compiled.hysteresis_m
            prepared = compiled.prepared
            depth = (depth_m(prepared, latitude, longitude) if isinstance(prepared, Circle)
                     else prepared.depth_m(latitude, longitude, within_m=margin + 1.0))
            if not member and depth >= margin:
                found.append(Transition(name, node_id, True, latitude, longitude))
            elif member and depth <= -margin and depth < 0:
                found.append(Transition(name, node_id, False, latitude, longitude))
        return found

    def apply(self, transitions: Iterable[Transition]) -> None:
        for transition in transitions:
            zones = self._inside.setdefault(transition.node_id, set())
            if transition.entered:
                zones.add(transition.zone)
            else:
                zones.discard(transition.zone)
