"""Board link sessions: one per configured board link. Owns the link's state machine

    connecting -> (hello) -> [enrolling] -> authenticating -> connected <-> stale -> offline

the frames on the wire, the sealed session, heartbeat acks, command round trips and the
rebuild of a dead link with capped backoff and jitter. Trust decisions are the registry's
(`BoardRegistry.is_trusted`) and enrollment's (`Enrollment.redeem`); this module only asks
them, records link states through the registry and publishes bus events.

A serial link has no "connection": an agent on a UART says hello once per boot. When the
station rebuilds a serial link after a timeout, the board may still be in its old session, so
the last authenticated Session of the link is kept and a frame that opens under it resumes the
link without a new handshake (its MAC and sequence number prove it is the same board). A plain
`hello` at any time starts a new handshake (the board restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.protocol import (
    CERT_UPDATE,
    CHALLENGE_RESPONSE,
    COMMAND,
    ENROLL_REQUEST,
    ENROLL_RESPONSE,
    ERROR,
    EVENT,
    FILE_CHUNK_ACK,
    FILE_STATUS,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    HELLO_REQUEST,
    LOG,
    RESULT,
    TELEMETRY,
    ProtocolError,
    decode_message,
    encode_message,
    make,
)
from edge_agent.session import HANDSHAKE_TIMEOUT_S, BadMac, HandshakeFailed, Replay, Session, StationHandshake
from station.backoff import Backoff
from station.boards._link import (
    CommandResult,
    CommandTimeout,
    IdentitySigner,
    LinkCounters,
    LinkLost,
    LinkSettings,
    LinkState,
    SessionEnded,
    TrustStore,
    Wire,
)
from station.boards.errors import BoardError, BoardNotFound, EnrollmentError
from station.boards.events import BoardEventReceived, BoardOffline, BoardOnline, BoardTelemetry
from station.boards.logbook import board_log
from station.boards.registry import TrustRefusal, TrustVerdict
from station.boards.transport import BoardLinkError, BoardTransport, open_transport

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 10.0  # a read_sensor or read_config; a slow handler passes its own timeout
LOG_PREFIX_CHARS = 80  # a board's log line in ours: a prefix, never a dump
# A hello already waiting in the port (a supervisor that replays it, a board that sent it just
# now) is read within this; asking sooner would cross it and make the board say hello twice.
HELLO_REQUEST_GRACE_S = 0.5
# Then ask again this often: above the agent's REHELLO_MIN_INTERVAL_S (2 s, it ignores requests
# closer than that to its last hello), well below its 10 s wait for a challenge after a hello.
HELLO_REQUEST_INTERVAL_S = 3.0


class BoardSession:
    """The station's end of one board link, from its URL. run() until cancelled."""

    def __init__(self, name: str, url: str, trust: TrustStore, settings: LinkSettings,
                 opener: Callable[[str], Awaitable[BoardTransport]] = open_transport,
                 on_state: Callable[[], None] | None = None) -> None:
        self.name, self.url = name, url
        self._on_state = on_state
        self._state = LinkState.STOPPED
        self.board_id: str | None = None
        self.last_error: str | None = None
        self.connected_since: float | None = None
        self.counters = LinkCounters()
        self._trust, self._settings, self._opener = trust, settings, opener
        self._signer = cast(SigningKey, IdentitySigner(trust.ca))
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._wire: Wire | None = None
        self._session: Session | None = None  # kept across a rebuild: see the module docstring
        self._hello: dict[str, Any] | None = None
        self._heard = 0.0
        self._end_reason: str | None = None
        self._command_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._transfers: dict[int, asyncio.Queue[dict[str, Any] | None]] = {}  # xfer -> its replies
        self._verdict: TrustVerdict | None = None
        self._early: dict[str, Any] | None = None  # the frame that resumed a session, still to serve

    @property
    def state(self) -> LinkState:
        return self._state

    @state.setter
    def state(self, state: LinkState) -> None:
        changed = state is not self._state
        self._state = state
        if changed and self._on_state is not None:
            self._on_state()

    # ---- life cycle

    async def run(self) -> None:
        try:
            while True:
                self.state = LinkState.CONNECTING
                try:
                    wire = Wire(await self._opener(self.url))
                except BoardLinkError as exc:
                    self.last_error = str(exc)
                    logger.warning("board link unavailable", extra={"link": self.name, "error": str(exc)})
                    self.state = LinkState.OFFLINE
                    await asyncio.sleep(self._backoff.next_delay())
                    continue
                self._wire, self._end_reason = wire, None
                try:
                    reason = await self._serve(wire)
                except (LinkLost, BoardLinkError):
                    reason = self._end_reason or "link_lost"
                finally:
                    self._wire = None
                    wire.transport.close()
                await self._ended(reason)
                hard = reason in ("auth_refused", "revoked")  # retrying soon will not fix it
                delay = self._backoff.fail_hard() if hard else self._backoff.next_delay()
                self.counters.reconnects += 1
                await asyncio.sleep(delay)
        finally:
            if self._wire is not None:
                self._wire.transport.close()
            await self._ended("station_stopping")
            self.state = LinkState.STOPPED

    def close_session(self, reason: str) -> None:
        """Drop the session at once (revoked, re-enrolled): close the link, forget the keys."""
        self._session = None
        self._end_reason = reason
        if self._wire is not None:
            self._wire.transport.close()

    async def _ended(self, reason: str) -> None:
        was_online = self.state in (LinkState.CONNECTED, LinkState.STALE)
        self.state = LinkState.OFFLINE
        self.connected_since = None
        self.last_error = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionEnded(self.name, reason))
        self._pending.clear()
        self._interrupt_transfers()
        if was_online and self.board_id is not None:
            logger.warning("board offline", extra={"board_id": self.board_id, "link": self.name, "reason": reason})
            self._record_state("offline")
            self._trust.bus.publish(BoardOffline(board_id=self.board_id, reason=reason))

    # ---- one open link

    async def _serve(self, wire: Wire) -> str:
        hello: dict[str, Any] | None = None
        while True:
            if hello is None:
                hello = await self._await_hello(wire)
            if hello is not None:
                outcome = await self._admit(wire, hello)
                if outcome is not None:
                    return outcome
            hello = await self._connected(wire)
            if hello is None:
                return self._end_reason or "heartbeat_timeout"

    async def _await_hello(self, wire: Wire) -> dict[str, Any] | None:
        """A plain hello (None: a frame resumed the kept session instead). With no session to
        resume, a board that said hello before the link was open is asked again: a plain
        hello_request after HELLO_REQUEST_GRACE_S, then every HELLO_REQUEST_INTERVAL_S."""
        self.state = LinkState.CONNECTING
        ask_at = time.monotonic() + HELLO_REQUEST_GRACE_S
        while True:
            timeout: float | None = None
            if self._session is None:
                timeout = ask_at - time.monotonic()
                if timeout <= 0:
                    logger.debug("board hello requested", extra={"link": self.name})
                    await wire.send_body(encode_message(make(HELLO_REQUEST)))
                    ask_at = time.monotonic() + HELLO_REQUEST_INTERVAL_S
                    timeout = HELLO_REQUEST_INTERVAL_S
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                    body = await wire.body()
            except TimeoutError:
                continue
            if self._session is not None and self._resume(body):
                return None
            msg = self._plain(body)
            if msg is not None and msg["t"] == HELLO:
                return msg

    def _resume(self, body: bytes) -> bool:
        assert self._session is not None and self.board_id is not None
        try:
            msg = self._session.open(body)
        except (BadMac, Replay, ProtocolError):
            return False
        try:
            revoked = self._trust.registry.get(self.board_id).state == "revoked"
        except BoardNotFound:
            revoked = True
        if revoked:
            self._session = None
            return False
        self.counters.resumed += 1
        self.counters.frames_ok += 1
        logger.info("board session resumed", extra={"board_id": self.board_id, "link": self.name})
        self._online()
        self._early = msg
        return True

    def _plain(self, body: bytes) -> dict[str, Any] | None:
        try:
            return decode_message(body)
        except ProtocolError:
            self.counters.dropped_invalid += 1
            return None

    async def _admit(self, wire: Wire, hello: dict[str, Any]) -> str | None:
        """Enroll if asked, then authenticate. None: connected; else why the link must close."""
        self._interrupt_transfers()  # a new handshake: the board restarted and forgot them
        while True:
            self.board_id = str(hello["board_id"])
            self._hello, self._session = hello, None
            self.state = LinkState.AUTHENTICATING
            self._record_state("connecting")
            handshake = StationHandshake(self._signer, self._trust.station_id, self.board_id, self._lookup)
            await wire.send_body(encode_message(handshake.challenge()))
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):  # not wait_for: see _await_hello
                    answer = await self._handshake_reply(wire)
            except TimeoutError:
                return "handshake_timeout"
            if answer["t"] == HELLO:
                hello = answer
                continue
            if answer["t"] == ENROLL_REQUEST:
                if not await self._enroll(wire, answer):
                    return "enrollment_refused"
                continue
            return await self._finish(wire, handshake, answer)

    async def _handshake_reply(self, wire: Wire) -> dict[str, Any]:
        while True:
            msg = self._plain(await wire.body())
            if msg is not None and msg["t"] in (CHALLENGE_RESPONSE, ENROLL_REQUEST, HELLO, ERROR):
                return msg

    async def _finish(self, wire: Wire, handshake: StationHandshake, answer: dict[str, Any]) -> str | None:
        assert self.board_id is not None
        self._verdict = None
        try:
            self._session = handshake.finish(answer)
        except HandshakeFailed as exc:
            self.counters.auth_refused += 1
            refusal = self._verdict.refusal if self._verdict is not None else None
            logger.warning("board authentication refused", extra={
                "board_id": self.board_id, "link": self.name, "reason": exc.reason,
                "refusal": None if refusal is None else refusal.value})
            with contextlib.suppress(BoardLinkError):
                await wire.send_body(encode_message(make(ERROR, code="auth_refused", msg=exc.reason[:120])))
            return "auth_refused"
        self._update_agent()
        self._online()
        await self._renew_certificate_if_due(wire)
        return None

    async def _renew_certificate_if_due(self, wire: Wire) -> None:
        """Send the board a renewed certificate (cert_update, sealed) when the one it presented
        in this handshake is due; it presents the new one from its next handshake on. A refused
        renewal is logged: the presented certificate stays valid until it expires."""
        assert self.board_id is not None
        presented = self._verdict.cert if self._verdict is not None else None
        registry = self._trust.registry
        if presented is None or not registry.needs_renewal(presented):
            return
        try:
            cert = registry.renew(self.board_id)
        except BoardError as exc:
            logger.warning("board certificate not renewed", extra={
                "board_id": self.board_id, "link": self.name, "error": str(exc)})
            return
        await self._send(wire, make(CERT_UPDATE, cert=cert))
        logger.info("board certificate sent", extra={"board_id": self.board_id, "link": self.name,
                                                     "replaces_serial": presented.serial})

    def _lookup(self, board_id: str, cert: bytes) -> bytes | None:
        registry = self._trust.registry
        try:
            board = registry.get(board_id)
        except BoardNotFound:
            self._verdict = TrustVerdict(board_id, TrustRefusal.UNKNOWN_BOARD, "no enrolled board with this id")
            return None
        self._verdict = registry.is_trusted(board_id, board.public_key, cert)
        return board.public_key if self._verdict.trusted else None

    async def _enroll(self, wire: Wire, request: dict[str, Any]) -> bool:
        self.state = LinkState.ENROLLING
        try:
            redeemed = self._trust.enrollment.redeem_request(
                request.get("lookup"), request.get("proof"), str(request["board_id"]), request["pubkey"],
                str(request["profile"]), source=self.url)
        except (EnrollmentError, BoardError) as exc:
            self.counters.enrollments_refused += 1
            reason = exc.reason if isinstance(exc, EnrollmentError) else "invalid_request"
            logger.warning("board enrollment refused", extra={"board_id": request["board_id"], "link": self.name,
                                                              "reason": reason})
            await wire.send_body(encode_message(make(ENROLL_RESPONSE, ok=False, reason=reason)))
            return False
        self.counters.enrollments += 1
        station_id, station_key = self._trust.station_id, self._trust.ca.station_public_key
        await wire.send_body(encode_message(make(
            ENROLL_RESPONSE, ok=True, cert=redeemed.cert, station_id=station_id, station_pubkey=station_key,
            proof=redeemed.response_proof(station_id, station_key))))
        return True

    def _online(self) -> None:
        assert self.board_id is not None
        self.state = LinkState.CONNECTED
        self.connected_since = time.time()
        self.last_error = None
        self._heard = time.monotonic()
        self._backoff.reset()
        self._record_state("connected")
        self._trust.registry.mark_seen(self.board_id)
        logger.info("board online", extra={"board_id": self.board_id, "link": self.name})
        self._trust.bus.publish(BoardOnline(board_id=self.board_id))

    # ---- connected

    async def _connected(self, wire: Wire) -> dict[str, Any] | None:
        """Serve the session until it times out (None) or the board says hello again."""
        early, self._early = self._early, None
        if early is not None:
            await self._dispatch(wire, early)
        settings = self._settings
        while True:
            silent = time.monotonic() - self._heard
            limit = settings.heartbeat_timeout_s if self.state is LinkState.CONNECTED else settings.offline_after_s
            if silent >= limit:
                if self.state is not LinkState.CONNECTED:
                    return None
                self.state = LinkState.STALE
                self._record_state("stale")
                logger.warning("board stale", extra={"board_id": self.board_id, "silent_s": round(silent, 1)})
                continue
            try:
                async with asyncio.timeout(limit - silent):  # not wait_for: see _await_hello
                    body = await wire.body()
            except TimeoutError:
                continue
            msg = self._open(body)
            if msg is None:
                continue
            if msg["t"] == HELLO and "mac" not in msg:
                return msg
            await self._dispatch(wire, msg)

    def _open(self, body: bytes) -> dict[str, Any] | None:
        if self._session is None:
            return None
        try:
            msg = self._session.open(body)
        except Replay:
            self.counters.dropped_replay += 1
            return None
        except BadMac:
            plain = self._plain(body)
            if plain is not None and plain["t"] == HELLO:
                return plain  # the board restarted: a new handshake follows
            self.counters.dropped_mac += 1
            return None
        except ProtocolError:
            self.counters.dropped_invalid += 1
            return None
        self.counters.frames_ok += 1
        return msg

    async def _dispatch(self, wire: Wire, msg: dict[str, Any]) -> None:
        assert self.board_id is not None
        self._heard = time.monotonic()
        if self.state is LinkState.STALE:
            self.state = LinkState.CONNECTED
            self._record_state("connected")
        kind = msg["t"]
        if kind == HEARTBEAT:
            self.counters.heartbeats += 1
            self._trust.registry.mark_seen(self.board_id)
            await self._send(wire, make(HEARTBEAT_ACK, seq=msg["seq"], time_s=int(time.time())))
        elif kind == RESULT:
            future = self._pending.pop(msg["id"], None)
            if future is not None and not future.done():
                future.set_result(msg)
        elif kind in (FILE_STATUS, FILE_CHUNK_ACK):
            replies = self._transfers.get(msg["xfer"])
            if replies is None:
                self.counters.dropped_invalid += 1
            else:
                replies.put_nowait(msg)
        elif kind == TELEMETRY:
            self._trust.bus.publish(BoardTelemetry(board_id=self.board_id, values=dict(msg["values"])))
        elif kind == EVENT:
            self._trust.bus.publish(BoardEventReceived(board_id=self.board_id, name=msg["name"],
                                                       data=dict(msg.get("data", {}))))
        elif kind in (LOG, ERROR):
            text = str(msg.get("msg", ""))[:LOG_PREFIX_CHARS]
            logger.info("board says", extra={"board_id": self.board_id, "kind": kind, "text": text})
            self._trust.bus.publish(board_log(self.board_id, msg))  # the service's BoardLogBook stores it
        else:
            self.counters.dropped_invalid += 1

    async def _send(self, wire: Wire, msg: dict[str, Any]) -> None:
        if self._session is None:
            raise SessionEnded(self.name, self.state.value)
        await wire.send_body(self._session.seal(msg))

    # ---- for the service and the API

    async def command(self, cmd: str, args: dict[str, Any] | None = None,
                      timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Send a sealed command and wait for its result."""
        wire = self._wire
        if wire is None or self.state not in (LinkState.CONNECTED, LinkState.STALE) or self.board_id is None:
            raise SessionEnded(self.name, self.state.value)
        command_id = next(self._command_ids)
        fields: dict[str, Any] = {"id": command_id, "cmd": cmd}
        if args:
            fields["args"] = args
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            await self._send(wire, make(COMMAND, **fields))
            async with asyncio.timeout(timeout_s):  # not wait_for: see _await_hello
                result = await future
        except TimeoutError:
            raise CommandTimeout(self.board_id, cmd, timeout_s) from None
        finally:
            self._pending.pop(command_id, None)
        return CommandResult(ok=bool(result["ok"]), value=result.get("value"), error=result.get("error"))

    async def send(self, msg: dict[str, Any]) -> None:
        """Seal and send one message on the connected session (SessionEnded when there is none)."""
        wire = self._wire
        if wire is None or self.state not in (LinkState.CONNECTED, LinkState.STALE):
            raise SessionEnded(self.name, self.state.value)
        await self._send(wire, msg)

    def open_transfer(self, xfer: int) -> asyncio.Queue[dict[str, Any] | None]:
        """The queue that receives the board's file_status and file_chunk_ack for `xfer`; None
        arrives when the session ends. Close it with close_transfer."""
        replies: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._transfers[xfer] = replies
        return replies

    def close_transfer(self, xfer: int) -> None:
        self._transfers.pop(xfer, None)

    def _interrupt_transfers(self) -> None:
        for replies in self._transfers.values():
            replies.put_nowait(None)  # the sender's next read raises SessionEnded

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "state": self.state.value, "board_id": self.board_id,
                "connected_since": self.connected_since, "last_error": self.last_error,
                "counters": dict(vars(self.counters))}

    # ---- registry

    def _record_state(self, state: str) -> None:
        if self.board_id is None:
            return
        with contextlib.suppress(BoardError):  # not enrolled yet, or revoked meanwhile: nothing to record
            self._trust.registry.set_state(self.board_id, state)

    def _update_agent(self) -> None:
        hello = self._hello
        if hello is None or self.board_id is None:
            return
        try:
            self._trust.registry.update_agent(self.board_id, str(hello["agent_version"]), hello.get("caps", ()),
                                              platform=hello.get("platform"))
        except BoardError as exc:
            logger.warning("board hello not recorded", extra={"board_id": self.board_id, "error": str(exc)})
