"""The persistent outbox: accepts messages (committed before the caller hears back), sends
their parts over connected radios as pacing allows, and drives each part to ACK, NAK or
timeout, retrying with a new packet id up to a limit.

Outcomes reported by the radios are applied in batches, one transaction per batch (group
commit), so durability does not cap the send rate. Owns no radio: it is handed links.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from station.bus import EventBus
from station.config import MAX_CHANNEL_INDEX, OutboxConfig
from station.mesh.addresses import node_num, parse_destination
from station.mesh.chunking import split_text
from station.mesh.errors import InvalidMessage, RadioUnavailable, UnknownRadio
from station.mesh.events import OutboxMessageFinished
from station.mesh.link import LinkState, QueueReport, RadioLink
from station.mesh.pacing import RadioPacer
from station.store import Database
from station.store import outbox as store

logger = logging.getLogger(__name__)

EXPIRY_SWEEP_INTERVAL_S = 1.0  # expiry needs no finer resolution than a second
IDLE_WAKE_S = 5.0  # re-check timeouts at least this often when nothing else wakes us
DUTY_CYCLE_RETRY_S = 30.0  # after the radio's own duty-cycle NAK, give its budget time to refill
DEFAULT_HOP_LIMIT = 3  # Meshtastic's default when the radio's LoRa config is unknown


@dataclass(frozen=True)
class SendRequest:
    text: str
    to: str = "broadcast"
    channel: int = 0
    want_ack: bool = False
    radio: str | None = None
    ttl_s: float | None = None
    idempotency_key: str | None = None


@dataclass
class _InFlight:
    message_id: str
    part_index: int
    radio: str
    want_ack: bool
    deadline: float  # monotonic


@dataclass(frozen=True)
class _Outcome:
    packet_id: int
    kind: str  # queued, refused, ack, nak
    reason: str | None = None
    free: int | None = None


class Outbox:
    def __init__(self, settings: OutboxConfig, database: Database, bus: EventBus,
                 radio_names: list[str]) -> None:
        self._settings = settings
        self._database = database
        self._bus = bus
        self._radio_names = set(radio_names)
        self._links: dict[str, RadioLink] = {}
        self._pacers: dict[str, RadioPacer] = {}
        self._inflight: dict[int, _InFlight] = {}
        self._outcomes: collections.deque[tuple[str, _Outcome]] = collections.deque()
        self._wake = asyncio.Event()
        self._next_sweep = 0.0

    # ---- accepting ------------------------------------------------------------------
    def validate(self, request: SendRequest) -> store.NewMessage:
        text = request.text
        if not text or not text.strip():
            raise InvalidMessage("text", text, "must not be empty")
        size = len(text.encode("utf-8"))
        limit = self._settings.max_message_bytes
        if size > limit:
            raise InvalidMessage("text", text, f"is {size} bytes, more than the {limit}-byte maximum "
                                 "(mesh.outbox.max_message_bytes)")
        if not 0 <= request.channel <= MAX_CHANNEL_INDEX:
            raise InvalidMessage("channel", request.channel, f"must be 0..{MAX_CHANNEL_INDEX}")
        if request.radio is not None and request.radio not in self._radio_names:
            raise UnknownRadio(request.radio)
        ttl = self._settings.message_ttl_s if request.ttl_s is None else request.ttl_s
        if ttl <= 0:
            raise InvalidMessage("ttl_s", ttl, "must be positive")
        return store.NewMessage(parse_destination(request.to), request.channel, text,
                                request.want_ack, request.radio, ttl, split_text(text),
                                request.idempotency_key)

    def accept(self, requests: list[SendRequest]) -> list[dict[str, Any]]:
        """Validate all, commit all in one transaction, then wake the sender."""
        messages = [self.validate(request) for request in requests]
        rows = store.insert_messages(self._database, messages)
        self._wake.set()
        return rows

    # ---- links ----------------------------------------------------------------------
    def link_up(self, link: RadioLink) -> None:
        self._links[link.name] = link
        self._pacers.setdefault(link.name, RadioPacer(self._settings)).reset()
        self._wake.set()

    def link_down(self, link: RadioLink) -> None:
        """Parts in flight on a lost link may or may not be on the air: resend, same id."""
        self._pacers.setdefault(link.name, RadioPacer(self._settings)).reset()
        lost = [pid for pid, flight in self._inflight.items() if flight.radio == link.name]
        with self._database.transaction() as db:
            for packet_id in lost:
                flight = self._inflight.pop(packet_id)
                store.mark_retry(db, flight.message_id, flight.part_index, "link lost", 0.0,
                                 new_packet_id=False, counts=False)
        self._wake.set()

    def queue_report(self, link: RadioLink, report: QueueReport) -> None:
        pacer = self._pacers.get(link.name)
        if pacer is not None:
            pacer.reported(report.packet_id, report.free)
        if report.packet_id and report.packet_id in self._inflight:
            kind = "refused" if report.refused else "queued"
            self._outcomes.append((link.name, _Outcome(report.packet_id, kind, free=report.free)))
        self._wake.set()

    def routing_received(self, link: RadioLink, packet: dict[str, Any]) -> None:
        decoded = packet.get("decoded", {})
        request_id = decoded.get("requestId")
        if not request_id or request_id not in self._inflight:
            return
        reason = decoded.get("routing", {}).get("errorReason", "NONE")
        kind = "ack" if reason == "NONE" else "nak"
        self._outcomes.append((link.name, _Outcome(int(request_id), kind, reason=reason)))
        self._wake.set()

    # ---- the sender loop ------------------------------------------------------------
    async def run(self) -> None:
        recovered = store.recover_inflight(self._database)
        if recovered:
            logger.info("outbox recovered parts in flight", extra={"parts": recovered})
        while True:
            self._wake.clear()
            self._apply_outcomes()
            self._check_deadlines()
            wait = await self._send_ready()
            if self._inflight:
                deadline = min(flight.deadline for flight in self._inflight.values())
                until_deadline = deadline - time.monotonic()
                wait = until_deadline if wait is None else min(wait, until_deadline)
            timeout = IDLE_WAKE_S if wait is None else max(0.0, min(wait, IDLE_WAKE_S))
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    def _apply_outcomes(self) -> None:
        if not self._outcomes:
            return
        finished: list[tuple[str, str, str | None]] = []
        with self._database.transaction() as db:
            while self._outcomes:
                radio, outcome = self._outcomes.popleft()
                flight = self._inflight.get(outcome.packet_id)
                if flight is None or flight.radio != radio:
                    continue
                if outcome.kind == "queued" and flight.want_ack:
                    continue  # on the radio's queue; the ACK decides
                self._settle(db, outcome, flight, finished)
        self._announce(finished)

    def _settle(self, db: Any, outcome: _Outcome, flight: _InFlight,
                finished: list[tuple[str, str, str | None]]) -> None:
        del self._inflight[outcome.packet_id]
        self._pacers[flight.radio].finished(outcome.packet_id)
        if outcome.kind in ("ack", "queued"):
            if store.mark_acked(db, flight.message_id, flight.part_index):
                finished.append((flight.message_id, "delivered", None))
            return
        if outcome.kind == "refused":
            store.mark_retry(db, flight.message_id, flight.part_index, "radio queue full",
                             time.time() + self._settings.retry_delay_s,
                             new_packet_id=False, counts=False)
            return
        reason = outcome.reason or "no ack"
        if reason == "DUTY_CYCLE_LIMIT":
            store.mark_retry(db, flight.message_id, flight.part_index, reason,
                             time.time() + max(DUTY_CYCLE_RETRY_S, self._settings.retry_delay_s),
                             new_packet_id=True, counts=False)
            return
        self._retry_or_fail(db, flight, reason, finished)

    def _retry_or_fail(self, db: Any, flight: _InFlight, reason: str,
                       finished: list[tuple[str, str, str | None]]) -> None:
        attempts = db.execute(
            "SELECT attempts FROM outbox_parts WHERE message_id = ? AND part_index = ?",
            (flight.message_id, flight.part_index),
        ).fetchone()[0]
        if attempts >= self._settings.max_attempts:
            final = f"{reason} after {attempts} attempts"
            if store.mark_failed(db, flight.message_id, flight.part_index, final):
                finished.append((flight.message_id, "failed", final))
            return
        store.mark_retry(db, flight.message_id, flight.part_index, reason,
                         time.time() + self._settings.retry_delay_s, new_packet_id=True, counts=True)

    def _check_deadlines(self) -> None:
        clock = time.monotonic()
        late = [pid for pid, flight in self._inflight.items() if flight.deadline <= clock]
        for packet_id in late:
            flight = self._inflight[packet_id]
            self._outcomes.append((flight.radio, _Outcome(packet_id, "nak", reason="ACK_TIMEOUT")))
        if late:
            self._apply_outcomes()
        if clock >= self._next_sweep:
            self._next_sweep = clock + EXPIRY_SWEEP_INTERVAL_S
            expired = store.expire_due(self._database, time.time())
            for packet_id, flight in list(self._inflight.items()):
                if flight.message_id in expired:
                    del self._inflight[packet_id]
                    self._pacers[flight.radio].finished(packet_id)
            self._announce([(mid, "expired", "not delivered before it expired") for mid in expired])

    async def _send_ready(self) -> float | None:
        """Write every part that may go now; returns seconds until pacing allows more."""
        soonest: float | None = None
        for name, link in list(self._links.items()):
            if link.state is not LinkState.CONNECTED:
                continue
            wait = await self._send_on(name, link)
            if wait is not None:
                soonest = wait if soonest is None else min(soonest, wait)
        delayed = store.next_wakeup(self._database)
        if delayed is not None and delayed > time.time():
            until = delayed - time.time()
            soonest = until if soonest is None else min(soonest, until)
        return soonest

    async def _send_on(self, name: str, link: RadioLink) -> float | None:
        pacer = self._pacers[name]
        capacity = pacer.capacity()
        if capacity <= 0:
            return None  # a queue status will wake us
        parts = store.next_parts(self._database, name, capacity, time.time())
        if not parts:
            return None
        batch: list[tuple[store.PartToSend, int]] = []
        paced: float | None = None
        for part in parts:
            size = len(part.payload.encode("utf-8"))
            paced = pacer.wait_s(size) or None
            if paced is not None:
                break
            packet_id = part.packet_id or self._new_packet_id()
            batch.append((part, packet_id))
            pacer.written(packet_id, size)
        if not batch:
            return paced
        with self._database.transaction() as db:  # durable before it can reach the air
            for part, packet_id in batch:
                store.mark_inflight(db, part, packet_id, name)
                self._inflight[packet_id] = _InFlight(
                    part.message_id, part.part_index, name, part.want_ack,
                    time.monotonic() + self._settings.ack_timeout_s)
        for part, packet_id in batch:
            try:
                await link.send(self._packet(part, packet_id, link))
            except RadioUnavailable:
                return None  # link_down() puts the batch back
        if paced is not None:
            return paced
        return 0.0 if len(batch) == capacity else None  # a full batch: there may be more

    def _packet(self, part: store.PartToSend, packet_id: int, link: RadioLink) -> mesh_pb2.ToRadio:
        packet = mesh_pb2.MeshPacket()
        packet.id = packet_id
        setattr(packet, "from", link.my_node_num or 0)
        packet.to = node_num(part.to_node)
        packet.channel = part.channel
        packet.want_ack = part.want_ack
        packet.hop_limit = link.hop_limit or DEFAULT_HOP_LIMIT
        packet.decoded.portnum = portnums_pb2.PortNum.TEXT_MESSAGE_APP
        packet.decoded.payload = part.payload.encode("utf-8")
        return mesh_pb2.ToRadio(packet=packet)

    def _new_packet_id(self) -> int:
        while True:
            candidate = secrets.randbits(32)
            if candidate and candidate not in self._inflight:
                return candidate

    def _announce(self, finished: list[tuple[str, str, str | None]]) -> None:
        for message_id, status, reason in finished:
            logger.info("outbox message finished",
                        extra={"message_id": message_id, "status": status, "reason": reason})
            self._bus.publish(OutboxMessageFinished(message_id=message_id, status=status, reason=reason))

    def status(self) -> dict[str, Any]:
        return {"inflight": len(self._inflight), "messages": store.counts(self._database)}
