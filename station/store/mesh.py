"""Node database and received-message log tables. Upserts merge what a packet tells about a
node with what was known, so a telemetry packet does not erase a position."""

from __future__ import annotations

from typing import Any

from station.store.database import Database, new_id, now

NODE_FIELDS = (
    "node_id", "long_name", "short_name", "hw_model", "radio", "last_heard", "snr", "rssi",
    "hops_away", "latitude", "longitude", "altitude", "position_time", "battery_level", "voltage",
)


def upsert_node(database: Database, node_num: int, fields: dict[str, Any]) -> None:
    known = {key: value for key, value in fields.items() if key in NODE_FIELDS and value is not None}
    columns = ["node_num", *known, "updated_at"]
    values = [node_num, *known.values(), now()]
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns[1:])
    with database.transaction() as db:
        db.execute(
            f"INSERT INTO mesh_nodes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
            f" ON CONFLICT (node_num) DO UPDATE SET {updates}",
            values,
        )


def list_nodes(database: Database) -> list[dict[str, Any]]:
    rows = database.connection.execute("SELECT * FROM mesh_nodes ORDER BY last_heard DESC NULLS LAST")
    return [dict(row) for row in rows]


def insert_received(database: Database, record: dict[str, Any]) -> dict[str, Any] | None:
    """Log a received packet once: the same (radio, sender, packet id) heard twice is dropped."""
    row = {"id": new_id(), "direction": "in", "created_at": now(), **record}
    with database.transaction() as db:
        inserted = db.execute(
            "INSERT OR IGNORE INTO mesh_messages (id, direction, radio, packet_id, from_node, to_node,"
            " channel, portnum, text, snr, rssi, hops, created_at) VALUES (:id, :direction, :radio,"
            " :packet_id, :from_node, :to_node, :channel, :portnum, :text, :snr, :rssi, :hops,"
            " :created_at)",
            row,
        ).rowcount
    return row if inserted else None


def list_received(database: Database, after: float, limit: int) -> list[dict[str, Any]]:
    rows = database.connection.execute(
        "SELECT * FROM mesh_messages WHERE created_at > ? ORDER BY created_at LIMIT ?", (after, limit)
    )
    return [dict(row) for row in rows]
