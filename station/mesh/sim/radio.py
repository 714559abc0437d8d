"""The simulated local radio: what a Meshtastic device does with its stream-API client.

Owns the config handshake, queue status, the TX queue (a slot per packet until its
airtime has elapsed), the airtime and duty-cycle model, link loss and latency,
deduplication, ACK/NAK routing packets and the offline backlog of packets received
while no client is connected. Talks to clients only through `ClientLink.send`; never
reads sockets or terminals (server.py does) and never schedules world traffic.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from meshtastic.protobuf import mesh_pb2

from station.mesh.airtime import MAX_PHY_PAYLOAD_BYTES, airtime_seconds
from station.mesh.sim import handshake, packets
from station.mesh.sim.dedup import RecentPackets
from station.mesh.sim.dutycycle import DutyCycleBudget
from station.mesh.sim.options import SimOptions
from station.mesh.sim.record import PacketRecorder
from station.mesh.sim.world import World

logger = logging.getLogger(__name__)

TX_QUEUE_LEN = 16  # firmware's MAX_TX_QUEUE on most boards
QUEUE_FULL_RES = 1  # QueueStatus.res for a refused packet (nonzero = error; the library retries)
NUM_RETRANSMISSIONS = 3  # firmware's NUM_RELIABLE_RETX: tries before MAX_RETRANSMIT
OFFLINE_BACKLOG = 64  # packets kept for the next client, like firmware's toPhone queue


class ClientLink(Protocol):
    """One connected stream-API client, as the radio sees it."""

    name: str

    def send(self, message: Any) -> None:
        """Queue one FromRadio for the client (never blocks)."""


@dataclass(slots=True)
class _ClientState:
    configured: bool = False  # config_complete_id sent and no disconnect since
    reported_free: int | None = None  # free slots in the last queueStatus this client saw


class SimRadio:
    def __init__(self, options: SimOptions, world: World, recorder: PacketRecorder | None = None) -> None:
        self._options = options
        self._world = world
        self._recorder = recorder
        self.loss = options.loss
        self.latency_s = options.latency_ms / 1000.0
        self._clients: dict[ClientLink, _ClientState] = {}
        self._queued = 0
        self._tx_lock = asyncio.Lock()  # one transmitter: packets go on air one at a time
        self._duty = DutyCycleBudget(options.duty_cycle_percent)
        self._seen = RecentPackets()
        self._backlog: deque[Any] = deque(maxlen=OFFLINE_BACKLOG)
        self._loss_rng = random.Random(f"loss-{options.seed}")
        self._tasks: set[asyncio.Task[None]] = set()
        self._from_radio_id = 0
        self._ack_ids = random.Random(f"acks-{options.seed}")

    @property
    def node_num(self) -> int:
        return self._world.local.num

    @property
    def free_slots(self) -> int:
        return TX_QUEUE_LEN - self._queued

    # Client lifecycle.

    def attach(self, link: ClientLink) -> None:
        self._clients[link] = _ClientState()

    def detach(self, link: ClientLink) -> None:
        self._clients.pop(link, None)

    async def aclose(self) -> None:
        """Cancel packets in transit (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # From the client.

    def handle(self, link: ClientLink, message: Any) -> None:
        """One decoded ToRadio from `link`."""
        variant = message.WhichOneof("payload_variant")
        if variant == "want_config_id":
            self._send_config(link, int(message.want_config_id))
        elif variant == "heartbeat":
            # never free=0 here: the library would stall its sender on it
            self._queue_status(link, res=0, packet_id=0, free=max(1, self.free_slots))
        elif variant == "packet":
            self._accept_packet(link, message.packet)
        elif variant == "disconnect":
            state = self._clients.get(link)
            if state is not None:
                state.configured = False
            logger.info("client said goodbye", extra={"client": link.name})
        else:
            logger.debug("ignored ToRadio", extra={"client": link.name, "variant": variant})

    def _send_config(self, link: ClientLink, nonce: int) -> None:
        sequence = handshake.config_sequence(
            nonce,
            self._world.local,
            self._world.nodes,
            time.time(),
            self._options.preset,
            self._options.channels,
        )
        for message in sequence:
            self._send(link, message)
        state = self._clients.setdefault(link, _ClientState())
        state.configured = True
        logger.info("client configured", extra={"client": link.name, "nonce": nonce})
        while self._backlog:
            self._send(link, mesh_pb2.FromRadio(packet=self._backlog.popleft()))

    def _accept_packet(self, link: ClientLink, packet: Any) -> None:
        if packets.sender_of(packet) == 0:
            setattr(packet, "from", self.node_num)  # firmware fills in our number
        if packet.to == self.node_num:  # to ourselves (admin and the like): nothing goes on air
            self._queue_status(link, res=0, packet_id=packet.id)
            if packet.want_ack:
                self._routing_to_client(link, packet, "NONE", sender=self.node_num)
            return
        if self._queued >= TX_QUEUE_LEN:
            logger.info("tx queue full", extra={"client": link.name, "id": packet.id})
            self._queue_status(link, res=QUEUE_FULL_RES, packet_id=packet.id, free=0)
            return
        self._queued += 1
        self._queue_status(link, res=0, packet_id=packet.id)
        self._spawn(self._transmit(link, packet))

    # On air.

    def _airtime(self, packet: Any) -> float:
        if not self._options.airtime:
            return 0.0
        return airtime_seconds(packets.on_air_bytes(packet), self._options.preset)

    async def _transmit(self, link: ClientLink, packet: Any) -> None:
        try:
            if packets.on_air_bytes(packet) > MAX_PHY_PAYLOAD_BYTES:
                self._nak_if_wanted(link, packet, "TOO_LARGE")
                return
            airtime = self._airtime(packet)
            async with self._tx_lock:
                if not self._duty.allows(airtime, time.monotonic()):
                    logger.info("duty cycle limit", extra={"id": packet.id})
                    self._nak_if_wanted(link, packet, "DUTY_CYCLE_LIMIT")
                    return
                self._duty.spend(airtime, time.monotonic())
                await asyncio.sleep(airtime)
        finally:
            self._release_slot()
        await self._propagate(link, packet, airtime)

    async def _propagate(self, link: ClientLink, packet: Any, airtime: float) -> None:
        if packet.to == packets.BROADCAST_NUM:
            await asyncio.sleep(self.latency_s)
            self._deliver(packet)
            if packet.want_ack:  # implicit ACK: our radio heard a neighbour rebroadcast it
                self._routing_to_client(link, packet, "NONE", sender=self.node_num)
            return
        dest = self._world.node(int(packet.to))
        hops = dest.hops if dest is not None else 0
        give_up_s = NUM_RETRANSMISSIONS * (2 * (hops + 1) * airtime + 2 * self.latency_s)
        if dest is None or self._lost():
            await asyncio.sleep(give_up_s)
            self._nak_if_wanted(link, packet, "MAX_RETRANSMIT")
            return
        await asyncio.sleep(hops * airtime + self.latency_s)  # relays repeat it
        self._deliver(packet)
        if not packet.want_ack:
            return
        ack = self._routing_packet(packet, "NONE", sender=dest.num, heard=dest)
        if self._lost():  # delivered, but the ACK never makes it back
            await asyncio.sleep(give_up_s)
            self._nak_if_wanted(link, packet, "MAX_RETRANSMIT")
            return
        await asyncio.sleep((hops + 1) * self._airtime(ack) + self.latency_s)
        self._to_client(link, ack)

    def _lost(self) -> bool:
        return self.loss > 0 and self._loss_rng.random() < self.loss

    def _deliver(self, packet: Any) -> None:
        """The packet reached the mesh: record it once per (sender, id)."""
        sender, packet_id = packets.sender_of(packet), int(packet.id)
        if self._seen.seen_before(sender, packet_id):
            logger.info("duplicate dropped", extra={"from": sender, "id": packet_id})
            return
        if self._recorder is not None:
            self._recorder.record(packet, time.time())
        self._world.on_delivered(packet)

    def _release_slot(self) -> None:
        self._queued -= 1
        for link, state in self._clients.items():
            if state.configured and state.reported_free == 0:
                self._queue_status(link, res=0, packet_id=0)  # unblock a waiting library

    # To the client.

    def deliver_from_mesh(self, packet: Any) -> None:
        """A packet our radio heard from the mesh (World's emit callback)."""
        targets = [link for link, state in self._clients.items() if state.configured]
        if not targets:
            self._backlog.append(packet)
        for link in targets:
            self._send(link, mesh_pb2.FromRadio(packet=packet))

    def _to_client(self, origin: ClientLink, packet: Any) -> None:
        state = self._clients.get(origin)
        if state is not None and state.configured:
            self._send(origin, mesh_pb2.FromRadio(packet=packet))
        else:  # the sender went away; whoever connects next learns the outcome
            self.deliver_from_mesh(packet)

    def _routing_packet(self, packet: Any, error: str, *, sender: int, heard: Any | None = None) -> Any:
        return packets.routing_packet(
            sender=sender,
            to=packets.sender_of(packet),
            packet_id=self._ack_ids.randrange(1, 2**32),
            request_id=int(packet.id),
            error=error,
            channel=int(packet.channel),
            heard=None if heard is None else packets.heard_from(heard, time.time()),
        )

    def _routing_to_client(self, link: ClientLink, packet: Any, error: str, *, sender: int) -> None:
        self._to_client(link, self._routing_packet(packet, error, sender=sender))

    def _nak_if_wanted(self, link: ClientLink, packet: Any, error: str) -> None:
        if packet.want_ack:
            self._routing_to_client(link, packet, error, sender=self.node_num)

    def _queue_status(self, link: ClientLink, *, res: int, packet_id: int, free: int | None = None) -> None:
        free = self.free_slots if free is None else free
        state = self._clients.get(link)
        if state is not None:
            state.reported_free = free
        status = mesh_pb2.QueueStatus(res=res, free=free, maxlen=TX_QUEUE_LEN, mesh_packet_id=packet_id)
        self._send(link, mesh_pb2.FromRadio(queueStatus=status))

    def _send(self, link: ClientLink, message: Any) -> None:
        self._from_radio_id += 1
        message.id = self._from_radio_id
        link.send(message)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("packet handling failed", exc_info=task.exception())
