"""The zone service: zones from the config file (read-only) and from the API (stored), their
evaluation on every `NodePositionUpdated`, and the Python API the process engine and the HTTP
API use (update_zone and get_users_in_zone are `update` and `nodes_in_zone`).

Crossings are committed before they are published. Changing a zone's shape keeps who is
inside; the new shape decides from each node's next position report. Deactivating or
deleting a zone forgets its members without announcing exits (nobody moved).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from station.bus import EventBus, Unsubscribe
from station.config import ZoneConfig
from station.mesh.events import NodePositionUpdated
from station.services import Service, ServiceState
from station.store import Database
from station.store import zones as store
from station.zones.errors import InvalidZone, ZoneExists, ZoneNotFound, ZoneReadOnly
from station.zones.evaluate import Evaluator, Transition
from station.zones.events import ZoneEntered, ZoneExited
from station.zones.model import Zone, validate_zone, zone_from_config

logger = logging.getLogger(__name__)

MAX_EVENTS_PAGE = 1000  # log rows per read

Rows = list[dict[str, Any]]  # an alias: ZoneService.list shadows the builtin inside the class
Point = tuple[float, float] | Sequence[float]


class ZoneService(Service):
    name = "zones"

    def __init__(self, configured: list[ZoneConfig], hysteresis_m: float, database: Database,
                 bus: EventBus) -> None:
        super().__init__()
        self._configured = configured
        self._database = database
        self._bus = bus
        self._zones: dict[str, Zone] = {}
        self._evaluator = Evaluator(hysteresis_m)
        self._unsubscribe: Unsubscribe | None = None
        self.entries = 0
        self.exits = 0

    async def start(self) -> None:
        self.load()
        self._unsubscribe = self._bus.subscribe(NodePositionUpdated, self.position)
        self.health.state = ServiceState.RUNNING
        self._refresh_health()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def load(self) -> None:
        """Read zones and memberships; config zones shadow stored ones of the same name."""
        self._zones = {}
        for row in store.list_zones(self._database):
            self._zones[row["name"]] = _zone_from_row(row)
        for spec in self._configured:
            if spec.name in self._zones:
                logger.warning("config zone shadows an API zone", extra={"zone": spec.name})
            self._zones[spec.name] = zone_from_config(spec, "config")
        active = {name for name, zone in self._zones.items() if zone.active}
        forgotten = store.forget_members_except(self._database, active)
        if forgotten:
            logger.info("memberships of removed or inactive zones forgotten", extra={"rows": forgotten})
        self._evaluator = Evaluator(self._evaluator.hysteresis_m)
        for zone in self._zones.values():
            self._evaluator.set_zone(zone)
        self._evaluator.load_members(store.list_members(self._database))

    # ---- evaluation -----------------------------------------------------------------
    def position(self, event: NodePositionUpdated) -> None:
        transitions = self._evaluator.evaluate(event.node_id, event.latitude, event.longitude)
        if not transitions:
            return
        self._commit(transitions)

    def _commit(self, transitions: list[Transition]) -> None:
        store.record_crossings(self._database, [
            {"zone": t.zone, "node_id": t.node_id, "entered": t.entered, "latitude": t.latitude,
             "longitude": t.longitude} for t in transitions])
        self._evaluator.apply(transitions)
        for t in transitions:
            kind = ZoneEntered if t.entered else ZoneExited
            logger.info("node entered zone" if t.entered else "node left zone",
                        extra={"node": t.node_id, "zone": t.zone})
            if t.entered:
                self.entries += 1
            else:
                self.exits += 1
            self._bus.publish(kind(node_id=t.node_id, zone=t.zone, latitude=t.latitude,
                                   longitude=t.longitude))
        self._refresh_health()

    # ---- Python API (the process engine and the HTTP API) ---------------------------
    def list(self) -> list[Zone]:
        return [self._zones[name] for name in sorted(self._zones)]

    def get(self, name: str) -> Zone:
        zone = self._zones.get(name)
        if zone is None:
            raise ZoneNotFound(name)
        return zone

    def create(self, name: str, *, center: Point | None = None,
               radius_m: float | None = None, points: Sequence[Point] | None = None,
               description: str = "", active: bool = True) -> Zone:
        """A new zone: a circle (center + radius_m) or a polygon (points)."""
        spec = validate_zone({"name": name, "center": center, "radius_m": radius_m, "points": points,
                              "description": description, "active": active})
        existing = self._zones.get(spec.name)
        if existing is not None:
            raise ZoneExists(spec.name, "config file" if existing.source == "config" else "API")
        return self._save(spec, created=True)

    def update(self, name: str, *, center: Point | None = None,
               radius_m: float | None = None, points: Sequence[Point] | None = None,
               description: str | None = None, active: bool | None = None) -> Zone:
        """Change some of a zone's fields (None: unchanged). Giving points makes it a polygon;
        giving center or radius_m makes it a circle (a polygon turned circle needs both)."""
        current = self._writable(name)
        fields = current.spec()
        if points is not None:
            fields |= {"points": points, "center": None, "radius_m": None}
        elif center is not None or radius_m is not None:
            if "points" in fields:
                fields |= {"points": None, "center": None, "radius_m": None}
            fields |= {k: v for k, v in (("center", center), ("radius_m", radius_m)) if v is not None}
        if description is not None:
            fields["description"] = description
        if active is not None:
            fields["active"] = active
        return self._save(validate_zone(fields), created=False)

    def delete(self, name: str) -> None:
        self._writable(name)
        store.delete_zone(self._database, name)
        del self._zones[name]
        self._evaluator.remove_zone(name)
        logger.info("zone deleted", extra={"zone": name})
        self._refresh_health()

    def nodes_in_zone(self, name: str) -> Rows:
        """The nodes inside the zone now, with their node database rows (get_users_in_zone)."""
        self.get(name)
        return store.nodes_in_zone(self._database, name)

    def events(self, name: str | None, after: int = 0, limit: int = 100) -> Rows:
        """Logged crossings (of one zone, or all), oldest first, after the `seq` cursor."""
        if name is not None:
            self.get(name)
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise InvalidZone("limit", f"must be 1..{MAX_EVENTS_PAGE}")
        return store.list_events(self._database, name, after, limit)

    def _writable(self, name: str) -> Zone:
        zone = self.get(name)
        if zone.source == "config":
            raise ZoneReadOnly(name)
        return zone

    def _save(self, spec: ZoneConfig, created: bool) -> Zone:
        row = store.save_zone(self._database, spec.model_dump(mode="json"), created)
        zone = _zone_from_row(row)
        self._zones[zone.name] = zone
        self._evaluator.set_zone(zone)  # inactive: members forgotten, as the store just did
        logger.info("zone saved", extra={"zone": zone.name, "new": created, "active": zone.active})
        self._refresh_health()
        return zone

    def _refresh_health(self) -> None:
        self.health.detail = {
            "zones": len(self._zones), "active": self._evaluator.zone_count,
            "members": self._evaluator.member_count(), "entries": self.entries, "exits": self.exits}


def _zone_from_row(row: dict[str, Any]) -> Zone:
    spec = ZoneConfig.model_validate({
        "name": row["name"], "description": row["description"], "active": row["active"],
        "center": None if row["center_lat"] is None else (row["center_lat"], row["center_lon"]),
        "radius_m": row["radius_m"], "points": row["points"]})
    return zone_from_config(spec, "api", row["id"], row["created_at"], row["updated_at"])
