"""Alerts end to end: the station and the radio simulator as real processes, driven through the
`firefly alert` CLI and the REST API; alerts survive a kill -9."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.harness import Station, wait_for


def run_json(station: Station, *args: str) -> Any:
    result = station.cli("alert", *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def failed(result: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    return result.returncode, json.loads(result.stdout)["error"]


def alerts_health(station: Station) -> dict[str, Any]:
    detail: dict[str, Any] = station.get("/health")["services"]["alerts"]
    return detail


def test_alert_life_cycle_through_the_cli(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime")
    station = make_station([("sim", sim.url)])
    node = sim.node_ids()[0]

    created = run_json(station, "create", "Battery low", "--severity", "warning", "--node", node,
                       "--message", "3.41 V", "--dedup-key", f"battery:{node}")
    assert (created["status"], created["deduplicated"], created["node_id"]) == ("active", False, node)
    folded = run_json(station, "create", "Battery low", "--node", node, "--dedup-key", f"battery:{node}")
    assert (folded["id"], folded["deduplicated"], folded["occurrences"]) == (created["id"], True, 2)
    other = run_json(station, "create", "Gate opened", "--severity", "info")

    listed = run_json(station, "list")
    assert [a["id"] for a in listed] == [other["id"], created["id"]]
    assert alerts_health(station) == {"state": "running", "active": 2, "acknowledged": 0}

    acknowledged = run_json(station, "ack", created["id"], "--by", "ana")
    assert (acknowledged["status"], acknowledged["acknowledged_by"]) == ("acknowledged", "ana")
    assert alerts_health(station)["acknowledged"] == 1

    resolved = run_json(station, "resolve", created["id"])
    assert resolved["status"] == "resolved"
    assert resolved["resolved_by"]  # the CLI user's name by default

    code, error = failed(station.cli("alert", "resolve", created["id"], "--json"))
    assert code == 1
    assert "is resolved" in error
    code, error = failed(station.cli("alert", "ack", "no-such-alert", "--json"))
    assert (code, error) == (4, "no alert no-such-alert")
    code, error = failed(station.cli("alert", "create", "x", "--severity", "urgent", "--json"))
    assert code == 2
    assert "severity" in error

    shown = station.cli("alert", "list", "--status", "active")  # the table, for a person
    assert shown.returncode == 0
    assert "Gate" in shown.stdout  # rich wraps cells to the 80 columns of a pipe
    assert "Battery" not in shown.stdout
    assert "1 active, 0 acknowledged, 1 resolved" in shown.stdout  # the bad create stored nothing


def test_api_status_codes_name_the_problem(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])

    response = station.post("/alerts", {"severity": "critical", "title": "Mast down"})
    assert response.status_code == 201
    alert_id = response.json()["id"]

    bad = station.post("/alerts", {"severity": "critical", "title": "x" * 201})
    assert bad.status_code == 422
    assert bad.json()["detail"]["field"] == "title"
    assert station.post(f"/alerts/{alert_id}/acknowledge", {}).json()["acknowledged_by"] == "operator"
    assert station.post(f"/alerts/{alert_id}/resolve", {"by": "bo"}).json()["resolved_by"] == "bo"
    conflict = station.post(f"/alerts/{alert_id}/resolve", {"by": "bo"})
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["status"] == "resolved"
    assert station.post("/alerts/nope/resolve", {}).status_code == 404
    assert station.get("/alerts", status="resolved")["counts"]["resolved"] == 1


def test_alerts_survive_a_kill_9(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])
    kept = run_json(station, "create", "Board 7 offline", "--severity", "critical", "--dedup-key", "board:7")
    run_json(station, "ack", kept["id"], "--by", "ana")
    fresh = run_json(station, "create", "Solar low", "--severity", "info")

    station.kill9()
    station.start()

    assert run_json(station, "show", kept["id"])["acknowledged_by"] == "ana"
    assert [a["id"] for a in run_json(station, "list")] == [fresh["id"], kept["id"]]
    wait_for(lambda: alerts_health(station) == {"state": "running", "active": 1, "acknowledged": 1},
             5.0, "alert counts in the health report")
    folded = run_json(station, "create", "Board 7 offline", "--severity", "critical",
                      "--dedup-key", "board:7")
    assert (folded["id"], folded["occurrences"]) == (kept["id"], 2)
