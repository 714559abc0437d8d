"""A TCP relay for the board link benchmark: limits each direction to a UART's byte rate with a
token bucket (a small burst, like a UART's FIFO), and can watch the frames going through it.

    client (station, mpremote) --TCP--> Relay(listen port) --TCP--> upstream (board sim, socat)

Runs on its own event loop in a thread (`RelayThread`), so the benchmark's main thread can block
on HTTP calls and subprocesses. Owns bytes and timing only: it never changes what it forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edge_agent.protocol import FrameDecoder

UART_BAUD = 115200
LINE_RATE_BPS = UART_BAUD / 10  # 8N1: ten bit times per byte -> 11,520 B/s
BURST_BYTES = 64  # a UART's FIFO: what may leave back to back before the line rate applies
SLICE_BYTES = 32  # forwarded per write; below the burst so a late wake-up costs no line time
READ_SIZE = 4096
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0

T = TypeVar("T")
FrameObserver = Callable[[str, bytes, float], None]  # (direction "up" | "down", frame body, perf_counter)


class TokenBucket:
    """`rate` bytes per second; a send may run the bucket into debt, and the sender then sleeps
    the debt off. Over time exactly `rate` gets through, however late the sleeps wake up (as long
    as they are late by less than the burst's worth of line time)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.perf_counter()

    async def spend(self, count: int) -> None:
        now = time.perf_counter()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate) - count
        self._stamp = now
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


@dataclass
class Relay:
    """One listening port relaying every client to `upstream`; `rate` None: unthrottled."""

    upstream: tuple[str, int]
    rate: float | None = LINE_RATE_BPS
    observer: FrameObserver | None = None
    port: int = 0
    bytes_up: int = 0  # client -> upstream
    bytes_down: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            writer.close()  # like a serial server with no board behind it: the client retries
            return
        for stream in (writer, up_writer):
            sock = stream.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pumps = [asyncio.create_task(self._pump(reader, up_writer, "up")),
                 asyncio.create_task(self._pump(up_reader, writer, "down"))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for stream in (writer, up_writer):
                stream.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        bucket = TokenBucket(self.rate, BURST_BYTES) if self.rate is not None else None
        decoder = FrameDecoder() if self.observer is not None else None
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(READ_SIZE):
                if decoder is not None and self.observer is not None:
                    now = time.perf_counter()
                    for body in decoder.feed(data):
                        self.observer(direction, body, now)
                if bucket is None:
                    writer.write(data)
                    await writer.drain()
                else:
                    for offset in range(0, len(data), SLICE_BYTES):
                        piece = data[offset:offset + SLICE_BYTES]
                        writer.write(piece)
                        await writer.drain()
                        await bucket.spend(len(piece))
                if direction == "up":
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)


class RelayThread:
    """An event loop in a daemon thread, for relays and small servers; `call` runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="relay", daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = START_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def relay(self, upstream: tuple[str, int], rate: float | None = LINE_RATE_BPS,
              observer: FrameObserver | None = None) -> Relay:
        relay = Relay(upstream, rate, observer)
        self.call(relay.start())
        return relay

    def close(self, *relays: Relay) -> None:
        for relay in relays:
            with contextlib.suppress(Exception):
                self.call(relay.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT_S)


# ---- small servers behind a relay: a sink (calibration) and an echo (the latency baseline)

async def start_sink(counter: list[float]) -> asyncio.Server:
    """Reads and drops everything; `counter` gets (bytes, first byte time, last byte time)."""
    counter[:] = [0.0, 0.0, 0.0]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(READ_SIZE):
            now = time.perf_counter()
            if counter[0] == 0:
                counter[1] = now
            counter[0] += len(data)
            counter[2] = now
        writer.close()

    return await asyncio.start_server(client, "127.0.0.1", 0)


async def start_echo() -> asyncio.Server:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(client, "127.0.0.1", 0)


def server_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])
