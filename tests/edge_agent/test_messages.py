"""Messages: every type round-trips, the table refuses what it should, the chunk size
fits a frame, and the MAC covers every byte before the tag."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import cbor2
import pytest

from edge_agent.protocol import (
    FILE_CHUNK,
    FILE_CHUNK_SIZE,
    HEARTBEAT,
    MAX_FRAME_BODY,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SCHEMA,
    FrameTooLarge,
    InvalidField,
    UnknownMessageType,
    UnsupportedVersion,
    cbor_encode,
    decode_message,
    encode_frame,
    encode_message,
    mac_split,
    make,
    validate,
)
from edge_agent.protocol.messages import FILE_CHUNK_OVERHEAD
from tests.edge_agent.vectors import KEY, SAMPLE_MESSAGES

SESSION_KEY = b"k" * 32
HEARTBEAT_FIELDS: dict[str, Any] = {"seq": 1, "uptime_s": 60, "free_mem": 40000, "counters": {"frames_ok": 1}}


def test_every_type_has_a_sample() -> None:
    assert sorted(msg_type for msg_type, _ in SAMPLE_MESSAGES) == sorted(MESSAGE_TYPES)
    assert len(MESSAGE_TYPES) == 20


@pytest.mark.parametrize(("msg_type", "fields"), SAMPLE_MESSAGES, ids=[t for t, _ in SAMPLE_MESSAGES])
def test_round_trip_and_cbor2_agrees(msg_type: str, fields: dict[str, Any]) -> None:
    msg = make(msg_type, **fields)
    body = encode_message(msg)
    assert decode_message(body) == msg
    assert cbor2.loads(body) == msg  # the station may read bodies with cbor2
    assert validate(cbor2.loads(cbor2.dumps(msg))) == msg


@pytest.mark.parametrize(("msg_type", "fields"), SAMPLE_MESSAGES, ids=[t for t, _ in SAMPLE_MESSAGES])
def test_each_required_field_is_required(msg_type: str, fields: dict[str, Any]) -> None:
    required, _ = SCHEMA[msg_type]
    for name in required:
        partial = {k: v for k, v in fields.items() if k != name}
        with pytest.raises(InvalidField) as caught:
            make(msg_type, **partial)
        assert (caught.value.msg_type, caught.value.field) == (msg_type, name)


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", -1), ("seq", True), ("seq", 2**64), ("seq", 1.0), ("uptime_s", "60"), ("counters", {"a": -1}),
     ("counters", [1]), ("battery_mv", None), ("n", "1"), ("mac", b"\x00" * 31), ("mac", "x" * 32)],
)
def test_field_kinds_are_enforced(field: str, value: Any) -> None:
    with pytest.raises(InvalidField) as caught:
        make(HEARTBEAT, **{**HEARTBEAT_FIELDS, field: value})
    assert caught.value.field == field


def test_version_type_and_shape_are_checked() -> None:
    with pytest.raises(UnsupportedVersion) as version:
        validate({"v": PROTOCOL_VERSION + 1, "t": HEARTBEAT, **HEARTBEAT_FIELDS})
    assert version.value.version == PROTOCOL_VERSION + 1
    with pytest.raises(UnsupportedVersion):
        validate({"v": True, "t": HEARTBEAT, **HEARTBEAT_FIELDS})
    with pytest.raises(UnknownMessageType):
        make("gossip")
    with pytest.raises(UnknownMessageType):
        validate({"v": 1, "t": ["heartbeat"]})
    with pytest.raises(InvalidField):
        decode_message(cbor_encode([1, 2]))


def test_unknown_fields_are_tolerated_for_forward_compatibility() -> None:
    assert make(HEARTBEAT, **HEARTBEAT_FIELDS, temp_c=21.5)["temp_c"] == 21.5


def test_file_chunk_size_fits_a_frame_in_the_worst_case() -> None:
    worst = make(FILE_CHUNK, xfer=2**64 - 1, off=2**64 - 1, data=bytes(FILE_CHUNK_SIZE), n=2**64 - 1, mac=KEY)
    body = encode_message(worst)
    assert len(body) - FILE_CHUNK_SIZE == FILE_CHUNK_OVERHEAD
    assert len(body) <= MAX_FRAME_BODY
    assert FILE_CHUNK_SIZE % 256 == 0
    assert encode_frame(body)


def test_an_oversize_message_is_refused_before_framing() -> None:
    with pytest.raises(FrameTooLarge):
        encode_message(make(FILE_CHUNK, xfer=1, off=0, data=bytes(MAX_FRAME_BODY)))


def test_mac_covers_every_byte_before_the_tag() -> None:
    # Sender: encode with a zero placeholder, MAC what precedes the tag, append the tag.
    placeholder = encode_message(make(HEARTBEAT, **HEARTBEAT_FIELDS, n=7, mac=bytes(32)))
    covered, _ = mac_split(placeholder)
    body = covered + hmac.new(SESSION_KEY, covered, hashlib.sha256).digest()
    # Receiver: check the tag before decoding anything.
    covered, tag = mac_split(body)
    assert hmac.compare_digest(hmac.new(SESSION_KEY, covered, hashlib.sha256).digest(), tag)
    assert decode_message(body)["mac"] == tag
    for index in range(len(body) - 32):
        tampered = bytearray(body)
        tampered[index] ^= 0x01
        try:
            tampered_covered, tampered_tag = mac_split(bytes(tampered))
        except InvalidField:
            continue
        assert not hmac.compare_digest(hmac.new(SESSION_KEY, tampered_covered, hashlib.sha256).digest(), tampered_tag)


def test_a_mac_that_is_not_the_last_entry_is_refused() -> None:
    msg = make(HEARTBEAT, **HEARTBEAT_FIELDS, mac=KEY)
    plain_order = cbor_encode(msg)  # plain deterministic order puts "mac" before "seq"
    with pytest.raises(InvalidField) as caught:
        decode_message(plain_order)
    assert caught.value.field == "mac"
    with pytest.raises(InvalidField):
        mac_split(encode_message(make(HEARTBEAT, **HEARTBEAT_FIELDS)))
