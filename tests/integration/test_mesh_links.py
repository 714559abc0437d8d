"""Several radios, half-open links and the live message feed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from tests.harness import FIREFLY, wait_for


def _radio_states(station) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r["name"]: r["state"] for r in station.get("/mesh/status")["radios"]}


def test_two_radios_each_carry_what_is_addressed_to_them(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    north = make_sim("--nodes", "2", "--no-airtime", "--seed", "1")
    south = make_sim("--nodes", "2", "--no-airtime", "--seed", "2")
    station = make_station([("north", north.url), ("south", south.url)])
    for radio in ("north", "south"):
        result = station.cli("mesh", "send", f"via {radio}", "--radio", radio, "--wait")
        assert result.returncode == 0, result.stderr
    assert [r["text"] for r in north.delivered()] == ["via north"]
    assert [r["text"] for r in south.delivered()] == ["via south"]

    north.kill()
    wait_for(lambda: _radio_states(station)["north"] != "connected", 10, "north down")
    assert _radio_states(station)["south"] == "connected"
    anyway = station.cli("mesh", "send", "any radio will do", "--wait")
    assert anyway.returncode == 0, anyway.stderr
    assert [r["text"] for r in south.delivered()][-1] == "any radio will do"


def test_half_open_link_is_detected_by_silence_and_rebuilt(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])
    assert sim.process is not None
    os.kill(sim.process.pid, signal.SIGSTOP)  # the socket stays open, nothing answers
    try:
        wait_for(lambda: _radio_states(station)["sim"] != "connected", 15,
                 "the silent radio to be declared dead")
        radio = station.get("/mesh/status")["radios"][0]
        assert "no frame from the radio" in radio["last_error"] or "link lost" in radio["last_error"]
    finally:
        os.kill(sim.process.pid, signal.SIGCONT)
    station.wait_radios_connected(timeout=20)
    result = station.cli("mesh", "send", "back again", "--wait")
    assert result.returncode == 0, result.stderr


def test_messages_follow_prints_new_traffic(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime", "--chatter", "0.3")
    station = make_station([("sim", sim.url)])
    follower = subprocess.Popen([FIREFLY, "mesh", "messages", "--follow", "--json"],
                                stdout=subprocess.PIPE, text=True, env=station.env())
    try:
        time.sleep(1.0)
        assert station.post("/mesh/messages", {"text": "seen live"}).status_code == 201
        rows: list[dict[str, object]] = []
        deadline = time.monotonic() + 20
        assert follower.stdout is not None
        while time.monotonic() < deadline:
            rows.append(json.loads(follower.stdout.readline()))
            outgoing = [r for r in rows if r["direction"] == "out" and r["text"] == "seen live"]
            incoming = [r for r in rows if r["direction"] == "in"]
            if incoming and any(r["status"] == "delivered" for r in outgoing):
                break
        else:
            raise AssertionError(f"follow did not show both directions: {rows}")
        assert incoming[0]["from"] in sim.node_ids()
    finally:
        follower.kill()
        follower.wait(5)
