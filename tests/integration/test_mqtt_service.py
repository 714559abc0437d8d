"""The station's MQTT connection to a real mosquitto: publishes leave at once (no Nagle), on the first
connection and after the broker restarts."""

from __future__ import annotations

import asyncio
import socket
import time

from benchmarks._processes import MosquittoProcess as Mosquitto
from station.bus import EventBus
from station.config import MqttConfig
from station.mqtt.service import MqttService
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
