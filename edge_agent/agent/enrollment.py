"""First boot and enrollment: the board's identity and its certificate from the station.

On first boot the board generates an Ed25519 key pair (edge_agent.crypto) and picks its
id; both are saved before anything is sent. Until it holds a certificate, each
connection starts with enroll_request (board id, profile, public key, and the lookup and
proof derived from the one-time code in the config: the code itself never leaves the
board) and waits for enroll_response. Its `cert`, `station_id` and `station_pubkey` are
stored only if the response's `proof` shows the station knows the code
(edge_agent/enroll_proof.py). Owns these steps; it does not verify the certificate's
contents (their format is the station CA's) and never logs the seed or the code.
"""

import asyncio
import binascii
import hashlib

from edge_agent.agent import _port
from edge_agent.agent.link import HelloRequested
from edge_agent.agent.storage import Identity
from edge_agent.crypto import compare_digest, generate_keypair, keypair_from_seed
from edge_agent.enroll_proof import code_key, code_lookup, normalize_code, request_proof, response_proof
from edge_agent.protocol import ENROLL_REQUEST, ENROLL_RESPONSE, make

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

BOARD_ID_HEX_BYTES = 6  # 48 bits of the unique id or key hash: no collisions in one station's fleet


class EnrollmentError(Exception):
    """Root of enrollment failures; the runtime retries on the next connection."""


class EnrollmentRefused(EnrollmentError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the station refused enrollment: {reason}")
        self.reason = reason


class StationNotProven(EnrollmentError):
    """An accepting enroll_response whose proof is missing or wrong: it may come from someone
    on the link posing as the station. Nothing is stored and the code is kept."""

    def __init__(self) -> None:
        super().__init__("enrollment refused: the station could not prove it knows the code")


class EnrollmentTimeout(EnrollmentError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"no enroll_response within {timeout_s} s")
        self.timeout_s = timeout_s


def board_id_for(profile_name: str, public_key: bytes) -> str:
    """`<profile>-<hex>` from the factory unique id if the board has one, else the key."""
    raw = _port.unique_id() or hashlib.sha256(public_key).digest()
    return profile_name + "-" + binascii.hexlify(raw[:BOARD_ID_HEX_BYTES]).decode()


def ensure_identity(storage: Any, profile_name: str, board_id: str = "") -> Identity:
    """The stored identity, or a new one (first boot) saved before it is used."""
    identity: Identity | None = storage.load_identity()
    if identity is not None:
        return identity
    seed, public_key = generate_keypair()
    identity = Identity(board_id or board_id_for(profile_name, public_key), seed)
    storage.save_identity(identity)
    _port.log(f"first boot: generated the key of {identity.board_id}")
    return identity


async def enroll(link: Any, storage: Any, identity: Identity, profile_name: str, token: str,
                 timeout_s: float) -> dict[str, Any]:
    """One enrollment attempt on an open link; returns the accepting enroll_response.
    Other messages arriving meanwhile are ignored: nothing else is served before it. A
    hello_request (the station missed our hello and this request) raises HelloRequested."""
    public_key = keypair_from_seed(identity.seed)[1]
    fields: dict[str, Any] = {"board_id": identity.board_id, "profile": profile_name, "pubkey": public_key}
    code = normalize_code(token)
    key = None
    if code is not None:
        key = code_key(code)
        fields["lookup"] = code_lookup(code)
        fields["proof"] = request_proof(key, identity.board_id, profile_name, public_key)
    elif token:
        _port.log("the enrollment code in the config is not a valid code")  # sent without one: refused
    await link.send(make(ENROLL_REQUEST, **fields))
    msg = await _response(link, timeout_s)
    if not msg["ok"]:
        raise EnrollmentRefused(msg.get("reason", "no reason given"))
    if "cert" not in msg or "station_pubkey" not in msg:
        raise EnrollmentRefused("the response lacks cert or station_pubkey")
    station_id = msg.get("station_id", "")
    if key is None or "proof" not in msg or not compare_digest(msg["proof"], response_proof(
            key, identity.board_id, public_key, msg["cert"], station_id, msg["station_pubkey"])):
        raise StationNotProven()
    storage.save_enrollment(msg["cert"], msg["station_pubkey"], station_id)
    _forget_token(storage)
    response: dict[str, Any] = msg
    return response


async def _response(link: Any, timeout_s: float) -> dict[str, Any]:
    started = _port.ticks_ms()
    while True:
        remaining_ms = int(timeout_s * 1000) - _port.ticks_diff(_port.ticks_ms(), started)
        if remaining_ms <= 0:
            raise EnrollmentTimeout(timeout_s)
        try:
            msg: dict[str, Any] = await asyncio.wait_for(link.receive(), remaining_ms / 1000)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise EnrollmentTimeout(timeout_s) from None
        if msg["t"] == ENROLL_RESPONSE:
            return msg
        if link.hello_requested(msg):
            raise HelloRequested()


def _forget_token(storage: Any) -> None:
    """The code is one-time: once enrolled, drop it from the stored config."""
    overrides = storage.load_config()
    if "enroll_token" in overrides:
        del overrides["enroll_token"]
        storage.save_config(overrides)
