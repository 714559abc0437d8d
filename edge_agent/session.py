"""Board sessions: the mutually authenticated handshake between the station and an
enrolled board, and the per-direction MAC and sequence number on every later frame.

Owns the handshake transcript, the key derivation and the Session objects. Pure state
machines that take and return message dicts: it does no I/O, keeps no clock (drivers
bound each step with HANDSHAKE_TIMEOUT_S), stores no keys and does not check
certificates (the station's lookup_board_key callback does). Runs unchanged on
MicroPython (the board role) and CPython (both roles). docs/board-protocol.md,
"Handshake and session", is the human description.

    S -> B  challenge           nonce Ns, epk Es, sig sigS = Sign(station key, T_S)
    B -> S  challenge_response  nonce Ns, epk Eb, cert, sig sigB = Sign(board key, T_B)

    T_S = LABEL || "S" || u16(v) || lp(station_id) || lp(board_id) || Ns || Es
    T_B = T_S || sigS || "B" || lp(cert) || Eb          lp(x) = u16(len(x)) || x
    TH  = SHA-256(T_B || sigB)
    PRK = HMAC-SHA256(TH, X25519(e, E_peer))              HKDF-Extract, salt = TH
    key = HMAC-SHA256(PRK, LABEL || direction || 0x01)    HKDF-Expand, one block
"""

import hashlib
import os

from edge_agent.crypto.ed25519 import SigningKey, verify
from edge_agent.crypto.hmac_sha256 import compare_digest, hmac_sha256
from edge_agent.crypto.x25519 import KEY_SIZE, LowOrderPoint, public_from_private, x25519
from edge_agent.protocol.errors import InvalidField, ProtocolError
from edge_agent.protocol.messages import (
    CHALLENGE,
    CHALLENGE_RESPONSE,
    ERROR,
    MAC_SIZE,
    PROTOCOL_VERSION,
    decode_message,
    encode_message,
    mac_split,
    make,
    validate,
)

try:  # MicroPython has neither collections.abc nor typing
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython never evaluates annotations
    pass

LABEL = b"firefly-board-handshake-v1"
STATION_TO_BOARD = b" station->board"
BOARD_TO_STATION = b" board->station"
NONCE_SIZE = 32
MAX_ID_BYTES = 0xFFFF  # ids and the certificate are length-prefixed with 2 bytes
# The board side takes ~15 ms on the MicroPython unix port; a 100 MHz MCU is roughly
# 100x slower, and a 64 KiB heap may force a GC pass mid-handshake.
HANDSHAKE_TIMEOUT_S = 10.0


class SessionError(Exception):
    """Root of every handshake and session failure."""


class HandshakeFailed(SessionError):
    """The peer is not who it must be, or its handshake message is unusable."""

    def __init__(self, reason: str) -> None:
        super().__init__("handshake failed: " + reason)
        self.reason = reason


class BadMac(SessionError):
    """A frame whose MAC does not verify under this session's receive key: forged,
    corrupted, spliced from another session or reflected back to its sender."""

    def __init__(self, reason: str) -> None:
        super().__init__("frame rejected: " + reason)
        self.reason = reason


class Replay(SessionError):
    """An authentic frame whose sequence number is not above the last one accepted."""

    def __init__(self, n: int, expected_at_least: int) -> None:
        super().__init__(f"frame n={n} replayed or reordered: expected n >= {expected_at_least}")
        self.n = n
        self.expected_at_least = expected_at_least


def _lp(data: bytes) -> bytes:
    if len(data) > MAX_ID_BYTES:
        raise HandshakeFailed(f"a {len(data)}-byte transcript field exceeds {MAX_ID_BYTES} bytes")
    return len(data).to_bytes(2, "big") + data


def station_transcript(station_id: str, board_id: str, nonce: bytes, station_epk: bytes) -> bytes:
    """T_S, the bytes the station signs in its challenge."""
    return (
        LABEL
        + b"S"
        + PROTOCOL_VERSION.to_bytes(2, "big")
        + _lp(station_id.encode())
        + _lp(board_id.encode())
        + nonce
        + station_epk
    )


def board_transcript(station_part: bytes, station_sig: bytes, cert: bytes, board_epk: bytes) -> bytes:
    """T_B, the bytes the board signs: everything the station sent, then its own part."""
    return station_part + station_sig + b"B" + _lp(cert) + board_epk


def derive_keys(private: bytes, peer_epk: bytes, board_part: bytes, board_sig: bytes) -> tuple[bytes, bytes, bytes]:
    """(station->board key, board->station key, transcript hash TH) per RFC 5869."""
    try:
        shared = x25519(private, peer_epk)
    except LowOrderPoint:
        raise HandshakeFailed("the peer's ephemeral key is a low-order point") from None
    th = hashlib.sha256(board_part + board_sig).digest()
    prk = hmac_sha256(th, shared)
    s2b = hmac_sha256(prk, LABEL + STATION_TO_BOARD + b"\x01")
    b2s = hmac_sha256(prk, LABEL + BOARD_TO_STATION + b"\x01")
    return s2b, b2s, th


def _checked(msg: Any, expected: str) -> dict[str, Any]:
    """`msg` validated and of type `expected`, or HandshakeFailed saying what it was."""
    try:
        checked = validate(msg)
    except ProtocolError as exc:
        raise HandshakeFailed(f"malformed {expected}: {exc}") from None
    if checked["t"] == ERROR:
        raise HandshakeFailed(f"peer refused: {checked['code']}: {checked['msg']}")
    if checked["t"] != expected:
        raise HandshakeFailed(f"expected {expected}, got {checked['t']}")
    return checked


