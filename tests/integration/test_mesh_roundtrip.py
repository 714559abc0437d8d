"""The station and the radio simulator as real processes: send, acknowledge, receive, nodes."""

from __future__ import annotations

import json
import stat

import httpx

from tests.harness import wait_for


def test_send_is_acknowledged_by_a_simulated_node(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "4", "--no-airtime")
    station = make_station([("sim", sim.url)])
    target = sim.node_ids()[0]

    result = station.cli("mesh", "send", "hello from the station", "--to", target, "--want-ack",
                         "--wait", "--wait-timeout", "30", "--json")

    assert result.returncode == 0, result.stderr
    message = json.loads(result.stdout)
    assert message["status"] == "delivered"
    assert message["parts"][0]["status"] == "acked"
    texts = [r["text"] for r in sim.delivered() if r.get("text") is not None]
    assert texts == ["hello from the station"]
    assert sim.delivered()[0]["to"] == int(target[1:], 16)


def test_long_text_goes_as_numbered_parts_in_order(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime")
    station = make_station([("sim", sim.url)])
    text = "ü" * 300  # 600 bytes: three parts

    result = station.cli("mesh", "send", text, "--want-ack", "--wait", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parts_total"] == 3
    texts = [r["text"] for r in sim.delivered()]
    assert [t.split(" ", 1)[0] for t in texts] == ["(1/3)", "(2/3)", "(3/3)"]
    assert "".join(t.split(" ", 1)[1] for t in texts) == text


def test_nodes_positions_and_texts_from_the_mesh_are_kept(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "3", "--chatter", "0.5", "--position-interval", "0.5",
                   "--telemetry-interval", "0.5", "--no-airtime")
    station = make_station([("sim", sim.url)])

    def heard_text() -> list[dict[str, object]]:
        return [m for m in station.get("/mesh/received")["messages"] if m["text"]]

    received = wait_for(heard_text, 20, "a text from a simulated node")
    assert received[0]["from_node"] in sim.node_ids()

    def complete_nodes() -> list[dict[str, object]]:
        nodes = [n for n in station.get("/mesh/nodes")["nodes"] if n["node_id"] in sim.node_ids()]
        ok = [n for n in nodes if n["long_name"] and n["latitude"] is not None
              and n["battery_level"] is not None and n["last_heard"]]
        return ok if len(ok) == 3 else []

    wait_for(complete_nodes, 20, "three nodes with names, positions and battery")
    listed = station.cli("mesh", "nodes", "--json")
    assert listed.returncode == 0
    assert {n["node_id"] for n in json.loads(listed.stdout)} >= set(sim.node_ids())


def test_bad_input_is_refused_with_exit_2_and_nothing_queued(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)], outbox={"max_message_bytes": 500})
    cases = [
        (["mesh", "send", ""], "text"),
        (["mesh", "send", "   "], "text"),
        (["mesh", "send", "hi", "--to", "bob"], "to"),
        (["mesh", "send", "hi", "--to", "!12345"], "to"),
        (["mesh", "send", "hi", "--channel", "8"], "channel"),
        (["mesh", "send", "x" * 501], "500-byte"),
        (["mesh", "send", "hi", "--radio", "nope"], "nope"),
    ]
    for args, mentioned in cases:
        result = station.cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert mentioned in result.stderr
    assert station.get("/mesh/messages")["messages"] == []


def test_api_needs_the_token_but_health_does_not(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])
    token_file = station.data_dir / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    health = httpx.get(f"{station.api}/api/v1/health", timeout=5).json()
    assert health["services"]["mesh"]["state"] == "running"
    assert health["services"]["api"]["state"] == "running"
    anonymous = httpx.post(f"{station.api}/api/v1/mesh/messages", json={"text": "x"}, timeout=5)
    assert anonymous.status_code == 401
    forged = httpx.get(f"{station.api}/api/v1/mesh/nodes", timeout=5,
                       headers={"Authorization": "Bearer not-the-token"})
    assert forged.status_code == 401

    with_token = station.cli("mesh", "nodes")
    assert with_token.returncode == 0, with_token.stderr
    status = station.cli("mesh", "status", "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["radios"][0]["state"] == "connected"


def test_sigterm_stops_the_station_cleanly(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])
    assert station.terminate(timeout=20) == 0
    assert "Traceback" not in station.log()
    unreachable = station.cli("mesh", "status")
    assert unreachable.returncode == 3
