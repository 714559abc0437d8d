"""Node presence and node group tables. Presence rows say whether the station counts a node
online; group rows say which named groups a node belongs to."""

from __future__ import annotations

from typing import Any

from station.store.database import Database


def list_presence(database: Database) -> list[dict[str, Any]]:
    rows = database.connection.execute("SELECT * FROM node_presence ORDER BY node_id")
    return [{**dict(row), "online": bool(row["online"])} for row in rows]


def insert_presence(database: Database, rows: list[dict[str, Any]]) -> None:
    with database.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO node_presence (node_id, source, first_seen_at, last_heard_at, online,"
            " changed_at) VALUES (:node_id, :source, :first_seen_at, :last_heard_at, :online, :changed_at)",
            [{**row, "online": int(row["online"])} for row in rows])


def set_online(database: Database, changes: list[dict[str, Any]]) -> None:
    """Each change: node_id, online, last_heard_at, changed_at."""
    with database.transaction() as db:
        db.executemany(
            "UPDATE node_presence SET online = :online, last_heard_at = :last_heard_at,"
            " changed_at = :changed_at WHERE node_id = :node_id",
            [{**change, "online": int(change["online"])} for change in changes])


def touch(database: Database, heard: list[tuple[str, float]]) -> None:
    with database.transaction() as db:
        db.executemany("UPDATE node_presence SET last_heard_at = ? WHERE node_id = ?",
                       [(at, node) for node, at in heard])


def nodes_without_presence(database: Database) -> list[tuple[str, float | None]]:
    """Nodes in the node database (imported from a radio's list) the presence table lacks."""
    rows = database.connection.execute(
        "SELECT node_id, last_heard FROM mesh_nodes WHERE node_id NOT IN"
        " (SELECT node_id FROM node_presence) ORDER BY node_id")
    return [(row["node_id"], row["last_heard"]) for row in rows]


def groups_of(database: Database, node_id: str) -> list[str]:
    rows = database.connection.execute(
        "SELECT group_name FROM node_groups WHERE node_id = ? ORDER BY group_name", (node_id,))
    return [row[0] for row in rows]


def change_groups(database: Database, node_id: str, added: list[str], removed: list[str], at: float) -> None:
    with database.transaction() as db:
        db.executemany("DELETE FROM node_groups WHERE node_id = ? AND group_name = ?",
                       [(node_id, group) for group in removed])
        db.executemany("INSERT OR IGNORE INTO node_groups (node_id, group_name, added_at) VALUES (?, ?, ?)",
                       [(node_id, group, at) for group in added])


def group_members(database: Database, group: str) -> list[dict[str, Any]]:
    """Members with their name and presence (NULLs for what the station does not know)."""
    rows = database.connection.execute(
        "SELECT g.node_id, g.added_at, n.long_name, n.short_name, p.online, p.last_heard_at"
        " FROM node_groups g LEFT JOIN mesh_nodes n ON n.node_id = g.node_id"
        " LEFT JOIN node_presence p ON p.node_id = g.node_id WHERE g.group_name = ? ORDER BY g.node_id",
        (group,))
    return [{**dict(row), "online": None if row["online"] is None else bool(row["online"])} for row in rows]


def group_counts(database: Database) -> dict[str, int]:
    rows = database.connection.execute(
        "SELECT group_name, count(*) FROM node_groups GROUP BY group_name ORDER BY group_name")
    return {row[0]: int(row[1]) for row in rows}
