"""Finished executions are pruned after their retention; open ones never are."""

from __future__ import annotations

import time
from pathlib import Path

from station.store import open_database
from station.store import processes as store


def test_prune_removes_old_finished_runs_with_their_steps_only(tmp_path: Path) -> None:
    database = open_database(tmp_path / "station.db")
    process = store.insert_process(database, {"name": "p", "actions": []}, [], "test")
    now = time.time()
    rows = [("old-done", "completed", now - 100), ("new-done", "completed", now), ("old-open", "running", None)]
    with database.transaction() as db:
        for execution_id, status, completed in rows:
            sql, params = store.insert_execution_sql({
                "id": execution_id, "process_id": process["id"], "process_version": 1, "triggered_by": "t",
                "trigger_type": "manual", "trigger_event": "{}", "status": status, "started_at": now - 200,
                "completed_at": completed, "total_steps": 1})
            db.execute(sql, params)
            db.execute(*store.step_finished_sql(execution_id, "0", "log", "completed", None, None, now, 1.0, 0))
            db.execute(*store.log_sql(execution_id, 1, "info", "x", None))
    assert store.prune_executions(database, now - 50) == 1
    left = {row[0] for row in database.connection.execute("SELECT id FROM process_executions")}
    assert left == {"new-done", "old-open"}
    steps = {row[0] for row in database.connection.execute("SELECT execution_id FROM process_execution_steps")}
    assert steps == left
    database.close()
