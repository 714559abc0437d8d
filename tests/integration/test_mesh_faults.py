"""Faults: kill -9 of the station mid-send, the radio killed and restarted, a pty radio
unplugged and plugged back. Nothing accepted is lost; nothing completed is sent again."""

from __future__ import annotations

import collections
import time

from tests.harness import wait_for

BURST = 100


def _texts(sim) -> collections.Counter[str]:  # type: ignore[no-untyped-def]
    return collections.Counter(r["text"] for r in sim.delivered() if r.get("text"))


def _outbox(station) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return station.get("/mesh/status")["outbox"]["messages"]


def test_outbox_of_100_survives_kill_9_mid_send(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "3", "--no-airtime", "--latency-ms", "20")
    target = sim.node_ids()[0]
    # 40 ms between texts: the burst takes ~4 s on the air, so the kill lands mid-send
    station = make_station([("sim", sim.url)],
                           outbox={"min_text_interval_s": 0.04, "ack_timeout_s": 5.0, "retry_delay_s": 0.2})
    batch = [{"text": f"burst message {i:03d}", "to": target, "want_ack": True} for i in range(BURST)]
    accepted = station.post("/mesh/messages/batch", {"messages": batch})
    assert accepted.status_code == 201
    wait_for(lambda: 10 <= len(_texts(sim)) <= 60, 20, "the burst to be partly sent", interval=0.02)

    station.kill9()
    sent_before_kill = len(_texts(sim))
    assert sent_before_kill < BURST
    station.start()

    wait_for(lambda: _outbox(station).get("delivered") == BURST, 60, "every message delivered")
    counts = _texts(sim)
    assert sorted(counts) == sorted(m["text"] for m in batch)
    assert set(counts.values()) == {1}, {t: n for t, n in counts.items() if n != 1}


def test_radio_killed_and_restarted_reconnects_and_drains(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime")
    station = make_station([("sim", sim.url)])
    port = sim.port
    sim.kill()
    wait_for(lambda: station.get("/mesh/status")["radios"][0]["state"] != "connected", 10,
             "the station to notice the dead radio")
    status = station.cli("mesh", "status")
    assert status.returncode == 1

    for i in range(5):
        assert station.post("/mesh/messages", {"text": f"queued while down {i}"}).status_code == 201
    time.sleep(0.5)
    assert _outbox(station).get("queued") == 5

    restarted = make_sim("--nodes", "2", "--no-airtime", port=port)
    station.wait_radios_connected(timeout=20)
    wait_for(lambda: _outbox(station).get("delivered") == 5, 20, "the outbox to drain")
    assert sorted(_texts(restarted)) == [f"queued while down {i}" for i in range(5)]
    assert station.get("/mesh/status")["radios"][0]["reconnects"] >= 1


def test_pty_radio_unplugged_and_plugged_back(tmp_path, make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    link = tmp_path / "ttyRADIO"
    sim = make_sim("--nodes", "2", "--no-airtime", pty_link=link)
    station = make_station([("lora", f"serial://{link}")])
    target = sim.node_ids()[1]
    first = station.cli("mesh", "send", "over the wire", "--to", target, "--want-ack", "--wait")
    assert first.returncode == 0, first.stderr

    sim.kill()  # the device node disappears, like a USB radio pulled out
    # ... and udev removes its by-id link. Left in place, the link names a pty number that another test's
    # simulator may get next: the station then sits a whole handshake timeout on the wrong device.
    link.unlink(missing_ok=True)
    wait_for(lambda: station.get("/mesh/status")["radios"][0]["state"] != "connected", 10,
             "the station to notice the unplugged radio")
    assert station.post("/mesh/messages", {"text": "after replug", "to": target, "want_ack": True}
                        ).status_code == 201

    replugged = make_sim("--nodes", "2", "--no-airtime", pty_link=link)
    station.wait_radios_connected(timeout=20)
    wait_for(lambda: _outbox(station).get("delivered") == 2, 20, "the queued message delivered")
    assert list(_texts(replugged)) == ["after replug"]


def test_message_that_is_never_acked_fails_with_a_reason(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime", "--loss", "1.0")
    station = make_station([("sim", sim.url)], outbox={
        "min_text_interval_s": 0.0, "ack_timeout_s": 2.0, "retry_delay_s": 0.1, "max_attempts": 2})
    result = station.cli("mesh", "send", "into the void", "--to", sim.node_ids()[0], "--want-ack",
                         "--wait", "--json")
    assert result.returncode == 1
    assert '"failed"' in result.stdout
    message = station.get("/mesh/messages")["messages"][0]
    assert message["status"] == "failed"
    assert "after 2 attempts" in message["reason"]
    part = station.get(f"/mesh/messages/{message['id']}")["parts"][0]
    assert part["attempts"] == 2


def test_undelivered_message_expires(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "1", "--no-airtime")
    station = make_station([("sim", sim.url)])
    sim.kill()
    wait_for(lambda: station.get("/mesh/status")["radios"][0]["state"] != "connected", 10, "link down")
    created = station.post("/mesh/messages", {"text": "short-lived", "ttl_s": 1.0})
    assert created.status_code == 201
    message_id = created.json()["id"]
    wait_for(lambda: station.get(f"/mesh/messages/{message_id}")["status"] == "expired", 10, "expiry")
