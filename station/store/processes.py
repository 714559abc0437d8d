"""Process tables: definitions and their versions, the normalized trigger and action rows,
executions, steps, logs, templates and schedule state. Reads return plain dicts.

Writes made while executions run go through the engine's journal (group commit) as
statements built here; definition changes are their own transactions.
"""

from __future__ import annotations

import json
from typing import Any

from station.store.database import Database, new_id, now, to_json

FINAL = ("completed", "failed", "skipped", "timeout")


def _json(value: Any) -> str | None:
    return None if value is None else to_json(value)


# ---- definitions ---------------------------------------------------------------------
def insert_process(database: Database, definition: dict[str, Any], flat_actions: list[dict[str, Any]],
                   created_by: str | None, template_id: str | None = None) -> dict[str, Any]:
    process_id, at = new_id(), now()
    with database.transaction() as db:
        db.execute(
            "INSERT INTO processes (id, name, description, template_id, created_by, created_at,"
            " updated_at, is_active, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1)",
            (process_id, definition["name"], definition.get("description", ""), template_id,
             created_by, at, at),
        )
        _write_version(db, process_id, 1, definition, flat_actions, at)
    return get_process(database, process_id) or {}


def update_process(database: Database, process_id: str, definition: dict[str, Any],
                   flat_actions: list[dict[str, Any]]) -> dict[str, Any]:
    at = now()
    with database.transaction() as db:
        version = db.execute("SELECT version FROM processes WHERE id = ?", (process_id,)).fetchone()[0] + 1
        db.execute("UPDATE processes SET name = ?, description = ?, version = ?, updated_at = ?,"
                   " is_active = 1 WHERE id = ?",
                   (definition["name"], definition.get("description", ""), version, at, process_id))
        _write_version(db, process_id, version, definition, flat_actions, at)
    return get_process(database, process_id) or {}


def _write_version(db: Any, process_id: str, version: int, definition: dict[str, Any],
                   flat_actions: list[dict[str, Any]], at: float) -> None:
    db.execute("INSERT INTO process_versions VALUES (?, ?, ?, ?)",
               (process_id, version, json.dumps(definition), at))
    db.execute("DELETE FROM process_triggers WHERE process_id = ?", (process_id,))
    db.execute("DELETE FROM process_actions WHERE process_id = ?", (process_id,))
    for index, trigger in enumerate(definition.get("triggers", [])):
        db.execute(
            "INSERT INTO process_triggers VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            (trigger_id(process_id, index), process_id, trigger["type"], json.dumps(trigger.get("config", {})),
             _json(trigger.get("conditions")), trigger.get("priority", 0), at),
        )
    for order, action in enumerate(flat_actions):
        db.execute(
            "INSERT INTO process_actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id(), process_id, action["path"], action["type"], json.dumps(action.get("config", {})),
             _json(action.get("conditions")), order, action.get("timeout_seconds", 30.0),
             action.get("retry_count", 0), at),
        )


def trigger_id(process_id: str, index: int) -> str:
    """Stable across versions, so a schedule's last fire time survives an edit."""
    return f"{process_id}:t{index}"


def set_active(database: Database, process_id: str, active: bool) -> bool:
    with database.transaction() as db:
        return db.execute("UPDATE processes SET is_active = ?, updated_at = ? WHERE id = ?",
                          (int(active), now(), process_id)).rowcount == 1


def get_process(database: Database, process_id: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT p.*, v.definition FROM processes p JOIN process_versions v"
        " ON v.process_id = p.id AND v.version = p.version WHERE p.id = ? OR p.name = ?",
        (process_id, process_id),
    ).fetchone()
    return None if row is None else _process(dict(row))


def definition_at(database: Database, process_id: str, version: int) -> dict[str, Any]:
    row = database.connection.execute(
        "SELECT definition FROM process_versions WHERE process_id = ? AND version = ?", (process_id, version)
    ).fetchone()
    return dict(json.loads(row[0]))


