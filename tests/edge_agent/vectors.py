"""Protocol vectors that run unchanged on MicroPython and CPython.

`micropython vectors.py` (with MICROPYPATH holding the repo root) and `python vectors.py`
must print identical lines; test_micropython.py compares them. Only MicroPython-safe
syntax here: no __future__, no typing, no f-string debugging, no dict ordering reliance.
"""

import hashlib
import struct

from edge_agent.enroll_proof import code_key, code_lookup, normalize_code, request_proof, response_proof
from edge_agent.protocol import (
    CERT_UPDATE,
    CHALLENGE,
    CHALLENGE_RESPONSE,
    COMMAND,
    ENROLL_REQUEST,
    ENROLL_RESPONSE,
    ERROR,
    EVENT,
    FILE_BEGIN,
    FILE_CHUNK,
    FILE_CHUNK_ACK,
    FILE_END,
    FILE_STATUS,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    HELLO_REQUEST,
    LOG,
    MAX_ENCODED_FRAME,
    RESULT,
    TELEMETRY,
    FrameDecoder,
    ProtocolError,
    cbor_decode,
    cbor_encode,
    cobs_decode,
    cobs_encode,
    decode_message,
    encode_frame,
    encode_message,
    mac_split,
    make,
)

try:
    from collections.abc import Iterator
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

KEY = bytes(range(32))
SIG = bytes(range(64))

# One valid message of every type, with its optional fields where it has some.
SAMPLE_MESSAGES: list[tuple[str, dict[str, Any]]] = [
    (HELLO, {"board_id": "esp32-a1", "profile": "esp32", "agent_version": "0.1.0", "proto": 1,
             "caps": ["telemetry", "files"], "platform": "esp32"}),
    (HELLO_REQUEST, {}),
    (ENROLL_REQUEST, {"board_id": "esp32-a1", "profile": "esp32", "pubkey": KEY, "lookup": KEY[:8], "proof": KEY}),
    (ENROLL_RESPONSE, {"ok": True, "cert": b"\x30\x82\x01\x0a", "station_id": "st-1", "station_pubkey": KEY,
                       "proof": KEY}),
    (CHALLENGE, {"nonce": KEY}),
    (CHALLENGE_RESPONSE, {"nonce": KEY, "sig": SIG, "n": 1, "mac": KEY}),
    (HEARTBEAT, {"seq": 42, "uptime_s": 86400, "free_mem": 41234, "battery_mv": 3712,
                 "counters": {"frames_ok": 1000, "dropped_crc": 2, "dropped_oversize": 0, "dropped_malformed": 1},
                 "n": 17, "mac": KEY}),
    (HEARTBEAT_ACK, {"seq": 42, "time_s": 1767225600, "n": 18, "mac": KEY}),
    (TELEMETRY, {"values": {"temp_c": 21.5, "rh": 48, "door": "open"}, "ts": 1767225601}),
    (EVENT, {"name": "door_opened", "data": {"zone": 3}, "ts": 1767225602}),
    (COMMAND, {"id": 7, "cmd": "write_config", "args": {"config": {"interval_s": 30, "pins": [4, 5]}}}),
    (RESULT, {"id": 7, "ok": False, "error": "no such key", "value": None}),
    (FILE_BEGIN, {"xfer": 3, "path": "/apps/blink.py", "size": 5000, "sha256": KEY}),
    (FILE_CHUNK, {"xfer": 3, "off": 3840, "data": bytes(range(256)) * 2}),
    (FILE_CHUNK_ACK, {"xfer": 3, "have": 4352}),
    (FILE_END, {"xfer": 3}),
    (FILE_STATUS, {"xfer": 3, "have": 5000, "state": "done"}),
    (LOG, {"level": "warning", "msg": "battery low", "ts": 1767225603}),
    (ERROR, {"code": "bad_message", "msg": "heartbeat.seq: required field is missing", "ref": 9}),
    (CERT_UPDATE, {"cert": b"\x30\x82\x01\x0b", "n": 19, "mac": KEY}),
]

