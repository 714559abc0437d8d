"""The process engine in a real station: definitions through the CLI and API, every kind of
limit, durable resume after kill -9, schedules and catch-up, templates and permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.harness import Station, free_port, wait_for

FINAL = ("completed", "failed", "skipped", "timeout")


def finished(station: Station, execution_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        execution: dict[str, Any] = station.get(f"/executions/{execution_id}")
        return execution if execution["status"] in FINAL else None

    result: dict[str, Any] = wait_for(done, timeout, f"execution {execution_id} to finish")
    return result


def create(station: Station, definition: dict[str, Any]) -> dict[str, Any]:
    response = station.post("/processes", definition)
    assert response.status_code == 201, response.text
    return dict(response.json())


def execute(station: Station, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    response = station.post(f"/processes/{name}/execute", {"trigger_data": data or {}})
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_cli_create_execute_trace_with_mesh_ack(tmp_path: Path, make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime", "--latency-ms", "200")
    station = make_station([("sim", sim.url)])
    node = sim.node_ids()[0]
    definition = {
        "name": "greet",
        "triggers": [{"type": "manual"}],
        "actions": [
            {"id": "alert", "type": "create_alert", "config": {"title": "hello {{ event.data.who }}"}},
            {
                "id": "say",
                "type": "send_message",
                "config": {
                    "text": "alert {{ steps.alert.result.alert_id }} for {{ event.data.who }}",
                    "to": node,
                },
            },
        ],
    }
    source = tmp_path / "greet.yaml"
    source.write_text(yaml.safe_dump(definition))
    assert station.cli("process", "create", "--file", str(source)).returncode == 0

    run = station.cli("process", "execute", "greet", "--data", '{"who": "ranger"}', "--wait", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    execution = json.loads(run.stdout)
    assert execution["status"] == "completed"
    steps = {s["action_path"]: s for s in execution["steps"]}
    assert steps["1"]["result"]["status"] == "delivered"  # the step waited for the mesh ACK
    assert steps["1"]["execution_time_ms"] >= 150  # ...which the simulator delays by 200 ms
    assert [r["text"] for r in sim.delivered()] == [f"alert {steps['0']['result']['alert_id']} for ranger"]

    trace = station.cli("process", "trace", execution["id"], "--json")
    traced = json.loads(trace.stdout)
    assert traced["trigger_event"]["data"] == {"who": "ranger"}
    assert traced["steps"][1]["input"]["to"] == node
    assert station.cli("process", "trace", execution["id"]).returncode == 0
    runs = json.loads(station.cli("process", "runs", "greet", "--json").stdout)
    assert runs["total"] == 1


def test_invalid_definitions_get_422_with_the_path_and_store_nothing(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    ok_action = [{"type": "delay", "config": {"seconds": 0}}]
    cases = [
        ({"name": "a", "triggers": [{"type": "teleport"}], "actions": ok_action}, "triggers.0.type"),
        ({"name": "a", "actions": [{"type": "launch"}]}, "actions.0.type"),
        (
            {
                "name": "a",
                "triggers": [{"type": "time_schedule", "config": {"cron": "* * *", "tz": "UTC"}}],
                "actions": ok_action,
            },
            "triggers.0.config",
        ),
        (
            {
                "name": "a",
                "conditions": {"and": [{"field": "x", "op": "~~", "value": 1}]},
                "actions": ok_action,
            },
            "conditions.and.0",
        ),
        ({"name": "a", "actions": [{"type": "send_message", "config": {}}]}, "actions.0.config.text"),
        ({"name": "a", "actions": []}, "actions"),
        ({"actions": ok_action}, "name"),
        (
            {"name": "a", "actions": [{"type": "send_message", "config": {"text": "{{ unclosed"}}]},
            "actions.0.config.text",
        ),
        ({"name": "a", "actions": [{"type": "call_process", "config": {"process": "a"}}]}, "actions"),
    ]
    for definition, path in cases:
        response = station.post("/processes", definition)
        assert response.status_code == 422, (definition, response.text)
        assert response.json()["detail"]["field"].startswith(path), (path, response.json())
    assert station.get("/processes")["total"] == 0


def test_subprocess_cycle_across_processes_is_refused(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    create(station, {"name": "child", "actions": [{"type": "delay", "config": {"seconds": 0}}]})
    create(station, {"name": "parent", "actions": [{"type": "call_process", "config": {"process": "child"}}]})
    cyclic = {"name": "child", "actions": [{"type": "call_process", "config": {"process": "parent"}}]}
    response = httpx.put(
        f"{station.api}/api/v1/processes/child",
        json=cyclic,
        timeout=5,
        headers={"Authorization": f"Bearer {station.token()}"},
    )
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"]["error"]


def test_subprocess_parallel_and_continue_on_error(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    create(
        station,
        {
            "name": "child",
            "actions": [
                {"id": "alert", "type": "create_alert", "config": {"title": "from {{ event.input.who }}"}}
            ],
        },
    )
    create(
        station,
        {
            "name": "parent",
            "actions": [
                {
                    "type": "parallel",
                    "config": {
                        "branches": [
                            [
                                {
                                    "id": "sub",
                                    "type": "call_process",
                                    "config": {"process": "child", "input": {"who": "parent"}},
                                }
                            ],
                            [
                                {
                                    "type": "get_users_in_zone",
                                    "config": {"zone": "nowhere"},
                                    "continue_on_error": True,
                                },
                                {"type": "delay", "config": {"seconds": 0.1}},
                            ],
                        ]
                    },
                },
                {
                    "type": "create_alert",
                    "config": {"title": "sub-process ran {{ steps.sub.result.status }}"},
                },
            ],
        },
    )
    execution = finished(station, execute(station, "parent")["execution_id"])
    assert execution["status"] == "completed", execution
    statuses = {s["action_path"]: s["status"] for s in execution["steps"]}
    assert statuses == {
        "0": "completed",
        "0.b0.0": "completed",
        "0.b1.0": "failed",
        "0.b1.1": "completed",
        "1": "completed",
    }
    titles = sorted(a["title"] for a in station.get("/alerts")["alerts"])
    assert titles == ["from parent", "sub-process ran completed"]
    child_runs = station.get("/processes/child/executions")["executions"]
    assert child_runs[0]["parent_execution_id"] == execution["id"]


def test_hanging_and_failing_actions_are_contained(make_station) -> None:  # type: ignore[no-untyped-def]
    import socket

    station = make_station([])
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers: a hanging webhook
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    try:
        create(
            station,
            {
                "name": "hang",
                "actions": [
                    {
                        "type": "webhook",
                        "config": {"url": url, "timeout_s": 60},
                        "timeout_seconds": 1,
                        "retry_count": 1,
                        "retry_backoff_s": 0.1,
                    }
                ],
            },
        )
        execution = finished(station, execute(station, "hang")["execution_id"])
    finally:
        silent.close()
    assert execution["status"] == "failed"
    assert "timed out after 1 s" in execution["error_message"]
    assert execution["steps"][0]["retry_count"] == 1
    alerts = station.get("/alerts")["alerts"]
    assert alerts[0]["title"] == "process hang failed"  # failures raise a station alert
    create(station, {"name": "after", "actions": [{"type": "delay", "config": {"seconds": 0}}]})
    assert finished(station, execute(station, "after")["execution_id"])["status"] == "completed"


def test_concurrency_modes_and_rate_limit_record_skips(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    slow = [{"type": "delay", "config": {"seconds": 1.0}}]
    create(station, {"name": "single", "mode": "single", "actions": slow})
    create(station, {"name": "queued", "mode": "queued", "actions": slow})
    create(
        station,
        {
            "name": "limited",
            "mode": "parallel",
            "rate_limit": {"max_runs": 2, "per_seconds": 60},
            "actions": [{"type": "delay", "config": {"seconds": 0}}],
        },
    )

    first, second = execute(station, "single"), execute(station, "single")
    assert (first["status"], second["status"]) == ("running", "skipped")
    skipped = station.get(f"/executions/{second['execution_id']}")
    assert skipped["status"] == "skipped" and "mode single" in skipped["error_message"]

    runs = [execute(station, "queued") for _ in range(3)]
    assert [r["status"] for r in runs] == ["running", "queued", "queued"]
    done = [finished(station, r["execution_id"], 20) for r in runs]
    assert [d["status"] for d in done] == ["completed"] * 3
    assert done[0]["completed_at"] <= done[1]["started_at"] + 1.5  # one after the other

    limited = [execute(station, "limited")["status"] for _ in range(3)]
    assert limited == ["running", "running", "skipped"]

    create(station, {"name": "wide", "mode": "parallel", "max_parallel": 2, "max_queued": 1, "actions": slow})
    wide = [execute(station, "wide") for _ in range(4)]
    assert [w["status"] for w in wide] == ["running", "running", "queued", "skipped"]
    assert "queue full" in station.get(f"/executions/{wide[3]['execution_id']}")["error_message"]
    assert finished(station, wide[2]["execution_id"], 20)["status"] == "completed"  # the overflow ran later
    overview = station.get("/processes/analytics")
    reasons = {r["reason"] for r in overview["failure_reasons"]}
    assert any("rate limit" in (r or "") for r in reasons)


def test_chain_of_processes_is_cut_at_the_maximum_depth(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    create(
        station,
        {
            "name": "echo",
            "mode": "parallel",
            "triggers": [{"type": "alert_created"}],
            "actions": [{"type": "create_alert", "config": {"title": "echo of {{ event.alert_id }}"}}],
        },
    )
    assert station.post("/alerts", {"severity": "info", "title": "seed"}).status_code == 201

    def chain_ended() -> list[dict[str, Any]]:
        runs = station.get("/processes/echo/executions", limit=100)["executions"]
        return [r for r in runs if r["status"] == "skipped"]

    skipped = wait_for(chain_ended, 20, "the loop to be cut")
    assert "chain depth 6 exceeds processes.max_chain_depth 5" in skipped[0]["error_message"]
    completed = station.get("/processes/echo/executions", status="completed")["executions"]
    assert len(completed) == 6  # depths 0..5


def test_message_trigger_with_conditions_and_template(make_sim, make_station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "scenario.toml"
    script.write_text(
        '[[step]]\nat = 2.0\nnode = 0\ntext = "SOS stuck at the ridge"\n'
        '[[step]]\nat = 2.5\nnode = 1\ntext = "all good here"\n'
    )
    port = free_port()
    station = make_station([("sim", f"tcp://127.0.0.1:{port}")], wait_connected=False)
    create(
        station,
        {
            "name": "sos",
            "triggers": [{"type": "message_received", "config": {"text_regex": "(?i)\\bsos\\b"}}],
            "conditions": {"field": "event.channel", "op": "eq", "value": 0},
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "critical",
                        "title": "SOS from {{ event.from_node }}",
                        "message": "{{ event.text }}",
                    },
                }
            ],
        },
    )
    sim = make_sim("--nodes", "2", "--no-airtime", "--script", str(script), port=port)  # after the process
    alerts = wait_for(lambda: station.get("/alerts")["alerts"], 20, "the SOS alert")
    assert len(alerts) == 1
    assert alerts[0]["title"] == f"SOS from {sim.node_ids()[0]}"
    execution = station.get("/processes/sos/executions")["executions"][0]
    assert execution["trace"]["conditions"]["process"]  # the condition's result is in the trace


def test_templates_and_instantiation(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    listing = json.loads(station.cli("process", "templates", "--json").stdout)
    assert len(listing["templates"]) >= 8
    assert {t["category"] for t in listing["templates"]} == {
        "emergency",
        "maintenance",
        "communication",
        "monitoring",
    }
    made = station.cli(
        "process",
        "instantiate",
        "daily-status-broadcast",
        "--name",
        "morning",
        "--var",
        "channel=2",
        "--var",
        "station_name=ridge",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    process = station.get("/processes/morning")
    assert process["definition"]["variables"] == {"station_name": "ridge", "channel": 2}
    assert process["template_id"]
    used = [
        t for t in station.get("/process-templates")["templates"] if t["name"] == "daily-status-broadcast"
    ]
    assert used[0]["usage_count"] == 1
    bad = station.post(
        "/process-templates/daily-status-broadcast/instantiate", {"customizations": {"actions": []}}
    )
    assert bad.status_code == 422


def test_permissions_are_enforced(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    create(station, {"name": "p", "actions": [{"type": "delay", "config": {"seconds": 0}}]})
    tokens = {}
    for name, permission in (("viewer", "processes:view"), ("runner", "processes:execute")):
        made = json.loads(station.cli("token", "create", name, "-p", permission, "--json").stdout)
        tokens[name] = {"Authorization": f"Bearer {made['token']}"}
    api = f"{station.api}/api/v1"
    assert httpx.get(f"{api}/processes", headers=tokens["viewer"], timeout=5).status_code == 200
    assert httpx.post(f"{api}/processes/p/execute", headers=tokens["viewer"], timeout=5).status_code == 403
    assert (
        httpx.post(f"{api}/processes", json={"name": "x"}, headers=tokens["runner"], timeout=5).status_code
        == 403
    )
    assert httpx.get(f"{api}/processes", headers=tokens["runner"], timeout=5).status_code == 403
    run = httpx.post(f"{api}/processes/p/execute", headers=tokens["runner"], timeout=5)
    assert run.status_code == 202
    assert station.get(f"/executions/{run.json()['execution_id']}")["triggered_by"] == "runner"
    schema = httpx.get(f"{api}/openapi.json", timeout=5).json()
    for path in (
        "/api/v1/processes",
        "/api/v1/processes/{ref}/execute",
        "/api/v1/executions/{execution_id}/logs",
        "/api/v1/process-templates/{ref}/instantiate",
        "/api/v1/processes/analytics",
    ):
        assert path in schema["paths"]


def test_keyword_bot_replies_and_fires_its_trigger(make_sim, make_station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "scenario.toml"
    script.write_text('[[step]]\nat = 1.0\nnode = 1\ntext = "weather at the pass?"\n')
    port = free_port()
    station = make_station([("sim", f"tcp://127.0.0.1:{port}")], wait_connected=False,
                           extra_toml='[[processes.bots]]\nname = "weather"\npattern = "(?i)weather"\n'
                                      'reply = "sunny, 12 C"\n')
    create(station, {"name": "on-weather", "triggers": [{"type": "bot_trigger_fired", "config": {"bot": "weather"}}],
                     "actions": [{"type": "create_alert", "config": {
                         "severity": "info", "title": "weather asked by {{ event.input.from_node }}"}}]})
    sim = make_sim("--nodes", "2", "--no-airtime", "--script", str(script), port=port)
    asker = sim.node_ids()[1]
    wait_for(lambda: station.get("/alerts")["alerts"], 20, "the bot's process to run")
    assert station.get("/alerts")["alerts"][0]["title"] == f"weather asked by {asker}"
    replies = wait_for(lambda: [r for r in sim.delivered() if r.get("text") == "sunny, 12 C"], 20, "the reply")
    assert replies[0]["to"] == int(asker[1:], 16)
