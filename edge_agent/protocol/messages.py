"""Board messages: CBOR maps with a protocol version "v", a type "t" and per-type fields.

Owns the message table (types, required and optional fields and their kinds),
validation, and encoding to and from frame bodies. It must not know about sessions,
keys or transports: the session layer sets "n" and computes "mac" with the helpers
here (mac_split), and docs/board-protocol.md is the human copy of the table.

Receivers ignore fields they do not know, so a newer agent may add optional fields
without a version bump; removing or retyping a field needs PROTOCOL_VERSION + 1.
"""

from edge_agent.protocol.cbor import cbor_decode, cbor_encode_map
from edge_agent.protocol.errors import FrameTooLarge, InvalidField, UnknownMessageType, UnsupportedVersion
from edge_agent.protocol.framing import MAX_FRAME_BODY

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

PROTOCOL_VERSION = 1

HELLO = "hello"
HELLO_REQUEST = "hello_request"
ENROLL_REQUEST = "enroll_request"
ENROLL_RESPONSE = "enroll_response"
CHALLENGE = "challenge"
CHALLENGE_RESPONSE = "challenge_response"
HEARTBEAT = "heartbeat"
HEARTBEAT_ACK = "heartbeat_ack"
TELEMETRY = "telemetry"
EVENT = "event"
COMMAND = "command"
RESULT = "result"
FILE_BEGIN = "file_begin"
FILE_CHUNK = "file_chunk"
FILE_CHUNK_ACK = "file_chunk_ack"
FILE_END = "file_end"
FILE_STATUS = "file_status"
LOG = "log"
ERROR = "error"
CERT_UPDATE = "cert_update"

COMMAND_NAMES = ("read_config", "write_config", "reboot", "run", "read_sensor")
FILE_STATES = ("receiving", "done", "failed")
LOG_LEVELS = ("debug", "info", "warning", "error")

MAC_SIZE = 32  # HMAC-SHA256 tag
# The bytes that end every message carrying a MAC: text "mac", then a 32-byte byte-string head.
MAC_TRAILER_HEAD = b"\x63mac\x58\x20"

# Worst case of what a file_chunk message spends around its data (uints at their 9-byte max):
#   map head 1 | "v": 1  2+1 | "t": "file_chunk"  2+11 | "n": uint  2+9 | "xfer": uint  5+9
#   "off": uint  4+9 | "data": head with a 2-byte length  5+3 | "mac": 32 bytes  4+2+32
#   = 1 + 3 + 13 + 11 + 14 + 13 + 8 + 38 = 101
FILE_CHUNK_OVERHEAD = 101
# Rounded down to whole 256-byte flash program pages: (4096 - 101) // 256 * 256 = 3840.
FILE_CHUNK_SIZE = (MAX_FRAME_BODY - FILE_CHUNK_OVERHEAD) // 256 * 256

# Field kinds. A tuple of strings as a kind means "one of these texts".
TEXT = "text"
UINT = "uint"  # a non-negative integer below 2**64 (counts, ids, offsets, seconds)
BOOL = "bool"
BYTES = "bytes"
KEY32 = "bytes[32]"  # Ed25519 public keys, nonces, SHA-256 digests, MACs
LOOKUP8 = "bytes[8]"  # an enrollment code's lookup (edge_agent/enroll_proof.py)
SIG64 = "bytes[64]"  # Ed25519 signatures
TEXTS = "list[text]"
MAP = "map"
COUNTERS = "map[text, uint]"
ANY = "any"

ENVELOPE: dict[str, str | tuple[str, ...]] = {"v": UINT, "t": TEXT, "n": UINT, "mac": KEY32}

# type: (required fields, optional fields), each a field -> kind map.
SCHEMA: dict[str, tuple[dict[str, str | tuple[str, ...]], dict[str, str | tuple[str, ...]]]] = {
    HELLO: (
        {"board_id": TEXT, "profile": TEXT, "agent_version": TEXT, "proto": UINT, "caps": TEXTS},
        {"platform": TEXT},
    ),
    HELLO_REQUEST: ({}, {}),  # plain: the station missed the board's hello (see docs/board-protocol.md)
    # lookup, proof: see edge_agent/enroll_proof.py; a board without a code sends neither (and is refused)
    ENROLL_REQUEST: ({"board_id": TEXT, "profile": TEXT, "pubkey": KEY32}, {"lookup": LOOKUP8, "proof": KEY32}),
    ENROLL_RESPONSE: (
        {"ok": BOOL},
        {"cert": BYTES, "station_id": TEXT, "station_pubkey": KEY32, "proof": KEY32, "reason": TEXT},
    ),
    CHALLENGE: ({"nonce": KEY32}, {"epk": KEY32, "sig": SIG64}),  # epk, sig: see edge_agent/session.py
    CHALLENGE_RESPONSE: ({"nonce": KEY32, "sig": SIG64}, {"cert": BYTES, "epk": KEY32}),
    HEARTBEAT: (
        {"seq": UINT, "uptime_s": UINT, "free_mem": UINT, "counters": COUNTERS},
        {"battery_mv": UINT},
    ),
    HEARTBEAT_ACK: ({"seq": UINT}, {"time_s": UINT}),
    TELEMETRY: ({"values": MAP}, {"ts": UINT}),
    EVENT: ({"name": TEXT}, {"data": MAP, "ts": UINT}),
    COMMAND: ({"id": UINT, "cmd": COMMAND_NAMES}, {"args": MAP}),
    RESULT: ({"id": UINT, "ok": BOOL}, {"value": ANY, "error": TEXT}),
    FILE_BEGIN: ({"xfer": UINT, "path": TEXT, "size": UINT, "sha256": KEY32}, {}),
    FILE_CHUNK: ({"xfer": UINT, "off": UINT, "data": BYTES}, {}),
    FILE_CHUNK_ACK: ({"xfer": UINT, "have": UINT}, {}),
    FILE_END: ({"xfer": UINT}, {}),
    FILE_STATUS: ({"xfer": UINT, "have": UINT, "state": FILE_STATES}, {"error": TEXT}),
    LOG: ({"level": LOG_LEVELS, "msg": TEXT}, {"ts": UINT}),
    ERROR: ({"code": TEXT, "msg": TEXT}, {"ref": UINT}),
    CERT_UPDATE: ({"cert": BYTES}, {}),  # sealed: a renewed certificate for the board's enrolled key
}
MESSAGE_TYPES = tuple(SCHEMA)


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (1 << 64)


