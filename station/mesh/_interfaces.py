"""Thin subclasses of meshtastic's stream interfaces: the only place that touches the
library's internals. They report frames, queue status and loss of the link to a callback
object instead of reconnecting or queueing by themselves (the station does both).

Runs on the library's threads: every hook must only hand data over, never block.
"""

from __future__ import annotations

import socket
import time
from typing import Protocol

from meshtastic.protobuf import mesh_pb2
from meshtastic.serial_interface import SerialInterface
from meshtastic.tcp_interface import TCPInterface

TCP_CONNECT_TIMEOUT_S = 10.0  # a radio on the LAN answers in milliseconds; longer means it is gone
TCP_READ_CHUNK = 4096  # the library reads one byte per call; we fill a buffer per syscall


class InterfaceHooks(Protocol):
    def queue_status(self, status: mesh_pb2.QueueStatus) -> None: ...
    def link_lost(self) -> None: ...


class _HookedMixin:
    """Overrides shared by the TCP and serial interfaces (first in the MRO)."""

    hooks: InterfaceHooks
    last_rx: float

    def _handleFromRadio(self, fromRadioBytes: bytes) -> None:
        self.last_rx = time.monotonic()
        super()._handleFromRadio(fromRadioBytes)  # type: ignore[misc]

    def _handleQueueStatusFromRadio(self, queueStatus: mesh_pb2.QueueStatus) -> None:
        # Not calling the library: its own TX queue would re-send and sleep-poll; ours decides.
        self.queueStatus = queueStatus
        self.hooks.queue_status(queueStatus)

    def _disconnected(self) -> None:
        super()._disconnected()  # type: ignore[misc]
        self.hooks.link_lost()

    def send_raw(self, to_radio: mesh_pb2.ToRadio) -> None:
        """Write one ToRadio frame, bypassing the library's queue (the outbox does the pacing)."""
        self._sendToRadioImpl(to_radio)  # type: ignore[attr-defined]


class StationTCPInterface(_HookedMixin, TCPInterface):  # type: ignore[misc]
    _wantExit: bool

    def __init__(self, hooks: InterfaceHooks, host: str, port: int, timeout: float) -> None:
        self.hooks = hooks
        self.last_rx = time.monotonic()
        self._rx_buffer = b""
        super().__init__(hostname=host, portNumber=port, timeout=int(timeout) or 1)

    def myConnect(self) -> None:
        sock = socket.create_connection((self.hostname, self.portNumber), TCP_CONNECT_TIMEOUT_S)
        sock.settimeout(None)
        # Small frames must not wait for the previous one's ACK (Nagle). What caps the stock
        # library at a few dozen sends per second is its own queue: it sleep-polls in 0.5 s steps
        # when its stale free-slot count hits 0. We write with send_raw and pace from the radio's
        # queue reports instead (see outbox.py and pacing.py).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.socket = sock

    def _readBytes(self, length: int) -> bytes | None:
        if not self._rx_buffer:
            if self.socket is None:
                self._wantExit = True
                return None
            try:
                chunk = self.socket.recv(TCP_READ_CHUNK)
            except OSError:
                chunk = b""
            if chunk == b"":
                self._wantExit = True  # the station rebuilds the link; the library must not
                return None
            self._rx_buffer = chunk
        data, self._rx_buffer = self._rx_buffer[:length], self._rx_buffer[length:]
        return data

    def _reconnect(self) -> None:
        self._wantExit = True


class StationSerialInterface(_HookedMixin, SerialInterface):  # type: ignore[misc]
    def __init__(self, hooks: InterfaceHooks, device: str, timeout: float) -> None:
        self.hooks = hooks
        self.last_rx = time.monotonic()
        super().__init__(devPath=device, timeout=int(timeout) or 1)

