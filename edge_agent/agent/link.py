"""A board link: a transport, the frame decoder and the message codec, with its counters.

The codec is the ONE place where message bodies are made and checked. PlainCodec uses
edge_agent.protocol directly; once the authenticated handshake has produced a session
(edge_agent/session.py: `Session.seal(msg) -> bytes`, `Session.open(body) -> dict`),
the runtime swaps in SessionCodec(session) and nothing else changes. Owns no policy
beyond pacing the answers to `hello_request` (one paced rule that the enrollment, handshake
and serving waits share): what to send and how to react is runtime.py's.
"""

import asyncio

from edge_agent.agent import _port
from edge_agent.agent.transport import READ_SIZE, Transport
from edge_agent.protocol import (
    CHALLENGE,
    HELLO,
    HELLO_REQUEST,
    FrameDecoder,
    ProtocolError,
    decode_message,
    encode_frame,
    encode_message,
)

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass


# A hello_request is unauthenticated: answer at most one per this interval, so a flood of them
# cannot keep the board re-handshaking. Below the station's HELLO_REQUEST_INTERVAL_S (3 s), so the
# station's next request after an ignored one is answered; above a hello's round trip, so a
# request that crossed our hello on the wire is ignored instead of starting a second handshake.
REHELLO_MIN_INTERVAL_S = 2.0


class LinkClosed(Exception):
    """The transport reached its end: the station hung up or the pty went away."""


class HelloRequested(Exception):
    """The station asked for our hello (it missed it) and the pacing allows an answer: the
    runtime starts the connection over from hello. Raised by the waits of enrollment and the
    handshake, and by the runtime itself while serving a plain (unsealed) connection."""


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
    dropped and counted like corrupted ones, except an unsealed message of PLAIN_TYPES,
    which is returned as it is (without "mac"): the runtime may answer it, and neither
    type can act on the session (a challenge only starts a new handshake that the
    station must sign)."""

    PLAIN_TYPES = (HELLO_REQUEST, CHALLENGE)

    def __init__(self, session: Any, errors: tuple[type[Exception], ...] = ()) -> None:
        self._session = session
        self._rejections = tuple(errors)
        self.errors = (ProtocolError,) + tuple(errors)  # noqa: RUF005 - MicroPython has no starred tuples

    def encode(self, msg: dict[str, Any]) -> bytes:
        return bytes(self._session.seal(msg))

    def decode(self, body: bytes) -> dict[str, Any]:
        try:
            msg: dict[str, Any] = self._session.open(body)
        except Exception as exc:
            if not isinstance(exc, self._rejections):
                raise
            plain = _plain(body, self.PLAIN_TYPES)
            if plain is None:
                raise
            return plain
        return msg


def _plain(body: bytes, types: tuple[str, ...]) -> dict[str, Any] | None:
    """The unsealed message in `body` if it is one of `types`, else None."""
    try:
        msg: dict[str, Any] = decode_message(body)
    except ProtocolError:
        return None
    if "mac" in msg or "n" in msg or msg["t"] not in types:
        return None
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
        self.hello_sent_ms: int | None = None  # ticks of the last hello sent: paces hello_request answers

    def attach(self, transport: Transport) -> None:
        """Use a newly opened transport; a partial frame from the old one is forgotten."""
        self.close()
        self.transport = transport
        self.decoder.reset()
        self._pending = []

    async def send(self, msg: dict[str, Any], plain: bool = False) -> None:
        """Frame and write `msg`, through the codec unless `plain` (hello and the handshake's
        answer, which a session must not seal: the station reads them without one)."""
        frame = encode_frame(encode_message(msg) if plain else self.codec.encode(msg))
        async with self._write_lock:
            if self.transport is None:
                raise LinkClosed()
            try:
                await self.transport.write(frame)
            except OSError:
                raise LinkClosed() from None
        self.frames_sent += 1
        if msg["t"] == HELLO:
            self.hello_sent_ms = _port.ticks_ms()

    def hello_requested(self, msg: dict[str, Any]) -> bool:
        """Whether `msg` is an unsealed hello_request to answer now with a new hello: at most
        one per REHELLO_MIN_INTERVAL_S after the last hello sent."""
        if msg["t"] != HELLO_REQUEST or "mac" in msg:
            return False
        sent = self.hello_sent_ms
        return sent is None or _port.ticks_diff(_port.ticks_ms(), sent) >= int(REHELLO_MIN_INTERVAL_S * 1000)

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
