"""Presence and group events on the station bus: the process engine's user_registered,
user_online, user_offline and user_group_changed triggers (mesh nodes play the users).
Published only after the state they announce is committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class NodeRegistered(Event):
    """The station learned of a node for the first time ever (it is online from now)."""

    node_id: str
    source: Literal["packet", "radio"]  # heard by the station, or found in a radio's node list


@dataclass(frozen=True, kw_only=True)
class NodeOffline(Event):
    node_id: str
    last_heard: float | None  # station clock; None: never heard, only known from a radio's list


@dataclass(frozen=True, kw_only=True)
class NodeOnline(Event):
    """An offline node was heard again."""

    node_id: str
    offline_for_s: float  # since it was marked offline (silent for node_offline_after_s more)
    last_heard: float | None = None  # before this packet


@dataclass(frozen=True, kw_only=True)
class NodeGroupChanged(Event):
    node_id: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # all of them, after the change