def _conforms(value: Any, kind: str | tuple[str, ...]) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if kind == UINT:
        return _is_uint(value)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == BYTES:
        return isinstance(value, bytes)
    if kind == KEY32:
        return isinstance(value, bytes) and len(value) == 32
    if kind == LOOKUP8:
        return isinstance(value, bytes) and len(value) == 8
    if kind == SIG64:
        return isinstance(value, bytes) and len(value) == 64
    if kind == TEXTS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == MAP:
        return isinstance(value, dict)
    if kind == COUNTERS:
        return isinstance(value, dict) and all(isinstance(k, str) and _is_uint(n) for k, n in value.items())
    if isinstance(kind, tuple):
        return isinstance(value, str) and value in kind
    return kind == ANY


def _describe(kind: str | tuple[str, ...]) -> str:
    return "one of " + ", ".join(kind) if isinstance(kind, tuple) else kind


def _check_fields(
    msg_type: str, body: dict[Any, Any], fields: dict[str, str | tuple[str, ...]], required: bool
) -> None:
    for name in sorted(fields):  # MicroPython's dict order is not insertion order: report the same field
        kind = fields[name]
        if name not in body:
            if required:
                raise InvalidField(msg_type, name, "required field is missing")
            continue
        if not _conforms(body[name], kind):
            raise InvalidField(msg_type, name, f"must be {_describe(kind)}, got {type(body[name]).__name__}")


def validate(body: Any) -> dict[str, Any]:
    """Check the version, the type and the type's fields; return `body` unchanged."""
    if not isinstance(body, dict):
        raise InvalidField("?", "body", f"must be a map, got {type(body).__name__}")
    version = body.get("v")
    if not _is_uint(version) or version != PROTOCOL_VERSION:
        raise UnsupportedVersion(version, PROTOCOL_VERSION)
    msg_type = body.get("t")
    if not isinstance(msg_type, str) or msg_type not in SCHEMA:
        raise UnknownMessageType(msg_type)
    _check_fields(msg_type, body, ENVELOPE, False)
    required, optional = SCHEMA[msg_type]
    _check_fields(msg_type, body, required, True)
    _check_fields(msg_type, body, optional, False)
    return body


def make(msg_type: str, **fields: Any) -> dict[str, Any]:
    """A validated message of `msg_type` with `fields` (may include "n" and "mac")."""
    msg: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": msg_type}
    msg.update(fields)
    return validate(msg)


def encode_message(msg: dict[str, Any]) -> bytes:
    """Validate and encode `msg` as a frame body: deterministic key order, "mac" last."""
    body = cbor_encode_map(validate(msg), "mac")
    if len(body) > MAX_FRAME_BODY:
        raise FrameTooLarge(len(body), MAX_FRAME_BODY)
    return body


def decode_message(body: bytes) -> dict[str, Any]:
    """Decode and validate a frame body; a "mac" field must be the body's last entry."""
    msg = validate(cbor_decode(body))
    if "mac" in msg:
        trailer = body[-MAC_SIZE - len(MAC_TRAILER_HEAD) :]
        if trailer != MAC_TRAILER_HEAD + msg["mac"]:
            raise InvalidField(msg["t"], "mac", "must be the last entry of the message")
    return msg


def mac_split(body: bytes) -> tuple[bytes, bytes]:
    """Split an encoded message that ends with its "mac" entry into (covered, tag).

    The MAC covers every byte of the body before the 32 tag bytes, including the map
    head, the "mac" key and its byte-string head. A sender encodes the message with
    mac=bytes(32), computes the tag over `covered` and sends covered + tag; a receiver
    checks the tag over `covered` before it decodes anything.
    """
    trailer = len(MAC_TRAILER_HEAD) + MAC_SIZE
    if len(body) < trailer or body[-trailer:-MAC_SIZE] != MAC_TRAILER_HEAD:
        raise InvalidField("?", "mac", "the body does not end with a 32-byte mac entry")
    return body[:-MAC_SIZE], body[-MAC_SIZE:]
