"""A board link: a transport, the frame decoder and the message codec, with its counters.

The codec is the ONE place where message bodies are made and checked. PlainCodec uses
edge_agent.protocol directly; once the authenticated handshake has produced a session
(edge_agent/session.py: `Session.seal(msg) -> bytes`, `Session.open(body) -> dict`),
the runtime swaps in SessionCodec(session) and nothing else changes. Owns no policy:
what to send and how to react is runtime.py's.
"""

import asyncio

from edge_agent.agent.transport import READ_SIZE, Transport
from edge_agent.protocol import FrameDecoder, ProtocolError, decode_message, encode_frame, encode_message

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass


class LinkClosed(Exception):
    """The transport reached its end: the station hung up or the pty went away."""


class PlainCodec:
    """Message bodies without a session: before enrollment and until session.py lands."""

    errors: tuple[type[Exception], ...] = (ProtocolError,)  # decode() failures that drop the frame

    def encode(self, msg: dict[str, Any]) -> bytes:
        return encode_message(msg)

    def decode(self, body: bytes) -> dict[str, Any]:
        return decode_message(body)


class SessionCodec:
    """Message bodies sealed by an authenticated session (sets "n" and "mac" on each).

    `errors` are the session's own failures (bad MAC, replayed "n"): such frames are
    dropped and counted like corrupted ones."""

    def __init__(self, session: Any, errors: tuple[type[Exception], ...] = ()) -> None:
        self._session = session
        self.errors = (ProtocolError,) + tuple(errors)  # noqa: RUF005 - MicroPython has no starred tuples

    def encode(self, msg: dict[str, Any]) -> bytes:
        return bytes(self._session.seal(msg))

    def decode(self, body: bytes) -> dict[str, Any]:
        msg: dict[str, Any] = self._session.open(body)
        return msg


class Link:
    """Messages over a transport: send() frames and writes one, receive() returns the
    next valid message. Frames that fail the CRC or the codec are dropped and counted.
    One Link lives as long as the agent; attach() gives it each new transport, so its
    counters cover every connection since boot."""

    def __init__(self, codec: Any) -> None:
        self.transport: Transport | None = None
        self.codec = codec
        self.decoder = FrameDecoder()
        self._pending: list[bytes] = []
        self._write_lock = asyncio.Lock()  # frames from concurrent tasks never interleave
        self.frames_sent = 0
        self.dropped_invalid = 0  # good CRC, but not a valid message (or a failed MAC)
        self.last_invalid: Exception | None = None

    def attach(self, transport: Transport) -> None:
        """Use a newly opened transport; a partial frame from the old one is forgotten."""
        self.close()
        self.transport = transport
        self.decoder.reset()
        self._pending = []

    async def send(self, msg: dict[str, Any]) -> None:
        frame = encode_frame(self.codec.encode(msg))
        async with self._write_lock:
            if self.transport is None:
                raise LinkClosed()
            try:
                await self.transport.write(frame)
            except OSError:
                raise LinkClosed() from None
        self.frames_sent += 1

    async def receive(self) -> dict[str, Any]:
        """The next valid message; LinkClosed at the end of the transport. Cancelling
        it loses nothing: bodies already decoded wait in the link for the next call."""
        while True:
            while self._pending:
                body = self._pending.pop(0)
                try:
                    msg: dict[str, Any] = self.codec.decode(body)
                    return msg
                except self.codec.errors as exc:
                    self.dropped_invalid += 1
                    self.last_invalid = exc
            if self.transport is None:
                raise LinkClosed()
            data = await self.transport.read(READ_SIZE)
            if not data:
                raise LinkClosed()
            self._pending.extend(self.decoder.feed(data))

    def counters(self) -> dict[str, int]:
        counters = self.decoder.counters()
        counters["dropped_invalid"] = self.dropped_invalid
        counters["frames_sent"] = self.frames_sent
        return counters

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
