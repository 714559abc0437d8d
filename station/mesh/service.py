"""The mesh service: one RadioLink per configured radio, the outbox and the receiver,
wired together and supervised by the daemon. The API talks to the mesh through this."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from station.bus import EventBus
from station.config import MeshConfig
from station.mesh.events import RadioLinkChanged
from station.mesh.link import LinkState, QueueReport, RadioLink
from station.mesh.outbox import Outbox, SendRequest
from station.mesh.receive import Receiver
from station.services import Service, ServiceState
from station.store import Database
from station.store import mesh as mesh_store
from station.store import outbox as outbox_store

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0  # a crashed loop restarts after this; a bug must not stop the radio for good


async def _supervised(what: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a service loop forever: a crash is logged with its traceback and the loop restarted."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("mesh loop crashed; restarting", extra={"loop": what})
        await asyncio.sleep(RESTART_DELAY_S)


class MeshService(Service):
    name = "mesh"
    stop_timeout_s = 10.0  # closing a serial radio waits for its reader thread

    def __init__(self, settings: MeshConfig, database: Database, bus: EventBus) -> None:
        super().__init__()
        self._database = database
        self._bus = bus
        self.outbox = Outbox(settings.outbox, database, bus, [r.name for r in settings.radios])
        self.receiver = Receiver(database, bus)
        self.links = [RadioLink(radio, settings.link, self) for radio in settings.radios]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(_supervised("outbox", self.outbox.run), name="outbox"))
        for link in self.links:
            self._tasks.append(asyncio.create_task(_supervised(f"radio {link.name}", link.run),
                                                   name=f"radio-{link.name}"))
        self._refresh_health()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ---- API-facing -----------------------------------------------------------------
    def send(self, requests: list[SendRequest]) -> list[dict[str, Any]]:
        return self.outbox.accept(requests)

    def message(self, message_id: str) -> dict[str, Any] | None:
        return outbox_store.get_message(self._database, message_id)

    def outgoing(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return outbox_store.list_messages(self._database, status, limit)

    def received(self, after: float, limit: int) -> list[dict[str, Any]]:
        return mesh_store.list_received(self._database, after, limit)

    def nodes(self) -> list[dict[str, Any]]:
        return mesh_store.list_nodes(self._database)

    def status(self) -> dict[str, Any]:
        return {"radios": [link.status() for link in self.links], "outbox": self.outbox.status(),
                "received": self.receiver.received}

    # ---- LinkListener ---------------------------------------------------------------
    def link_up(self, link: RadioLink, nodes: list[dict[str, Any]]) -> None:
        self.receiver.import_nodes(link.name, nodes)
        self.outbox.link_up(link)
        self._link_changed(link, None)

    def link_down(self, link: RadioLink, reason: str) -> None:
        self.outbox.link_down(link)
        self._link_changed(link, reason)

    def packet_received(self, link: RadioLink, packet: dict[str, Any]) -> None:
        if packet.get("decoded", {}).get("portnum") == "ROUTING_APP":
            self.outbox.routing_received(link, packet)
        self.receiver.packet(link.name, packet)

    def queue_report(self, link: RadioLink, report: QueueReport) -> None:
        self.outbox.queue_report(link, report)

    def _link_changed(self, link: RadioLink, reason: str | None) -> None:
        self._refresh_health()
        self._bus.publish(RadioLinkChanged(radio=link.name, state=link.state.value, reason=reason))

    def _refresh_health(self) -> None:
        connected = sum(link.state is LinkState.CONNECTED for link in self.links)
        down = [link.name for link in self.links if link.state is not LinkState.CONNECTED]
        self.health.state = ServiceState.DEGRADED if down else ServiceState.RUNNING
        self.health.detail = {"radios": len(self.links), "connected": connected, "down": down}
