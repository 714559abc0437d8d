"""The station's MQTT connection to a real mosquitto: publishes leave at once (no Nagle), on the first
connection and after the broker restarts; a burst of messages reaches the bus whole and in order;
payloads are decoded as JSON exactly when they are JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks._processes import MosquittoProcess as Mosquitto
from station.bus import EventBus
from station.config import MqttConfig
from station.mqtt.events import MqttMessageReceived
from station.mqtt.service import PAYLOAD_TEXT_LIMIT, MqttService, _decode
from station.services import ServiceState

CONNECT_S = 15.0  # a loopback connect takes milliseconds; a reconnect waits up to reconnect_max_s


async def connected(service: MqttService, timeout: float = CONNECT_S) -> None:
    deadline = time.monotonic() + timeout
    while service.health.state is not ServiceState.RUNNING:
        assert time.monotonic() < deadline, f"not connected: {service.health.detail}"
        await asyncio.sleep(0.02)


def nodelay(service: MqttService) -> int:
    sock = service._client.socket()  # the option lives on paho's socket
    assert isinstance(sock, socket.socket)
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_publishes_are_not_held_back_by_nagle_before_or_after_a_reconnect(mosquitto: Mosquitto) -> None:
    service = MqttService(MqttConfig(enabled=True, port=mosquitto.port, client_id=f"t-{time.monotonic_ns()}",
                                     reconnect_max_s=1), EventBus())
    await service.start()
    try:
        await connected(service)
        assert nodelay(service)
        mosquitto.stop()
        deadline = time.monotonic() + CONNECT_S
        while service.health.state is ServiceState.RUNNING:
            assert time.monotonic() < deadline, "the broker's exit went unnoticed"
            await asyncio.sleep(0.02)
        mosquitto.start()
        await connected(service)
        assert nodelay(service)  # a new socket: set again
    finally:
        await service.stop()


async def test_a_burst_reaches_the_bus_whole_and_in_order(mosquitto: Mosquitto) -> None:
    bus = EventBus()
    received: list[str] = []
    bus.subscribe(MqttMessageReceived, lambda event: received.append(event.payload))
    service = MqttService(MqttConfig(enabled=True, port=mosquitto.port, client_id=f"t-{time.monotonic_ns()}"), bus)
    service.subscribe({"burst/#"})
    await service.start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p-{time.monotonic_ns()}")
    try:
        await connected(service)
        await asyncio.sleep(0.2)  # the SUBACK
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        # below mosquitto's max_queued_messages (1000 per client): beyond it the broker drops QoS 1 messages
        sent = [f"message {index}" for index in range(900)]
        for text in sent:
            publisher.publish("burst/a", text, qos=1)
        deadline = time.monotonic() + CONNECT_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert received == sent
        assert service.received == len(sent)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        await service.stop()


def reference_decode(payload: bytes) -> object:
    """The rule _decode implements: JSON if the text parses as JSON, else the text; hex if not UTF-8."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.hex()
    try:
        return json.loads(text)
    except ValueError:
        return text


def same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN equals NaN here


@given(st.one_of(st.text(max_size=40), st.binary(max_size=40),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                              lambda children: st.lists(children, max_size=3)
                              | st.dictionaries(st.text(max_size=5), children, max_size=3),
                              max_leaves=8).map(json.dumps),
                 st.sampled_from([" 5", "\n[1]", "NaN", "-Infinity", "Infinity!", "nothing", "t", "", "go 1 2"])))
def test_a_payload_is_json_exactly_when_it_parses_as_json(payload: str | bytes) -> None:
    raw = payload.encode() if isinstance(payload, str) else payload
    assert same(_decode(raw), reference_decode(raw))


def test_an_oversized_payload_is_only_sized() -> None:
    assert _decode(b"[" * (PAYLOAD_TEXT_LIMIT + 1)) == {"size": PAYLOAD_TEXT_LIMIT + 1}
