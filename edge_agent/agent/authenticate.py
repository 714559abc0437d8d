"""The agent's side of the session handshake on each connection: the `authenticate` hook
runtime.Agent calls after hello (and enrollment). It waits for the station's `challenge`,
answers it with edge_agent.session.BoardHandshake and returns the SessionCodec that seals
and opens every later message of the connection. Given a challenge (one that arrived inside
a session after the board answered a hello_request), it answers that one instead of waiting.

Owns this exchange only; the transcript and keys are session.py's, the stored certificate
and station key storage.py's. A board without a certificate is served plain (the station
answers it with nothing but enrollment); a failed or timed-out handshake drops the
connection (LinkClosed), never falls back to plain messages.
"""

import asyncio

from edge_agent.agent import _port
from edge_agent.agent.link import HelloRequested, LinkClosed, SessionCodec
from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.protocol import CHALLENGE, ERROR
from edge_agent.session import HANDSHAKE_TIMEOUT_S, BadMac, BoardHandshake, Replay, SessionError

try:  # MicroPython has neither collections.abc nor typing
    from collections.abc import Awaitable, Callable
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass


class AuthenticationFailed(LinkClosed):
    """The handshake failed: the connection is dropped (LinkClosed is what the runtime expects)."""

    def __init__(self, reason: str) -> None:
        super().__init__("authentication failed: " + reason)
        self.reason = reason


async def _await_challenge(link: Any, timeout_s: float) -> dict[str, Any]:
    """The next `challenge` (other plain messages before it are skipped), or AuthenticationFailed;
    HelloRequested when the station asks for the hello it missed."""
    started = _port.ticks_ms()
    while True:
        remaining_ms = int(timeout_s * 1000) - _port.ticks_diff(_port.ticks_ms(), started)
        if remaining_ms <= 0:
            raise AuthenticationFailed("no challenge within " + str(timeout_s) + " s")
        try:
            msg: dict[str, Any] = await asyncio.wait_for(link.receive(), remaining_ms / 1000)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise AuthenticationFailed("no challenge within " + str(timeout_s) + " s") from None
        if msg["t"] == CHALLENGE:
            return msg
        if link.hello_requested(msg):
            raise HelloRequested()
        if msg["t"] == ERROR:
            raise AuthenticationFailed("station refused: " + str(msg.get("code", "")))


def make_authenticate(storage: Any,
                      timeout_s: float = HANDSHAKE_TIMEOUT_S) -> "Callable[[Any, Any], Awaitable[Any]]":
    """The hook for runtime.Agent(authenticate=...): reads what enrollment (or a cert_update)
    stored on each handshake, so a board enrolled during this connection authenticates in the
    same one and a renewed certificate is presented from the next handshake on."""

    async def authenticate(link: Any, identity: Any, challenge: Any = None) -> Any:
        cert = storage.load_cert()
        station_pubkey = storage.load_station_pubkey()
        if cert is None or station_pubkey is None:
            return None  # not enrolled: only enrollment can happen on this connection
        handshake = BoardHandshake(SigningKey(identity.seed), identity.board_id, cert,
                                   storage.load_station_id(), station_pubkey)
        if challenge is None:
            challenge = await _await_challenge(link, timeout_s)
        try:
            response, session = handshake.respond(challenge)
        except SessionError as exc:
            _port.log("link: " + str(exc))
            raise AuthenticationFailed(str(exc)) from None
        await link.send(response, plain=True)
        return SessionCodec(session, (BadMac, Replay))

    return authenticate