CBOR_VALUES: list[Any] = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
    -1, -24, -25, -256, -257, -(2**64),
    1.5, -0.0, 1e300, float("inf"), float("-inf"), 0.1,
    True, False, None,
    b"", b"\x00\xff", "", "firefly", "\u00e9t\u00e9 \U0001f41d",
    [], [1, [2, [3]]], {}, {"b": 1, "a": 2, 10: "x", -1: [b"y"]},
]

# Encodings another encoder (cbor2) produces and ours must read, and inputs ours must refuse.
FOREIGN_CBOR = [
    "f93e00", "f97c00", "fbc010000000000000", "f90001", "f97bff", "f98000", "f97e00",
    "fa47c35000", "fa7f800000", "1bffffffffffffffff", "3bffffffffffffffff", "1800", "a201020103",
    "9fff", "bf6161ff", "5f4101ff", "c249010000000000000000", "f7", "f820", "1c", "5b7fffffffffffffff",
    "9b0fffffffffffffff", "bb8000000000000000", "1a0001", "0000", "a2616101616102", "6261ff", "a1410001",
    "81" * 17 + "00", "81" * 16 + "00", "62c328", "ff", "",
]

# What people type for a code, including what must be refused the same way on both runtimes
# (the German sharp s upper-cases to "SS" on CPython only).
TYPED_CODES = ["K7Q2-9XJ4", " k7q2 9xj4 ", "oil2-3456", "ABCD-EFGU", "ABCDEFG", "ABCDEF\u00df", "\u00e9BCD-EFGH", "",
               "K" * 33]

COBS_INPUTS = [b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", b"\x11\x00\x00\x00",
               bytes(range(1, 255)), bytes(range(0, 255)), bytes(range(1, 256)) + b"\x00" + b"\x01" * 300]


