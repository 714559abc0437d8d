"""The simulated mesh around our radio: nodes that move, report and talk.

Owns the schedule of periodic POSITION_APP, TELEMETRY_APP and NODEINFO_APP broadcasts,
random chatter, the "ping" -> "pong" courtesy reply, and the actions a scenario script
triggers. Hands finished MeshPackets to an `emit` callback (the radio); never touches
client connections, the TX queue or the delivery record.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from station.mesh.sim import packets
from station.mesh.sim.nodes import (
    SimNode,
    make_local_node,
    make_nodes,
    random_walk,
    tick_metrics,
    update_link,
)
from station.mesh.sim.options import SimOptions

logger = logging.getLogger(__name__)

INTERVAL_JITTER = 0.1  # +-10 %: real nodes drift apart instead of reporting in lockstep
DIRECT_MESSAGE_SHARE = 0.25  # of chatter texts addressed to our node rather than broadcast
PONG_DELAY_S = 0.5  # a node's courtesy reply to "ping" follows this long after delivery
_PHRASES = (
    "checking in", "all quiet here", "battery fine", "at the ridge", "heading back down",
    "signal test", "copy that", "weather turning", "water at the spring", "camp set up",
)  # fmt: skip

Emit = Callable[[Any], None]


class World:
    """Nodes and their behaviour. Build it, then `await run(emit)` for as long as it lives."""

    def __init__(self, options: SimOptions, now: float) -> None:
        self._options = options
        self.local = make_local_node(options.seed, options.lat, options.lon, now)
        self.nodes = make_nodes(options.seed, options.nodes, options.lat, options.lon, now, {self.local.num})
        self._by_num = {node.num: node for node in self.nodes}
        self._rng = random.Random(f"world-{options.seed}")
        self._emit: Emit | None = None
        self._phrase_count = 0

    def node(self, num: int) -> SimNode | None:
        return self._by_num.get(num)

    def resolve(self, ref: int | str) -> SimNode:
        """A node by list index (0..n-1), node number or '!a1b2c3d4' id; LookupError if none."""
        if isinstance(ref, str):
            try:
                if not (ref.startswith("!") and len(ref) == 9):
                    raise ValueError(ref)
                num = int(ref[1:], 16)
            except ValueError:
                raise LookupError(f"{ref!r} is not a node id like '!a1b2c3d4'") from None
        elif 0 <= ref < len(self.nodes):
            return self.nodes[ref]
        else:
            num = ref
        found = self._by_num.get(num)
        if found is None:
            raise LookupError(f"no simulated node {ref}")
        return found

    def new_packet_id(self) -> int:
        return self._rng.randrange(1, 2**32)

    async def run(self, emit: Emit) -> None:
        """Emit the periodic traffic until cancelled."""
        self._emit = emit
        loop = asyncio.get_running_loop()
        schedule: list[tuple[float, int, str, int]] = []
        sequence = 0
        for index, _node in enumerate(self.nodes):
            for kind in ("position", "telemetry", "nodeinfo"):
                interval = self._interval(kind)
                if interval > 0:
                    sequence += 1
                    first = loop.time() + self._rng.uniform(0, interval)
                    heapq.heappush(schedule, (first, sequence, kind, index))
        if self._options.chatter_s > 0 and self.nodes:
            first = loop.time() + self._rng.expovariate(1 / self._options.chatter_s)
            heapq.heappush(schedule, (first, 0, "chatter", -1))
        while schedule:
            due, seq, kind, index = heapq.heappop(schedule)
            await asyncio.sleep(max(0.0, due - loop.time()))
            self._fire(kind, index)
            heapq.heappush(schedule, (self._next_due(kind, loop.time()), seq, kind, index))
        await asyncio.Event().wait()  # nothing scheduled: idle until cancelled

    def _interval(self, kind: str) -> float:
        return {
            "position": self._options.position_interval_s,
            "telemetry": self._options.telemetry_interval_s,
            "nodeinfo": self._options.nodeinfo_interval_s,
        }[kind]

    def _next_due(self, kind: str, now: float) -> float:
        if kind == "chatter":
            return now + self._rng.expovariate(1 / self._options.chatter_s)
        jitter = self._rng.uniform(1 - INTERVAL_JITTER, 1 + INTERVAL_JITTER)
        return now + self._interval(kind) * jitter

    def _fire(self, kind: str, index: int) -> None:
        if kind == "chatter":
            node = self.nodes[self._rng.randrange(len(self.nodes))]
            direct = self._rng.random() < DIRECT_MESSAGE_SHARE
            self._phrase_count += 1
            phrase = _PHRASES[self._rng.randrange(len(_PHRASES))]
            text = f"{phrase} #{self._phrase_count}"
            self.send_text(node, text, self.local.num if direct else packets.BROADCAST_NUM)
            return
        node = self.nodes[index]
        if kind == "position":
            random_walk(node, self._options.lat, self._options.lon, self._rng)
            self.send_position(node)
        elif kind == "telemetry":
            tick_metrics(node, self._rng)
            self.send_telemetry(node)
        else:
            self.send_nodeinfo(node)

    # Actions (also what a scenario script does).

    def send_text(self, node: SimNode, text: str, to: int = packets.BROADCAST_NUM) -> None:
        direct = to != packets.BROADCAST_NUM
        self._send(node, "TEXT_MESSAGE_APP", text.encode("utf-8"), to=to, want_ack=direct)

    def send_position(self, node: SimNode) -> None:
        self._send(node, "POSITION_APP", packets.position(node, time.time()).SerializeToString())

    def move_to(self, node: SimNode, lat: float, lon: float) -> None:
        node.lat, node.lon = lat, lon
        update_link(node, self._options.lat, self._options.lon, self._rng)
        self.send_position(node)

    def send_telemetry(self, node: SimNode) -> None:
        payload = packets.telemetry(node, time.time()).SerializeToString()
        self._send(node, "TELEMETRY_APP", payload)

    def send_nodeinfo(self, node: SimNode) -> None:
        self._send(node, "NODEINFO_APP", packets.user(node).SerializeToString())

    def on_delivered(self, packet: Any) -> None:
        """A packet from our client reached the mesh; a node answers a direct 'ping'."""
        node = self.node(int(packet.to))
        if node is None or not packet.HasField("decoded"):
            return
        if packets.portnum_name(packet.decoded.portnum) != "TEXT_MESSAGE_APP":
            return
        if bytes(packet.decoded.payload).strip().lower() == b"ping":
            asyncio.get_running_loop().call_later(
                PONG_DELAY_S, self.send_text, node, "pong", packets.sender_of(packet)
            )

    def _send(
        self,
        node: SimNode,
        portnum: str,
        payload: bytes,
        *,
        to: int = packets.BROADCAST_NUM,
        want_ack: bool = False,
    ) -> None:
        now = time.time()
        node.last_heard = now
        packet = packets.mesh_packet(
            sender=node.num,
            to=to,
            packet_id=self.new_packet_id(),
            portnum=portnum,
            payload=payload,
            want_ack=want_ack,
            heard=packets.heard_from(node, now),
        )
        if self._emit is None:
            logger.debug("world not running; dropped", extra={"portnum": portnum})
            return
        self._emit(packet)
