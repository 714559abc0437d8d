"""Executions survive kill -9: each step runs exactly once across the crash; schedules missed
while the station was down are caught up by policy."""

from __future__ import annotations

import time
from typing import Any

from tests.harness import wait_for
from tests.integration.test_processes import create, execute, finished


def _step_status(station, execution_id: str, path: str) -> str | None:  # type: ignore[no-untyped-def]
    steps = station.get(f"/executions/{execution_id}")["steps"]
    return next((s["status"] for s in steps if s["action_path"] == path), None)


def test_killed_mid_execution_resumes_and_runs_each_step_once(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime", "--latency-ms", "300")
    station = make_station([("sim", sim.url)])
    node = sim.node_ids()[0]
    create(
        station,
        {
            "name": "durable",
            "actions": [
                {"type": "send_message", "config": {"text": "step one", "to": node}},
                {"type": "delay", "config": {"seconds": 3}},
                {"type": "create_alert", "config": {"title": "step three"}},
                {"type": "send_message", "config": {"text": "step four", "to": node}},
            ],
        },
    )
    execution_id = execute(station, "durable")["execution_id"]
    wait_for(lambda: _step_status(station, execution_id, "1") == "running", 20, "the delay to start")
    assert [_step_status(station, execution_id, path) for path in ("2", "3")] == ["pending", "pending"]

    station.kill9()
    station.start()

    execution = finished(station, execution_id, 60)
    assert execution["status"] == "completed", execution
    assert [s["status"] for s in execution["steps"]] == ["completed"] * 4
    assert [r["text"] for r in sim.delivered()] == ["step one", "step four"]
    assert [a["title"] for a in station.get("/alerts")["alerts"]] == ["step three"]
    logs = [line["message"] for line in station.get(f"/executions/{execution_id}/logs")["logs"]]
    assert "resumed after restart" in logs


def test_killed_while_a_send_awaits_its_ack_sends_it_once(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim(
        "--nodes", "2", "--no-airtime", "--latency-ms", "1500"
    )  # ACK after 3 s: under the 5 s timeout
    station = make_station([("sim", sim.url)])
    node = sim.node_ids()[1]
    create(
        station,
        {
            "name": "one-send",
            "actions": [
                {"type": "send_message", "config": {"text": "exactly once", "to": node}},
                {"type": "create_alert", "config": {"title": "after the send"}},
            ],
        },
    )
    execution_id = execute(station, "one-send")["execution_id"]
    wait_for(lambda: _step_status(station, execution_id, "0") == "running", 20, "the send to start")
    time.sleep(0.5)  # queued in the outbox and on the air, not yet acknowledged

    station.kill9()
    station.start()

    execution = finished(station, execution_id, 60)
    assert execution["status"] == "completed", execution
    assert [r["text"] for r in sim.delivered()] == ["exactly once"]
    outgoing = station.get("/mesh/messages")["messages"]
    assert [m["text"] for m in outgoing] == ["exactly once"]  # the resumed step found its message


def test_schedule_fires_and_catches_up_once_after_downtime(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    create(
        station,
        {
            "name": "tick",
            "mode": "parallel",
            "triggers": [{"type": "time_schedule", "config": {"every": "1s", "tz": "UTC"}}],
            "catch_up": {"policy": "once"},
            "actions": [{"type": "delay", "config": {"seconds": 0}}],
        },
    )

    def runs() -> list[dict[str, Any]]:
        return list(station.get("/processes/tick/executions", limit=1000)["executions"])

    wait_for(lambda: len(runs()) >= 2, 15, "the schedule to fire")
    assert station.terminate() == 0
    time.sleep(4)  # about four runs are missed
    station.start()
    caught = wait_for(lambda: [r for r in runs() if "catch_up" in r["trigger_event"]], 15, "a catch-up run")
    assert len(caught) == 1
    assert caught[0]["trigger_event"]["catch_up"]["missed"] >= 3
    assert caught[0]["trigger_type"] == "time_schedule"