def show(value: Any) -> str:
    """A representation that is identical on both runtimes (dicts sorted, floats as bits)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if value != value else "f" + struct.pack(">d", value).hex()
    if isinstance(value, bytes):
        return "h'" + value.hex() + "'"
    if isinstance(value, str):
        return "s'" + value.encode("utf-8").hex() + "'"
    if isinstance(value, list):
        return "[" + ",".join([show(item) for item in value]) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(sorted([show(k) + ":" + show(v) for k, v in value.items()])) + "}"
    return "?" + str(type(value))


def refusal(exc: Exception) -> str:
    return "error " + type(exc).__name__ + " " + str(getattr(exc, "offset", getattr(exc, "field", "")))


def cbor_lines() -> Iterator[str]:
    for value in CBOR_VALUES:
        encoded = cbor_encode(value)
        yield "cbor " + encoded.hex() + " " + show(cbor_decode(encoded))
    for text in FOREIGN_CBOR:
        try:
            yield "foreign " + text[:24] + " " + show(cbor_decode(bytes.fromhex(text)))
        except ProtocolError as exc:
            yield "foreign " + text[:24] + " " + refusal(exc)


def cobs_lines() -> Iterator[str]:
    for data in COBS_INPUTS:
        encoded = cobs_encode(data)
        yield "cobs " + encoded.hex() + " " + str(cobs_decode(encoded) == data)
    for text in ["", "00", "0511", "0311220033", "02110000"]:
        try:
            yield "cobs-decode " + text + " " + cobs_decode(bytes.fromhex(text)).hex()
        except ProtocolError as exc:
            yield "cobs-decode " + text + " " + refusal(exc)


def message_lines() -> Iterator[str]:
    bodies = []
    for msg_type, fields in SAMPLE_MESSAGES:
        body = encode_message(make(msg_type, **fields))
        bodies.append(body)
        yield "msg " + msg_type + " " + body.hex()
        yield "decoded " + show(decode_message(body))
        if "mac" in fields:
            yield "mac-covered " + mac_split(body)[0][-8:].hex()
    bad = [
        {"v": 2, "t": HELLO},
        {"v": 1, "t": "gossip"},
        {"v": 1, "t": HEARTBEAT, "seq": 1, "uptime_s": 2, "free_mem": 3},
        {"v": 1, "t": HEARTBEAT_ACK, "seq": True},
        {"v": 1, "t": COMMAND, "id": 1, "cmd": "format_disk"},
        {"v": 1, "t": CHALLENGE, "nonce": b"short"},
        {"v": 1, "t": FILE_END, "xfer": 1, "mac": KEY[:31]},
        [1, 2],
    ]
    for msg in bad:
        try:
            decode_message(cbor_encode(msg))
            yield "accepted " + show(msg)
        except ProtocolError as exc:
            yield "refused " + refusal(exc)
    yield from frame_lines(bodies)


def enroll_proof_lines() -> Iterator[str]:
    for typed in TYPED_CODES:
        yield "enroll-code " + repr(typed.encode()) + " " + str(normalize_code(typed))
    code = "K7Q29XJ4"
    key = code_key(code)
    yield "enroll-lookup " + code + " " + code_lookup(code).hex()
    yield "enroll-key " + code + " " + key.hex()
    yield "enroll-request-proof " + request_proof(key, "esp32-a1", "esp32", KEY).hex()
    yield "enroll-response-proof " + response_proof(key, "esp32-a1", KEY, b"\x30\x82\x01\x0a", "st-1", SIG[:32]).hex()


def frame_lines(bodies: list[bytes]) -> Iterator[str]:
    frames = [encode_frame(body) for body in bodies]
    corrupted = bytearray(frames[1])
    corrupted[5] ^= 0x40
    stream = (b"boot banner\r\n" + frames[0] + bytes(corrupted) + frames[2][:9] + frames[3]
              + b"\x00" + b"\x55" * (MAX_ENCODED_FRAME + 10) + frames[4] + b"\x00\x02\x01\x02\x00" + frames[5])
    decoder = FrameDecoder()
    received: list[bytes] = []
    step = 1
    pos = 0
    while pos < len(stream):  # uneven pieces, as a UART would deliver them
        received.extend(decoder.feed(stream[pos : pos + step]))
        pos += step
        step = step * 3 % 97 + 1
    for body in received:
        yield "frame " + body[:12].hex() + " " + str(len(body))
    counters = decoder.counters()
    yield "counters " + " ".join([k + "=" + str(counters[k]) for k in sorted(counters)])
    yield "pending " + str(decoder.pending)
    for frame in frames:
        yield "wire " + frame.hex()


def xorshift32(state: int) -> int:
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state


def fuzz_lines(rounds: int = 1500) -> Iterator[str]:
    """Mutated bodies and frames, from a PRNG both runtimes share: outcomes must match."""
    bodies = [encode_message(make(msg_type, **fields)) for msg_type, fields in SAMPLE_MESSAGES]
    state = 2463534242
    digest = hashlib.sha256()
    outcomes: dict[str, int] = {}
    decoder = FrameDecoder()
    for _ in range(rounds):
        state = xorshift32(state)
        data = bytearray(bodies[state % len(bodies)])
        for _ in range(1 + (state >> 8) % 4):
            state = xorshift32(state)
            data[state % len(data)] = (state >> 16) & 0xFF
        state = xorshift32(state)
        if state & 1:
            data = data[: state % (len(data) + 1)]
        try:
            outcome = "ok " + show(decode_message(bytes(data)))
        except ProtocolError as exc:
            outcome = refusal(exc)
        kind = outcome.split(" ")[0] + " " + outcome.split(" ")[1] if outcome.startswith("error") else "ok"
        outcomes[kind] = outcomes.get(kind, 0) + 1
        digest.update(outcome.encode("utf-8"))
        for body in decoder.feed(bytes(data[: len(data) // 2]) + encode_frame(bytes(data))):
            digest.update(body)
    yield "fuzz " + " ".join([k.replace(" ", ":") + "=" + str(outcomes[k]) for k in sorted(outcomes)])
    counters = decoder.counters()
    yield "fuzz-frames " + " ".join([k + "=" + str(counters[k]) for k in sorted(counters)])
    yield "fuzz-digest " + digest.digest().hex()


def main() -> None:
    for lines in (cbor_lines(), cobs_lines(), message_lines(), enroll_proof_lines(), fuzz_lines()):
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()
