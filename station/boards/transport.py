"""Byte transports from the station to one board: a tiny base (`read`, `write`, `close`) and the
serial, pty and TCP-client implementations, chosen by a link URL:

    serial:///dev/ttyUSB0?baud=115200   a USB-serial adapter or a board's UART
    pty:///dev/pts/7                    a pseudo-terminal (simulated boards); opened raw like a serial port
    tcp://host:port                     a TCP server that exposes a board's serial (ser2net, QEMU)

Owns bytes only: framing, sessions and reconnect policy live in session.py. Library errors are
mapped here to the board link's own exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit

import serial
import serial_asyncio_fast

READ_SIZE = 4096  # one read takes up to a whole MAX_FRAME_BODY-sized frame
DEFAULT_BAUD = 115200  # the agents' UART_BAUD
CONNECT_TIMEOUT_S = 10.0  # a TCP bridge on the local network answers well within this
SCHEMES = ("serial", "pty", "tcp")


class BoardLinkError(Exception):
    """Root of every board link failure."""


class LinkUnavailable(BoardLinkError):
    """The link could not be opened (no device, refused connection, bad URL)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"board link {url} is unavailable: {reason}")
        self.url, self.reason = url, reason


class BoardTransport:
    """Bytes to and from one board. read() returns b"" once the link has gone."""

    name = "transport"

    async def read(self) -> bytes:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the link; safe to call twice."""


class StreamTransport(BoardTransport):
    """An asyncio StreamReader/StreamWriter pair: serial devices, ptys and TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self._reader = reader
        self._writer = writer
        self.name = name
        self._closed = False

    async def read(self) -> bytes:
        if self._closed:
            return b""
        try:
            return await self._reader.read(READ_SIZE)
        except (OSError, serial.SerialException):
            return b""

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise LinkUnavailable(self.name, "closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, serial.SerialException) as exc:
            raise LinkUnavailable(self.name, f"write failed: {exc}") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # abort, not close: close() drains what is buffered first, and on a serial port or a pty that
        # nobody reads (a dead board) that drain blocks a worker thread forever and the station never exits
        with contextlib.suppress(OSError, serial.SerialException, RuntimeError):
            self._writer.transport.abort()


def check_url(url: str) -> str:
    """`url` if it names a transport this module can open, else ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError("must be serial:///dev/DEVICE[?baud=N], pty:///dev/pts/N or tcp://HOST:PORT")
    if parts.scheme == "tcp" and (not parts.hostname or parts.port is None):
        raise ValueError("a tcp link needs tcp://HOST:PORT")
    if parts.scheme != "tcp" and not parts.path:
        raise ValueError(f"a {parts.scheme} link needs a device path: {parts.scheme}:///dev/DEVICE")
    return url


async def open_transport(url: str) -> BoardTransport:
    """Open the link `url` names; LinkUnavailable when it cannot be."""
    try:
        check_url(url)
    except ValueError as exc:
        raise LinkUnavailable(url, str(exc)) from None
    parts = urlsplit(url)
    try:
        if parts.scheme == "tcp":
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), CONNECT_TIMEOUT_S)
        else:
            baud = int(parse_qs(parts.query).get("baud", [str(DEFAULT_BAUD)])[0])
            reader, writer = await serial_asyncio_fast.open_serial_connection(url=parts.path, baudrate=baud)
    except (OSError, TimeoutError, ValueError, serial.SerialException) as exc:
        raise LinkUnavailable(url, str(exc) or type(exc).__name__) from exc
    return StreamTransport(reader, writer, url)
