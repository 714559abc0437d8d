"""Board trust events, published on the station bus after the change is committed. The board
link sessions listen for BoardRevoked to drop a revoked board's session at once; the dashboard
and sync listen to all of them. Must not carry keys or certificates."""

from __future__ import annotations

from dataclasses import dataclass

from station.bus import Event


@dataclass(frozen=True, kw_only=True)
class BoardEvent(Event):
    """Base of the board trust events: subscribe to it to hear them all."""

    board_id: str


@dataclass(frozen=True, kw_only=True)
class BoardEnrolled(BoardEvent):
    """A board redeemed an enrollment code and holds a new certificate for a new key.
    `reenrolled`: the id was known (revoked, or replaced with a re-enrollment code); a session
    still open with the old key must be dropped."""

    profile: str
    cert_serial: int
    cert_not_after: float
    reenrolled: bool


@dataclass(frozen=True, kw_only=True)
class BoardRevoked(BoardEvent):
    """Refuse this board from now on and close its session at once."""

    reason: str
    by: str


@dataclass(frozen=True, kw_only=True)
class BoardStateChanged(BoardEvent):
    """`old` is None when the board was not known before (its first enrollment)."""

    old: str | None
    new: str


@dataclass(frozen=True, kw_only=True)
class BoardCertificateRenewed(BoardEvent):
    cert_serial: int
    cert_not_after: float


# -- board link events (published by station/boards/session.py); the process engine matches them
# by class name, so these names are part of the automation contract


@dataclass(frozen=True, kw_only=True)
class BoardOnline(BoardEvent):
    """The board authenticated (or resumed its session) and its link is connected."""


@dataclass(frozen=True, kw_only=True)
class BoardOffline(BoardEvent):
    """The board's session ended: `reason` is a short word (heartbeat_timeout, revoked, link_lost,
    station_stopping, ...)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class BoardTelemetry(BoardEvent):
    """One authenticated `telemetry` message: sensor name -> reading."""

    values: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class BoardEventReceived(BoardEvent):
    """One authenticated `event` message from the board."""

    name: str
    data: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class BoardLog(BoardEvent):
    """One authenticated `log` line, or an `error` message as level "error" with "code: msg".
    `message` is capped and made printable (station/boards/logbook.py); `board_ts` is the
    board's clock in seconds when it has one."""

    level: str
    message: str
    board_ts: int | None


@dataclass(frozen=True, kw_only=True)
class BoardDeployFinished(BoardEvent):
    """A config or file deploy ended: `state` is done, failed or cancelled."""

    deploy_id: str
    kind: str
    path: str | None
    state: str
    error: str | None
