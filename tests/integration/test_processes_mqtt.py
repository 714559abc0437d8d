"""MQTT in, process, MQTT out through a real mosquitto; the broker restarted mid-way."""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks._processes import MosquittoProcess as Mosquitto
from tests.harness import wait_for
from tests.integration.test_processes import create


def _client(broker: Mosquitto, inbox: queue.Queue[tuple[str, Any]], topic: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{time.monotonic_ns()}")
    client.on_message = lambda _c, _u, message: inbox.put((message.topic, json.loads(message.payload)))
    client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_mqtt_trigger_condition_and_publish_survive_a_broker_restart(mosquitto, make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([], extra_toml=f"[mqtt]\nenabled = true\nport = {mosquitto.port}\n"
                                          "keepalive_s = 5\nreconnect_max_s = 2\n")
    wait_for(lambda: _health(station)["mqtt"]["connected"], 15, "the station's MQTT connection")
    create(station, {"name": "heat", "mode": "parallel",
                     "triggers": [{"type": "mqtt_message", "config": {"topic": "sensors/+/temp"}}],
                     "conditions": {"field": "event.payload.value", "op": "gt", "value": 30},
                     "actions": [{"type": "mqtt_publish", "config": {
                         "topic": "alerts/heat", "qos": 1,
                         "payload": {"sensor": "{{ event.topic }}", "value": "{{ event.payload.value }}"}}}]})
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    client = _client(mosquitto, inbox, "alerts/#")
    try:
        time.sleep(0.5)
        client.publish("sensors/north/temp", json.dumps({"value": 25}), qos=1)
        client.publish("sensors/south/temp", json.dumps({"value": 35}), qos=1)
        topic, payload = inbox.get(timeout=15)
        assert (topic, payload) == ("alerts/heat", {"sensor": "sensors/south/temp", "value": 35})
        assert inbox.empty()
    finally:
        client.loop_stop()
        client.disconnect()

    mosquitto.stop()
    wait_for(lambda: not _health(station)["mqtt"]["connected"], 15, "the station to notice the broker left")
    mosquitto.start()
    wait_for(lambda: _health(station)["mqtt"]["connected"], 20, "the station to reconnect")
    client = _client(mosquitto, inbox, "alerts/#")
    try:
        time.sleep(0.5)
        client.publish("sensors/east/temp", json.dumps({"value": 40}), qos=1)
        assert inbox.get(timeout=15) == ("alerts/heat", {"sensor": "sensors/east/temp", "value": 40})
    finally:
        client.loop_stop()
        client.disconnect()
    runs = station.get("/processes/heat/executions")["executions"]
    assert [r["status"] for r in runs] == ["completed", "completed"]


def _health(station) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(httpx.get(f"{station.api}/api/v1/health", timeout=5).json()["services"])
