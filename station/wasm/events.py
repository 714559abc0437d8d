"""App events on the station bus. `AppEvent` is what an app publishes through the host API (the
process trigger `wasm_event` matches it by class name, so the name is part of the automation
contract); `AppStateChanged` follows the lifecycle for the dashboard and the history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class AppEvent(Event):
    """A JSON object an app published (host function `publish`)."""

    app: str
    version: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AppStateChanged(Event):
    app: str
    version: str
    state: str  # validated, running, stopped, failed, superseded, rolled_back, removed
    reason: str | None = None
