"""MQTT events on the station bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class MqttMessageReceived(Event):
    topic: str
    payload: Any  # parsed JSON when the payload is JSON, else the text (or hex for binary)
    qos: int
    retain: bool
