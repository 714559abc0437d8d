"""The board link's shared pieces: its states, settings, counters and errors, what a session
asks for trust decisions, and the framed wire over one open transport. Owns no policy; the
state machine that uses them is session.py's."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from edge_agent.protocol import FrameDecoder, encode_frame
from station.boards.ca import BoardCA
from station.boards.enrollment import Enrollment
from station.boards.registry import BoardRegistry
from station.boards.transport import BoardLinkError, BoardTransport
from station.bus import EventBus


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"  # link open (or opening), waiting for the board's hello
    ENROLLING = "enrolling"
    AUTHENTICATING = "authenticating"
    CONNECTED = "connected"
    STALE = "stale"  # connected, but no heartbeat for heartbeat_timeout_s
    OFFLINE = "offline"  # link closed; rebuilt after a backoff
    STOPPED = "stopped"


class SessionEnded(BoardLinkError):
    """No authenticated session on this link (never was, or it ended)."""

    def __init__(self, link: str, state: str) -> None:
        super().__init__(f"board link {link} has no session (state {state})")
        self.link, self.state = link, state


class CommandTimeout(BoardLinkError):
    def __init__(self, board_id: str, cmd: str, timeout_s: float) -> None:
        super().__init__(f"board {board_id} did not answer {cmd} within {timeout_s} s")
        self.board_id, self.cmd, self.timeout_s = board_id, cmd, timeout_s


class LinkLost(Exception):
    """The transport reached its end."""


@dataclass(frozen=True)
class LinkSettings:
    heartbeat_timeout_s: float  # silence before a connected board is stale
    offline_after_s: float  # silence before it is offline and the link is rebuilt
    backoff_initial_s: float
    backoff_max_s: float


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    value: Any = None
    error: str | None = None


@dataclass
class LinkCounters:
    frames_ok: int = 0
    dropped_mac: int = 0  # failed the session MAC (forged, corrupted, another session)
    dropped_replay: int = 0  # authentic but replayed or reordered
    dropped_invalid: int = 0  # not a message, or a message not expected in this state
    heartbeats: int = 0
    enrollments: int = 0
    enrollments_refused: int = 0
    auth_refused: int = 0
    resumed: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class TrustStore:
    """What a session asks for trust decisions; shared by every session of the service."""

    ca: BoardCA
    enrollment: Enrollment
    registry: BoardRegistry
    bus: EventBus
    station_id: str


class IdentitySigner:
    """The station identity key behind the `sign` that StationHandshake calls."""

    def __init__(self, ca: BoardCA) -> None:
        self._ca = ca

    def sign(self, message: bytes | bytearray | memoryview) -> bytes:
        return self._ca.sign_identity(bytes(message))


@dataclass
class Wire:
    """One open transport with its frame decoder; bodies are decoded lazily by the caller."""

    transport: BoardTransport
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    pending: list[bytes] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # frames never interleave

    async def body(self) -> bytes:
        while not self.pending:
            data = await self.transport.read()
            if not data:
                raise LinkLost
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    async def send_body(self, body: bytes) -> None:
        async with self.lock:
            await self.transport.write(encode_frame(body))