class Session:
    """The keys and sequence numbers of one authenticated connection. seal() and open()
    never change state on failure, so a forged frame cannot desynchronise the session."""

    def __init__(self, send_key: bytes, receive_key: bytes, transcript_hash: bytes) -> None:
        self._send_key = send_key
        self._receive_key = receive_key
        self._send_n = 0
        self._receive_min = 0
        self.transcript_hash = transcript_hash  # public; its first bytes name the session in logs

    def seal(self, msg: dict[str, Any]) -> bytes:
        """The encoded body of `msg` with the next "n" and its "mac", ready to frame."""
        sealed = dict(msg)
        sealed["n"] = self._send_n
        sealed["mac"] = bytes(MAC_SIZE)
        covered, _ = mac_split(encode_message(sealed))
        self._send_n += 1
        return covered + hmac_sha256(self._send_key, covered)

    def open(self, body: bytes) -> dict[str, Any]:
        """The message in `body` once its MAC (checked before any parsing) and its
        sequence number (strictly above the last accepted one; gaps are dropped frames)
        are good. Raises BadMac, Replay, or ProtocolError for an authentic but
        malformed message."""
        try:
            covered, tag = mac_split(body)
        except InvalidField:
            raise BadMac("no session mac") from None
        if not compare_digest(hmac_sha256(self._receive_key, covered), tag):
            raise BadMac("mac does not verify")
        msg = decode_message(body)
        n = msg.get("n")
        if n is None:
            raise InvalidField(msg["t"], "n", "required in a session")
        if n < self._receive_min:
            raise Replay(n, self._receive_min)
        self._receive_min = n + 1
        return msg


class StationHandshake:
    """The station's side of one handshake with one board: challenge(), then finish()
    with the board's answer. Single use: after finish() or any failure, it refuses.

    lookup_board_key(board_id, cert) returns the Ed25519 public key the station's
    records hold for that board when the certificate is the one it issued and neither
    is revoked, else None."""

    def __init__(
        self,
        station_key: SigningKey,
        station_id: str,
        board_id: str,
        lookup_board_key: "Callable[[str, bytes], bytes | None]",
        random_bytes: "Callable[[int], bytes]" = os.urandom,
    ) -> None:
        self._key = station_key
        self._station_id = station_id
        self._board_id = board_id
        self._lookup = lookup_board_key
        self._random = random_bytes
        self._private: bytes | None = None
        self._nonce = b""
        self._part = b""
        self._sig = b""
        self._state = "new"

    def challenge(self) -> dict[str, Any]:
        """The challenge message for the board."""
        if self._state != "new":
            raise HandshakeFailed("challenge() called twice")
        self._state = "challenged"
        self._nonce = self._random(NONCE_SIZE)
        self._private = self._random(KEY_SIZE)
        epk = public_from_private(self._private)
        self._part = station_transcript(self._station_id, self._board_id, self._nonce, epk)
        self._sig = self._key.sign(self._part)
        return make(CHALLENGE, nonce=self._nonce, epk=epk, sig=self._sig)

    def finish(self, response: Any) -> Session:
        """The session, once `response` proves the board holds its enrolled key."""
        if self._state != "challenged" or self._private is None:
            raise HandshakeFailed("finish() without an outstanding challenge")
        private, self._private, self._state = self._private, None, "failed"
        msg = _checked(response, CHALLENGE_RESPONSE)
        if msg["nonce"] != self._nonce:
            raise HandshakeFailed("the response answers another challenge")
        if "epk" not in msg or "cert" not in msg:
            raise HandshakeFailed("the response lacks epk or cert")
        board_key = self._lookup(self._board_id, msg["cert"])
        if board_key is None:
            raise HandshakeFailed(f"board {self._board_id!r} is unknown, revoked or its certificate is not ours")
        board_part = board_transcript(self._part, self._sig, msg["cert"], msg["epk"])
        if not verify(board_key, board_part, msg["sig"]):
            raise HandshakeFailed(f"board {self._board_id!r} signature does not verify")
        s2b, b2s, th = derive_keys(private, msg["epk"], board_part, msg["sig"])
        self._state = "done"
        return Session(s2b, b2s, th)


class BoardHandshake:
    """The board's side: holds what enrollment gave it and answers each connection's
    challenge with respond(). Every call is a new handshake with fresh ephemerals."""

    def __init__(
        self,
        board_key: SigningKey,
        board_id: str,
        cert: bytes,
        station_id: str,
        station_pubkey: bytes,
        random_bytes: "Callable[[int], bytes]" = os.urandom,
    ) -> None:
        self._key = board_key
        self._board_id = board_id
        self._cert = cert
        self._station_id = station_id
        self._station_pubkey = station_pubkey
        self._random = random_bytes

    def respond(self, challenge: Any) -> tuple[dict[str, Any], Session]:
        """(challenge_response, session) once `challenge` is signed by our station for
        us; the session opens nothing until the station's first MAC proves the keys."""
        msg = _checked(challenge, CHALLENGE)
        if "epk" not in msg or "sig" not in msg:
            raise HandshakeFailed("the challenge lacks epk or sig")
        station_part = station_transcript(self._station_id, self._board_id, msg["nonce"], msg["epk"])
        if not verify(self._station_pubkey, station_part, msg["sig"]):
            raise HandshakeFailed("the station signature does not verify")
        private = self._random(KEY_SIZE)
        epk = public_from_private(private)
        board_part = board_transcript(station_part, msg["sig"], self._cert, epk)
        sig = self._key.sign(board_part)
        s2b, b2s, th = derive_keys(private, msg["epk"], board_part, sig)
        response = make(CHALLENGE_RESPONSE, nonce=msg["nonce"], epk=epk, sig=sig, cert=self._cert)
        return response, Session(b2s, s2b, th)
