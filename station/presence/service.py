"""Node presence: registered, online and offline, from what the mesh receiver hears.

Rules (docs/zones.md says the same for operators):
- A node the station hears for the first time ever is registered (NodeRegistered) and online.
- Nodes found in a radio's own node list at connect are the radio's memory, possibly weeks
  old. While the station has recorded no node at all (a fresh station, or the first start
  after this table appeared), they are recorded silently: a baseline, not news. After that,
  a node first seen in a radio's list is announced like one first heard (source "radio").
- A node not heard for `node_offline_after_s` goes offline (NodeOffline); heard again, it is
  online (NodeOnline). Silence is counted only while the station listens, so a station that
  was down for a day does not declare every node offline the moment it starts.
- State is in SQLite, so a restart announces nothing again.

Owns the presence cache and the periodic sweep; the groups live beside it (`groups.py`).
Must not send anything on the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from station.bus import EventBus, Unsubscribe
from station.mesh.events import NodeUpdated, RadioLinkChanged
from station.presence.events import NodeOffline, NodeOnline, NodeRegistered
from station.presence.groups import NodeGroups
from station.services import Service, ServiceState
from station.store import Database
from station.store import presence as store

logger = logging.getLogger(__name__)

SWEEP_SHARE = 0.05  # sweep at 1/20 of the threshold: an offline node is announced at most 5 % late
MAX_SWEEP_INTERVAL_S = 60.0  # with the 2 h default: once a minute, a few hundred comparisons
MIN_SWEEP_INTERVAL_S = 0.1
LAST_HEARD_WRITE_EVERY_S = 60.0  # offline is judged in hours: after a crash, a minute stale is nothing


@dataclass
class _Presence:
    online: bool
    last_heard_at: float | None
    changed_at: float
    stored_heard_at: float | None  # what SQLite holds; written again once a minute at most


class PresenceService(Service):
    name = "presence"

    def __init__(self, offline_after_s: float, database: Database, bus: EventBus,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.offline_after_s = offline_after_s
        self.groups = NodeGroups(database, bus, clock)
        self._database = database
        self._bus = bus
        self._clock = clock
        self._nodes: dict[str, _Presence] = {}
        self._listening_since = 0.0
        self._unsubscribe: list[Unsubscribe] = []
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def sweep_interval_s(self) -> float:
        return max(MIN_SWEEP_INTERVAL_S, min(MAX_SWEEP_INTERVAL_S, self.offline_after_s * SWEEP_SHARE))

    async def start(self) -> None:
        self.load()
        self.reconcile()
        self._unsubscribe = [self._bus.subscribe(NodeUpdated, self._node_updated),
                             self._bus.subscribe(RadioLinkChanged, self._link_changed)]
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="presence-sweep")
        self.health.state = ServiceState.RUNNING
        self._refresh_health()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._flush_heard()

    def load(self) -> None:
        self._listening_since = self._clock()
        self._nodes = {
            row["node_id"]: _Presence(row["online"], row["last_heard_at"], row["changed_at"],
                                      row["last_heard_at"])
            for row in store.list_presence(self._database)}

    # ---- what the mesh tells --------------------------------------------------------
    def _node_updated(self, event: NodeUpdated) -> None:
        self.heard(event.node_id)

    def _link_changed(self, event: RadioLinkChanged) -> None:
        if event.state == "connected":  # the receiver has just imported the radio's node list
            self.reconcile()

    def heard(self, node_id: str) -> None:
        """The receiver got a packet from this node."""
        now = self._clock()
        node = self._nodes.get(node_id)
        if node is None:
            store.insert_presence(self._database, [{
                "node_id": node_id, "source": "packet", "first_seen_at": now, "last_heard_at": now,
                "online": True, "changed_at": now}])
            self._nodes[node_id] = _Presence(True, now, now, now)
            logger.info("node registered", extra={"node": node_id, "source": "packet"})
            self._bus.publish(NodeRegistered(node_id=node_id, source="packet"))
        elif not node.online:
            store.set_online(self._database, [
                {"node_id": node_id, "online": True, "last_heard_at": now, "changed_at": now}])
            offline_for, previous = now - node.changed_at, node.last_heard_at
            self._nodes[node_id] = _Presence(True, now, now, now)
            logger.info("node online", extra={"node": node_id, "offline_for_s": round(offline_for)})
            self._bus.publish(NodeOnline(node_id=node_id, offline_for_s=offline_for, last_heard=previous))
        else:
            node.last_heard_at = now
            if node.stored_heard_at is None or now - node.stored_heard_at >= LAST_HEARD_WRITE_EVERY_S:
                store.touch(self._database, [(node_id, now)])
                node.stored_heard_at = now
            return
        self._refresh_health()

    def reconcile(self) -> list[str]:
        """Record nodes the node database has and presence lacks (a radio's list); returns
        those announced as registered (none while the station has no baseline yet)."""
        unknown = store.nodes_without_presence(self._database)
        if not unknown:
            return []
        baseline = not self._nodes
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for node_id, radio_heard in unknown:
            heard = None if not radio_heard or radio_heard <= 0 else min(float(radio_heard), now)
            online = heard is not None and now - heard < self.offline_after_s
            rows.append({"node_id": node_id, "source": "radio", "first_seen_at": now,
                         "last_heard_at": heard, "online": online, "changed_at": now})
        store.insert_presence(self._database, rows)
        for row in rows:
            self._nodes[row["node_id"]] = _Presence(row["online"], row["last_heard_at"], now,
                                                    row["last_heard_at"])
        self._refresh_health()
        if baseline:
            logger.info("presence baseline from the radio's node list", extra={"nodes": len(rows)})
            return []
        for row in rows:
            logger.info("node registered", extra={"node": row["node_id"], "source": "radio"})
            self._bus.publish(NodeRegistered(node_id=row["node_id"], source="radio"))
        return [row["node_id"] for row in rows]

    # ---- offline sweep --------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                self.sweep()
            except Exception:  # a bug or a locked database must not end presence for good
                logger.exception("presence sweep failed")

    def sweep(self) -> list[str]:
        """Mark nodes silent for the threshold offline; returns their ids."""
        now = self._clock()
        gone = [
            (node_id, node) for node_id, node in self._nodes.items()
            if node.online and now - max(node.last_heard_at or 0.0, self._listening_since)
            >= self.offline_after_s]
        if not gone:
            return []
        store.set_online(self._database, [
            {"node_id": node_id, "online": False, "last_heard_at": node.last_heard_at, "changed_at": now}
            for node_id, node in gone])
        for node_id, node in gone:
            node.online, node.changed_at, node.stored_heard_at = False, now, node.last_heard_at
            logger.info("node offline", extra={"node": node_id, "last_heard": node.last_heard_at})
            self._bus.publish(NodeOffline(node_id=node_id, last_heard=node.last_heard_at))
        self._refresh_health()
        return [node_id for node_id, _ in gone]

    def _flush_heard(self) -> None:
        """At stop: write the last-heard times held back by LAST_HEARD_WRITE_EVERY_S."""
        stale = [(node_id, node.last_heard_at) for node_id, node in self._nodes.items()
                 if node.last_heard_at is not None and node.last_heard_at != node.stored_heard_at]
        if stale:
            store.touch(self._database, stale)
            for node_id, at in stale:
                self._nodes[node_id].stored_heard_at = at

    # ---- Python API -----------------------------------------------------------------
    def status(self, node_id: str) -> dict[str, Any] | None:
        node = self._nodes.get(node_id)
        if node is None:
            return None
        return {"node_id": node_id, "online": node.online, "last_heard_at": node.last_heard_at,
                "changed_at": node.changed_at}

    def nodes(self) -> list[dict[str, Any]]:
        return [status for node_id in sorted(self._nodes) if (status := self.status(node_id))]

    def online_nodes(self) -> list[str]:
        return sorted(node_id for node_id, node in self._nodes.items() if node.online)

    def _refresh_health(self) -> None:
        online = sum(node.online for node in self._nodes.values())
        self.health.detail = {"nodes": len(self._nodes), "online": online,
                              "offline": len(self._nodes) - online}
