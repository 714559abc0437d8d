"""Byte transports between a board agent and the station: a thin base with three
primitives (`read`, `write`, `close`) and the implementations the ports need.

- stdio on the MicroPython unix port (a pty or pipe given as stdin/stdout): the unix
  port's stream `read(n)` keeps reading until it has n bytes on a blocking fd, which
  would stall the loop, so the first byte is awaited through asyncio (the loop's poller)
  and the rest is taken one byte at a time while select.poll says more is ready
  (1.3 us a byte: a 3840-byte file chunk costs about 5 ms). Works whether or not the
  launcher made the fd non-blocking.
- stdio on CPython: the fds through the event loop's reader/writer callbacks.
- TCP client on both runtimes (asyncio.open_connection).
- UART on a board: machine.UART (imported lazily) read through asyncio streams.

Owns bytes only: framing, messages and reconnect policy live above (link.py, runtime.py).
"""

import asyncio
import os
import sys

from edge_agent.agent import _port

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

READ_SIZE = 512  # bytes asked of a transport per read: a heartbeat frame, an eighth of a chunk
UART_RXBUF = 4608  # one whole MAX_ENCODED_FRAME (4117 bytes) arriving while the loop is busy
UART_BAUD = 115200
TCP_CONNECT_TIMEOUT_S = 10.0  # a station on the local network answers well within this


class TransportError(Exception):
    """Root of every transport failure."""


class TransportUnavailable(TransportError):
    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"transport {spec} is unavailable: {reason}")
        self.spec = spec
        self.reason = reason


class Transport:
    """Bytes to and from the station. read() returns b"" once the peer has gone."""

    name = "transport"

    async def read(self, n: int) -> bytes:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the link; safe to call twice."""

    def reconnects(self) -> bool:
        """Whether opening it again after it closed makes sense (TCP yes, stdio no)."""
        return False


class StreamTransport(Transport):
    """An asyncio StreamReader/StreamWriter pair: TCP on both runtimes, a UART on a board."""

    def __init__(self, reader: Any, writer: Any, name: str, reconnectable: bool) -> None:
        self._reader = reader
        self._writer = writer
        self.name = name
        self._reconnectable = reconnectable
        self._closed = False

    async def read(self, n: int) -> bytes:
        while not self._closed:
            try:
                data = await self._reader.read(n)
            except OSError:
                return b""
            if data is not None:  # a MicroPython UART answers None when it has nothing after all
                return bytes(data)
        return b""

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
            self._writer.close()
        except OSError:
            pass

    def reconnects(self) -> bool:
        return self._reconnectable


class PolledStdioTransport(Transport):
    """stdin/stdout on MicroPython (unix port, or a board's REPL UART), never blocking the loop."""

    name = "stdio"

    def __init__(self, instream: Any, outstream: Any) -> None:
        import select

        self._in = instream
        self._reader = asyncio.StreamReader(instream)
        self._writer = _stream_writer(outstream)
        self._poll = select.poll()
        self._poll.register(instream, select.POLLIN)
        self._pollin = select.POLLIN
        self._byte = bytearray(1)
        self._buffer = bytearray(READ_SIZE)  # reused: a small heap must not fragment per byte

    async def read(self, n: int) -> bytes:
        n = min(n, len(self._buffer))
        try:
            first = await self._reader.read(1)  # one byte never blocks once the poller saw data
            while first is None:  # a non-blocking fd woke without data
                first = await self._reader.read(1)
            if not first:
                return b""
            self._buffer[0] = first[0]
            count = 1
            while count < n:
                ready = self._poll.poll(0)
                if not ready or not ready[0][1] & self._pollin or not self._in.readinto(self._byte):
                    break
                self._buffer[count] = self._byte[0]
                count += 1
            return bytes(self._buffer[:count])
        except OSError:  # EIO: the other side of the pty is gone
            return b""

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()


class FdTransport(Transport):
    """Two file descriptors on CPython (stdin/stdout, a pipe, a pty, a socketpair)."""

    name = "fd"

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in_fd = in_fd
        self._out_fd = out_fd
        # Non-blocking, or a write to a link nobody reads (its buffer full) blocks the whole event
        # loop, watchdog included, forever; read() and write() wait for readiness instead.
        os.set_blocking(in_fd, False)
        os.set_blocking(out_fd, False)

    async def _ready(self, fd: int, for_write: bool) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        if for_write:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
        try:
            await waiter
        finally:
            if for_write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    async def read(self, n: int) -> bytes:
        while True:
            await self._ready(self._in_fd, False)
            try:
                return os.read(self._in_fd, n)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the other side of the pty is gone
                return b""

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._out_fd, view)
            except BlockingIOError:
                await self._ready(self._out_fd, True)
                continue
            view = view[sent:]


def _stream_writer(stream: Any) -> Any:
    """MicroPython's StreamWriter(stream, extra) over any pollable stream; CPython's
    StreamWriter has another signature and is never built here."""
    writer_class: Any = asyncio.StreamWriter
    return writer_class(stream, {})


def open_stdio() -> Transport:
    """The process's stdin/stdout as the board link."""
    if _port.IS_MICROPYTHON:
        _port.disable_ctrl_c()
        return PolledStdioTransport(sys.stdin.buffer, sys.stdout.buffer)
    return FdTransport(sys.stdin.fileno(), sys.stdout.fileno())


async def open_tcp(host: str, port: int) -> Transport:
    """A TCP connection to the station (the unix port, QEMU user networking)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TCP_CONNECT_TIMEOUT_S)
    return StreamTransport(reader, writer, f"tcp:{host}:{port}", reconnectable=True)


def open_uart(link: dict[str, Any]) -> Transport:
    """The profile's UART (ids, pins and baud from its [link] table) on a board."""
    machine = _port.MACHINE
    if machine is None or not hasattr(machine, "UART"):
        raise TransportUnavailable("uart", "this port has no machine.UART")
    kwargs: dict[str, Any] = {"baudrate": int(link.get("baud", UART_BAUD)), "timeout": 0,
                              "rxbuf": int(link.get("rxbuf", UART_RXBUF))}
    if "tx" in link:
        kwargs["tx"] = machine.Pin(int(link["tx"]))
    if "rx" in link:
        kwargs["rx"] = machine.Pin(int(link["rx"]))
    uart = machine.UART(int(link.get("uart_id", 0)), **kwargs)
    name = f"uart{int(link.get('uart_id', 0))}"
    return StreamTransport(asyncio.StreamReader(uart), _stream_writer(uart), name, reconnectable=False)


def parse_spec(spec: str) -> tuple[str, str, int]:
    """"stdio", "uart" or "tcp:HOST:PORT" -> (kind, host, port)."""
    if spec in ("stdio", "uart"):
        return spec, "", 0
    kind, _, rest = spec.partition(":")
    host, _, port_text = rest.rpartition(":")
    if kind != "tcp" or not host or not port_text.isdigit():
        raise TransportUnavailable(spec, "expected stdio, uart or tcp:HOST:PORT")
    return kind, host, int(port_text)


async def open_transport(spec: str, link: dict[str, Any]) -> Transport:
    kind, host, port = parse_spec(spec)
    if kind == "stdio":
        return open_stdio()
    if kind == "uart":
        return open_uart(link)
    return await open_tcp(host, port)
