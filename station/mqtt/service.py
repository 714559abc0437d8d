"""MQTT client service (paho-mqtt): connects to the broker of `[mqtt]`, subscribes to the topic
filters the process engine asks for, publishes bus events for incoming messages and publishes
for mqtt_publish actions. paho runs its network thread; results reach the loop through
call_soon_threadsafe. Reconnects by itself with capped backoff.

Owns the broker connection; must not interpret messages (the engine's triggers do).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from station.bus import EventBus
from station.config import MqttConfig
from station.mqtt.events import MqttMessageReceived
from station.services import Service, ServiceState

logger = logging.getLogger(__name__)

MAX_QUEUED_OUT = 10_000  # messages paho keeps while the broker is away; older ones are dropped
PAYLOAD_TEXT_LIMIT = 65_536  # an incoming payload larger than this is not parsed, only sized
JSON_FIRST_CHARS = frozenset('{["-0123456789tfnNI \t\r\n')  # json.loads also takes NaN and Infinity


class MqttError(Exception):
    """Root of MQTT failures."""


class MqttUnavailable(MqttError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"MQTT broker unavailable: {reason}")
        self.reason = reason


class MqttService(Service):
    name = "mqtt"

    def __init__(self, settings: MqttConfig, bus: EventBus) -> None:
        super().__init__()
        self._settings = settings
        self._bus = bus
        self._loop: asyncio.AbstractEventLoop | None = None
        self._filters: set[str] = set()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self.received = 0
        self.published = 0
        self._handoff: list[tuple[Any, tuple[Any, ...]]] = []  # paho's thread -> the loop, in order
        self._handoff_lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                             clean_session=True)
        client.max_queued_messages_set(MAX_QUEUED_OUT)
        client.reconnect_delay_set(min_delay=1, max_delay=int(settings.reconnect_max_s))
        if settings.username:
            client.username_pw_set(settings.username, settings.password or None)
        if settings.tls:
            client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        settings = self._settings
        self.health.state = ServiceState.DEGRADED
        self.health.detail = {"broker": f"{settings.host}:{settings.port}", "connected": False}
        # connect_async + loop_start: an absent broker must not stop the station from starting
        self._client.connect_async(settings.host, settings.port, keepalive=int(settings.keepalive_s))
        self._client.loop_start()

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def subscribe(self, filters: set[str]) -> None:
        """The set of topic filters wanted now (the engine calls this when processes change)."""
        added, removed = filters - self._filters, self._filters - filters
        self._filters = set(filters)
        if self._client.is_connected():
            for topic in added:
                self._client.subscribe(topic, qos=1)
            for topic in removed:
                self._client.unsubscribe(topic)

    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        """QoS 0 returns once handed to the client; QoS 1/2 once the broker acknowledged it."""
        body = payload if isinstance(payload, bytes) else (
            payload if isinstance(payload, str) else json.dumps(payload)).encode()
        info = self._client.publish(topic, body, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise MqttUnavailable(mqtt.error_string(info.rc))
        self.published += 1
        if qos == 0:
            return
        future = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = future
        if info.is_published():  # acknowledged before we registered
            self._acks.pop(info.mid, None)
            return
        await future

    # ---- paho callbacks (network thread) ----------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._call(self._set_connected, False, str(reason))
            return
        _send_without_delay(client)
        for topic in self._filters:
            client.subscribe(topic, qos=1)
        self._call(self._set_connected, True, None)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._call(self._set_connected, False, str(reason))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        event = MqttMessageReceived(topic=message.topic, payload=_decode(bytes(message.payload)), qos=message.qos,
                                    retain=bool(message.retain))
        self._call(self._deliver, event)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._call(self._acked, mid)

    # ---- on the loop -----------------------------------------------------------------
    def _deliver(self, event: MqttMessageReceived) -> None:
        self.received += 1
        self._bus.publish(event)

    def _acked(self, mid: int) -> None:
        future = self._acks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _set_connected(self, connected: bool, reason: str | None) -> None:
        self.health.state = ServiceState.RUNNING if connected else ServiceState.DEGRADED
        self.health.detail = {**self.health.detail, "connected": connected, "last_error": reason}
        log = logger.info if connected else logger.warning
        log("mqtt connected" if connected else "mqtt disconnected", extra={"reason": reason})

    def _call(self, callback: Any, *args: Any) -> None:
        """From paho's thread: run `callback(*args)` on the loop, in order. A burst of messages wakes the
        loop once, not once per message (each wake-up is a write to its self-pipe and a handle)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._handoff_lock:
            first = not self._handoff  # else a drain is scheduled already and will take this one too
            self._handoff.append((callback, args))
        if first:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the station is stopping
                loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._handoff_lock:
            calls, self._handoff = self._handoff, []
        for callback, args in calls:
            try:
                callback(*args)
            except Exception:  # one subscriber's bug must not drop the messages after it
                logger.exception("MQTT callback failed", extra={"callback": getattr(callback, "__name__", "?")})


def _send_without_delay(client: mqtt.Client) -> None:
    """TCP_NODELAY on the broker connection (paho leaves Nagle on). With Nagle, a publish made while the
    previous one is unacknowledged waits for the broker's ACK, which rides on the next message the broker
    sends us: under a steady load every mqtt_publish action then leaves one message interval late, and
    once it starts it sustains itself."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _decode(payload: bytes) -> Any:
    if len(payload) > PAYLOAD_TEXT_LIMIT:
        return {"size": len(payload)}
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.hex()
    if not text or text[0] not in JSON_FIRST_CHARS:  # plain text: spare the parser's exception
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