def list_processes(database: Database, active_only: bool = False, template_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    clause, params = _where({"p.is_active": 1 if active_only else None, "p.template_id": template_id or None})
    total = database.connection.execute(
        f"SELECT COUNT(*) FROM processes p WHERE {clause}", params).fetchone()[0]  # noqa: S608
    query = ("SELECT p.*, v.definition FROM processes p JOIN process_versions v ON v.process_id = p.id"  # noqa: S608
             f" AND v.version = p.version WHERE {clause} ORDER BY p.name LIMIT ? OFFSET ?")
    rows = database.connection.execute(
        query,
        (*params, limit, offset),
    )
    return [_process(dict(row)) for row in rows], int(total)


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """`column = ?` for each filter given (None: no filter); the columns are ours, never input."""
    given = {column: value for column, value in filters.items() if value is not None}
    return " AND ".join(f"{column} = ?" for column in given) or "1 = 1", list(given.values())


def _process(row: dict[str, Any]) -> dict[str, Any]:
    row["definition"] = json.loads(row["definition"])
    row["is_active"] = bool(row["is_active"])
    return row


# ---- executions (statements for the journal) ------------------------------------------
def insert_execution_sql(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(row)
    return (f"INSERT INTO process_executions ({columns}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
            row)


def finish_execution_sql(execution_id: str, process_id: str, status: str, error: str | None, at: float,
                         elapsed_ms: float, steps_completed: int) -> list[tuple[str, Any]]:
    return [
        ("UPDATE process_executions SET status = ?, error_message = ?, completed_at = ?,"
         " execution_time_ms = ?, steps_completed = ? WHERE id = ?",
         (status, error, at, elapsed_ms, steps_completed, execution_id)),
        ("UPDATE processes SET execution_count = execution_count + 1, last_executed = ? WHERE id = ?",
         (at, process_id)),
    ]


def step_started_sql(execution_id: str, path: str, action_type: str, rendered: Any,
                     at: float) -> tuple[str, Any]:
    return ("INSERT INTO process_execution_steps (execution_id, action_path, action_type, status,"
            " started_at, input) VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (execution_id, action_path)"
            " DO UPDATE SET status = 'running', input = excluded.input",
            (execution_id, path, action_type, at, _json(rendered)))


def step_finished_sql(execution_id: str, path: str, action_type: str, status: str, result: Any,
                      error: str | None, at: float, elapsed_ms: float, retries: int) -> tuple[str, Any]:
    return ("INSERT INTO process_execution_steps (execution_id, action_path, action_type, status,"
            " started_at, completed_at, result, error_message, execution_time_ms, retry_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id, action_path) DO UPDATE SET"
            " status = excluded.status, completed_at = excluded.completed_at, result = excluded.result,"
            " error_message = excluded.error_message, execution_time_ms = excluded.execution_time_ms,"
            " retry_count = excluded.retry_count",
            (execution_id, path, action_type, status, at, at, _json(result), error, elapsed_ms, retries))


def log_sql(execution_id: str, seq: int, level: str, message: str, data: Any) -> tuple[str, Any]:
    return ("INSERT INTO process_execution_logs VALUES (?, ?, ?, ?, ?, ?)",
            (execution_id, seq, now(), level, message, _json(data)))


def open_executions(database: Database) -> list[dict[str, Any]]:
    rows = database.connection.execute(
        "SELECT * FROM process_executions WHERE status IN ('pending', 'running') ORDER BY started_at")
    return [_execution(dict(row)) for row in rows]


def step_rows(database: Database, execution_id: str) -> list[dict[str, Any]]:
    rows = database.connection.execute(
        "SELECT * FROM process_execution_steps WHERE execution_id = ? ORDER BY started_at, action_path",
        (execution_id,))
    steps = []
    for row in rows:
        step = dict(row)
        step["input"] = json.loads(step["input"]) if step["input"] else None
        step["result"] = json.loads(step["result"]) if step["result"] else None
        steps.append(step)
    return steps


def get_execution(database: Database, execution_id: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT e.*, p.name AS process_name FROM process_executions e JOIN processes p"
        " ON p.id = e.process_id WHERE e.id = ?", (execution_id,)).fetchone()
    if row is None:
        return None
    execution = _execution(dict(row))
    execution["steps"] = step_rows(database, execution_id)
    return execution


def child_execution(database: Database, parent_id: str, step_path: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT * FROM process_executions WHERE parent_execution_id = ? AND parent_step_path = ?",
        (parent_id, step_path)).fetchone()
    return None if row is None else _execution(dict(row))


def list_executions(database: Database, process_id: str | None, status: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    clause, params = _where({"e.process_id": process_id or None, "e.status": status or None})
    total = database.connection.execute(
        f"SELECT COUNT(*) FROM process_executions e WHERE {clause}", params).fetchone()[0]  # noqa: S608
    query = ("SELECT e.*, p.name AS process_name FROM process_executions e"  # noqa: S608
             f" JOIN processes p ON p.id = e.process_id WHERE {clause} ORDER BY e.started_at DESC LIMIT ? OFFSET ?")
    rows = database.connection.execute(query, (*params, limit, offset))
    return [_execution(dict(row)) for row in rows], int(total)


def execution_logs(database: Database, execution_id: str) -> list[dict[str, Any]]:
    rows = database.connection.execute(
        "SELECT seq, at, level, message, data FROM process_execution_logs WHERE execution_id = ? ORDER BY seq",
        (execution_id,))
    return [{**dict(row), "data": json.loads(row["data"]) if row["data"] else None} for row in rows]


def _execution(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("trigger_event", "variables", "trace"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row


def prune_executions(database: Database, finished_before: float) -> int:
    """Delete finished executions (with their steps and logs) that ended before this time."""
    old = ("SELECT id FROM process_executions WHERE completed_at < ?"
           " AND status IN ('completed', 'failed', 'skipped', 'timeout')")
    with database.transaction() as db:
        db.execute(f"DELETE FROM process_execution_logs WHERE execution_id IN ({old})", (finished_before,))  # noqa: S608
        db.execute(f"DELETE FROM process_execution_steps WHERE execution_id IN ({old})", (finished_before,))  # noqa: S608
        return int(db.execute(f"DELETE FROM process_executions WHERE id IN ({old})", (finished_before,)).rowcount)  # noqa: S608


# ---- schedules --------------------------------------------------------------------------
def schedule_last_fire(database: Database, trigger: str) -> float | None:
    row = database.connection.execute(
        "SELECT last_fire_at FROM process_schedule_state WHERE trigger_id = ?", (trigger,)).fetchone()
    return None if row is None else float(row[0])


def schedule_fired_sql(trigger: str, at: float) -> tuple[str, Any]:
    return ("INSERT INTO process_schedule_state VALUES (?, ?) ON CONFLICT (trigger_id)"
            " DO UPDATE SET last_fire_at = excluded.last_fire_at", (trigger, at))


# ---- templates ----------------------------------------------------------------------------
def upsert_builtin_template(database: Database, template: dict[str, Any]) -> None:
    with database.transaction() as db:
        db.execute(
            "INSERT INTO process_templates (id, name, description, category, template_data, created_by,"
            " created_at, is_public, builtin) VALUES (?, ?, ?, ?, ?, 'firefly', ?, 1, 1)"
            " ON CONFLICT (name) DO UPDATE SET description = excluded.description,"
            " category = excluded.category, template_data = excluded.template_data"
            " WHERE process_templates.builtin = 1",
            (new_id(), template["name"], template["description"], template["category"],
             json.dumps(template["definition"]), now()),
        )


def insert_template(database: Database, name: str, description: str, category: str,
                    definition: dict[str, Any], created_by: str | None) -> dict[str, Any]:
    template_id = new_id()
    with database.transaction() as db:
        db.execute(
            "INSERT INTO process_templates (id, name, description, category, template_data, created_by,"
            " created_at, is_public, builtin) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0)",
            (template_id, name, description, category, json.dumps(definition), created_by, now()),
        )
    return get_template(database, template_id) or {}


def get_template(database: Database, ref: str) -> dict[str, Any] | None:
    row = database.connection.execute(
        "SELECT * FROM process_templates WHERE id = ? OR name = ?", (ref, ref)).fetchone()
    return None if row is None else _template(dict(row))


def list_templates(database: Database, category: str | None) -> list[dict[str, Any]]:
    query, params = "SELECT * FROM process_templates", []
    if category:
        query += " WHERE category = ?"
        params.append(category)
    rows = database.connection.execute(query + " ORDER BY category, name", params)
    return [_template(dict(row)) for row in rows]


def template_used(database: Database, template_id: str) -> None:
    with database.transaction() as db:
        db.execute("UPDATE process_templates SET usage_count = usage_count + 1 WHERE id = ?", (template_id,))


def _template(row: dict[str, Any]) -> dict[str, Any]:
    row["template_data"] = json.loads(row["template_data"])
    row["is_public"], row["builtin"] = bool(row["is_public"]), bool(row["builtin"])
    return row


# ---- analytics ------------------------------------------------------------------------------
ANALYTICS_WINDOW = 10_000  # durations of the latest executions used for averages and p95


def analytics(database: Database, process_id: str | None = None) -> dict[str, Any]:
    where, params = ("WHERE process_id = ?", [process_id]) if process_id else ("", [])
    counts = {row[0]: row[1] for row in database.connection.execute(
        f"SELECT status, COUNT(*) FROM process_executions {where} GROUP BY status", params)}  # noqa: S608
    durations = sorted(row[0] for row in database.connection.execute(
        f"SELECT execution_time_ms FROM process_executions {where}"  # noqa: S608
        f" {'AND' if where else 'WHERE'} execution_time_ms IS NOT NULL ORDER BY started_at DESC LIMIT ?",
        (*params, ANALYTICS_WINDOW)))
    finished = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("timeout", 0)
    reasons = [
        {"reason": row[0], "count": row[1]} for row in database.connection.execute(
            f"SELECT error_message, COUNT(*) FROM process_executions {where}"  # noqa: S608
            f" {'AND' if where else 'WHERE'} status IN ('failed', 'timeout', 'skipped')"
            " GROUP BY error_message ORDER BY COUNT(*) DESC LIMIT 20", params)
    ]
    return {
        "total_executions": sum(counts.values()),
        "by_status": counts,
        "success_rate": round(counts.get("completed", 0) / finished, 4) if finished else None,
        "avg_execution_time_ms": round(sum(durations) / len(durations), 3) if durations else None,
        "p95_execution_time_ms": round(durations[int(0.95 * (len(durations) - 1))], 3) if durations else None,
        "failure_reasons": reasons,
    }
