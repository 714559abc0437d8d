"""Zone tables: zones made through the API, who is inside which zone (config and API zones),
and the log of entries and exits. A crossing's membership change and its log line commit
together, so a restart neither repeats nor forgets one."""

from __future__ import annotations

import json
from typing import Any

from station.store.database import Database, new_id, now
from station.store.mesh import NODE_FIELDS

ZONE_EVENTS_KEPT = 100_000  # log rows kept: weeks of crossings for a hundred nodes, a few MB
PRUNE_EVERY = 1000  # crossings between two prunes of the log


def list_zones(database: Database) -> list[dict[str, Any]]:
    rows = database.connection.execute("SELECT * FROM zones ORDER BY name")
    return [_zone_row(row) for row in rows]


def _zone_row(row: Any) -> dict[str, Any]:
    found = dict(row)
    found["points"] = json.loads(found["points"]) if found["points"] else None
    found["active"] = bool(found["active"])
    return found


def save_zone(database: Database, spec: dict[str, Any], created: bool) -> dict[str, Any]:
    """Insert (created) or replace the zone named spec['name']; returns the stored row."""
    center = spec.get("center") or (None, None)
    row = {"name": spec["name"], "kind": "polygon" if spec.get("points") else "circle",
           "center_lat": center[0], "center_lon": center[1], "radius_m": spec.get("radius_m"),
           "points": json.dumps(spec["points"]) if spec.get("points") else None,
           "description": spec.get("description", ""), "active": int(spec.get("active", True)),
           "at": now(), "id": new_id()}
    with database.transaction() as db:
        if created:
            db.execute(
                "INSERT INTO zones (name, id, kind, center_lat, center_lon, radius_m, points, description,"
                " active, created_at, updated_at) VALUES (:name, :id, :kind, :center_lat, :center_lon,"
                " :radius_m, :points, :description, :active, :at, :at)", row)
        else:
            db.execute(
                "UPDATE zones SET kind = :kind, center_lat = :center_lat, center_lon = :center_lon,"
                " radius_m = :radius_m, points = :points, description = :description, active = :active,"
                " updated_at = :at WHERE name = :name", row)
        if not row["active"]:
            db.execute("DELETE FROM zone_members WHERE zone = ?", (row["name"],))
        stored = db.execute("SELECT * FROM zones WHERE name = ?", (row["name"],)).fetchone()
    return _zone_row(stored)


def delete_zone(database: Database, name: str) -> None:
    with database.transaction() as db:
        db.execute("DELETE FROM zones WHERE name = ?", (name,))
        db.execute("DELETE FROM zone_members WHERE zone = ?", (name,))


def list_members(database: Database) -> list[tuple[str, str]]:
    rows = database.connection.execute("SELECT zone, node_id FROM zone_members")
    return [(row["zone"], row["node_id"]) for row in rows]


def forget_members_except(database: Database, zones: set[str]) -> int:
    """Drop memberships of zones that no longer exist or are inactive (at start)."""
    marks = ", ".join("?" * len(zones))
    with database.transaction() as db:
        return int(db.execute(
            f"DELETE FROM zone_members WHERE zone NOT IN ({marks})", tuple(zones)  # noqa: S608
        ).rowcount)


def record_crossings(database: Database, crossings: list[dict[str, Any]]) -> None:
    """Each crossing: zone, node_id, entered (bool), latitude, longitude."""
    at = now()
    with database.transaction() as db:
        for crossing in crossings:
            row = {**crossing, "at": at, "id": new_id(),
                   "kind": "entered" if crossing["entered"] else "exited"}
            if crossing["entered"]:
                db.execute("INSERT OR REPLACE INTO zone_members (zone, node_id, entered_at, latitude,"
                           " longitude) VALUES (:zone, :node_id, :at, :latitude, :longitude)", row)
            else:
                db.execute("DELETE FROM zone_members WHERE zone = :zone AND node_id = :node_id", row)
            seq = db.execute("INSERT INTO zone_events (id, zone, node_id, kind, latitude, longitude, at)"
                             " VALUES (:id, :zone, :node_id, :kind, :latitude, :longitude, :at)",
                             row).lastrowid
            if seq is not None and seq % PRUNE_EVERY == 0:
                db.execute("DELETE FROM zone_events WHERE seq <= ?", (seq - ZONE_EVENTS_KEPT,))


def nodes_in_zone(database: Database, zone: str) -> list[dict[str, Any]]:
    """Members with what the node database knows of them (NULLs for a node it lacks)."""
    node_columns = ", ".join(f"n.{column}" for column in NODE_FIELDS if column != "node_id")
    rows = database.connection.execute(
        f"SELECT m.node_id, {node_columns}, m.entered_at, m.latitude AS entered_latitude,"  # noqa: S608
        " m.longitude AS entered_longitude FROM zone_members m LEFT JOIN mesh_nodes n"
        " ON n.node_id = m.node_id WHERE m.zone = ? ORDER BY m.entered_at", (zone,))
    return [dict(row) for row in rows]


def list_events(database: Database, zone: str | None, after: int, limit: int) -> list[dict[str, Any]]:
    if zone is None:
        rows = database.connection.execute(
            "SELECT * FROM zone_events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
    else:
        rows = database.connection.execute(
            "SELECT * FROM zone_events WHERE zone = ? AND seq > ? ORDER BY seq LIMIT ?",
            (zone, after, limit))
    return [dict(row) for row in rows]
