"""One radio link: builds a meshtastic interface for a radio URL, watches its health and
rebuilds it with capped exponential backoff when it dies. Hands everything the radio says
to a listener on the event loop.

Owns the interface and the thread it is driven from; must not decide what to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from meshtastic.protobuf import mesh_pb2
from pubsub import pub

from station.backoff import Backoff
from station.config import LinkConfig, RadioConfig
from station.mesh._interfaces import StationSerialInterface, StationTCPInterface
from station.mesh.errors import RadioUnavailable

logger = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 4403  # Meshtastic firmware's stream API port
RECEIVE_TOPIC = "meshtastic.receive"


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"  # waiting before the next connection attempt
    STOPPED = "stopped"


@dataclass(frozen=True)
class QueueReport:
    packet_id: int
    free: int
    maxlen: int
    refused: bool  # the radio did not take the packet into its TX queue


class LinkListener(Protocol):
    def link_up(self, link: RadioLink, nodes: list[dict[str, Any]]) -> None: ...
    def link_down(self, link: RadioLink, reason: str) -> None: ...
    def packet_received(self, link: RadioLink, packet: dict[str, Any]) -> None: ...
    def queue_report(self, link: RadioLink, report: QueueReport) -> None: ...


Interface = StationTCPInterface | StationSerialInterface


class RadioLink:
    def __init__(self, radio: RadioConfig, settings: LinkConfig, listener: LinkListener) -> None:
        self.name = radio.name
        self.url = radio.url
        self.state = LinkState.STOPPED
        self.last_error: str | None = None
        self.connected_since: float | None = None
        self.reconnects = 0
        self.my_node_num: int | None = None
        self.hop_limit: int | None = None
        self._settings = settings
        self._listener = listener
        self._iface: Interface | None = None
        self._lost = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # one thread per radio keeps writes in order and never blocks the loop
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"radio-{self.name}")
        self._receive_handler = self._on_receive  # strong reference: pubsub holds weak ones
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)

    # ---- life cycle -------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, watch, rebuild; until cancelled."""
        self._loop = asyncio.get_running_loop()
        pub.subscribe(self._receive_handler, RECEIVE_TOPIC)
        try:
            while True:
                await self._connect_once()
                if self.state is LinkState.CONNECTED:
                    self._backoff.reset()
                    await self._watch()
                    await self._teardown()
                self.state = LinkState.BACKOFF
                delay = self._backoff.next_delay()
                logger.info("radio reconnect scheduled", extra={"radio": self.name, "in_s": round(delay, 1)})
                await asyncio.sleep(delay)
                self.reconnects += 1
        finally:
            pub.unsubscribe(self._receive_handler, RECEIVE_TOPIC)
            await self._teardown(stopping=True)
            self.state = LinkState.STOPPED
            self._thread.shutdown(wait=False, cancel_futures=True)

    async def _connect_once(self) -> None:
        self.state = LinkState.CONNECTING
        self._lost.clear()
        try:
            iface = await self._in_thread(self._open)
        except Exception as exc:  # the library raises bare Exceptions and OSErrors alike
            self.last_error = f"connect failed: {exc}"
            logger.warning("radio connect failed", extra={"radio": self.name, "error": str(exc)})
            return
        self._iface = iface
        my_info = iface.myInfo
        self.my_node_num = int(my_info.my_node_num) if my_info is not None else None
        self.hop_limit = _configured_hop_limit(iface)
        self.state = LinkState.CONNECTED
        self.connected_since = time.time()
        self.last_error = None
        logger.info("radio connected", extra={"radio": self.name, "node": self.my_node_num})
        self._listener.link_up(self, list((iface.nodes or {}).values()))

    async def _watch(self) -> None:
        """Return when the link is lost or silent for longer than the health timeout."""
        settings = self._settings
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), settings.health_interval_s)
            if self._lost.is_set():
                self.last_error = "link lost"
                return
            iface = self._iface
            if iface is None:
                return
            silent_for = time.monotonic() - iface.last_rx
            if silent_for > settings.health_timeout_s:
                self.last_error = f"no frame from the radio for {silent_for:.0f} s"
                return
            with contextlib.suppress(RadioUnavailable):
                await self._write(iface.sendHeartbeat)  # the radio answers with a queue status

    async def _teardown(self, stopping: bool = False) -> None:
        iface, self._iface = self._iface, None
        if iface is None:
            return
        was_connected = self.state is LinkState.CONNECTED
        self.state = LinkState.CONNECTING if was_connected else self.state
        self.connected_since = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._in_thread(iface.close), self._settings.connect_timeout_s)
        if was_connected:
            reason = "station stopping" if stopping else (self.last_error or "closed")
            log = logger.info if stopping else logger.warning
            log("radio disconnected", extra={"radio": self.name, "reason": reason})
            self._listener.link_down(self, reason)

    def _open(self) -> Interface:
        parts = urlsplit(self.url)
        timeout = self._settings.connect_timeout_s
        if parts.scheme == "tcp":
            return StationTCPInterface(self, parts.hostname or "127.0.0.1",
                                       parts.port or DEFAULT_TCP_PORT, timeout)
        return StationSerialInterface(self, parts.path, timeout)

    # ---- sending ----------------------------------------------------------------------
    async def send(self, to_radio: mesh_pb2.ToRadio) -> None:
        iface = self._iface
        if iface is None or self.state is not LinkState.CONNECTED:
            raise RadioUnavailable(self.name, "not connected")
        await self._write(lambda: iface.send_raw(to_radio))

    async def _write(self, action: Any) -> None:
        try:
            await self._in_thread(action)
        except OSError as exc:
            self.last_error = f"write failed: {exc}"
            self._lost.set()
            raise RadioUnavailable(self.name, self.last_error) from exc

    async def _in_thread(self, action: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, action)

    # ---- hooks, called on the library's threads --------------------------------------
    def queue_status(self, status: mesh_pb2.QueueStatus) -> None:
        report = QueueReport(int(status.mesh_packet_id), int(status.free), int(status.maxlen),
                             refused=status.res != 0)
        self._call_soon(self._listener.queue_report, self, report)

    def link_lost(self) -> None:
        self._call_soon(self._lost.set)

    def _on_receive(self, packet: dict[str, Any], interface: Any) -> None:
        if getattr(interface, "hooks", None) is self:
            self._call_soon(self._listener.packet_received, self, packet)

    def _call_soon(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                loop.call_soon_threadsafe(callback, *args)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name, "url": self.url, "state": self.state.value,
            "node": None if self.my_node_num is None else f"!{self.my_node_num:08x}",
            "connected_since": self.connected_since, "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


def _configured_hop_limit(iface: Interface) -> int | None:
    with contextlib.suppress(AttributeError):
        return int(iface.localNode.localConfig.lora.hop_limit) or None
    return None
