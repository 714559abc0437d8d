"""Hostile bytes against the parsers the station exposes to boards: random input, bit
flips, truncations and headers declaring huge lengths. Nothing but ProtocolError may
escape a decoder, FrameDecoder.feed raises nothing, and memory stays bounded."""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.protocol import (
    HEARTBEAT,
    MAX_ENCODED_FRAME,
    CborError,
    FrameDecoder,
    ProtocolError,
    cbor_decode,
    cbor_encode,
    decode_message,
    encode_frame,
    encode_message,
    make,
)
from tests.edge_agent.cbor_values import cbor_subset

HEARTBEAT_FIELDS = {"seq": 9, "uptime_s": 3600, "free_mem": 40000, "battery_mv": 3700, "counters": {"frames_ok": 12}}
BODY = encode_message(make(HEARTBEAT, **HEARTBEAT_FIELDS, n=3, mac=bytes(32)))
FRAME = encode_frame(BODY)
MEMORY_LIMIT = 256 * 1024  # peak bytes any single hostile input may cost the station's parser


def decode_or_refuse(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(data)


@settings(max_examples=500)
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_random_bytes_never_raise_from_feed(first: bytes, second: bytes) -> None:
    decoder = FrameDecoder()
    for body in decoder.feed(first) + decoder.feed(second):
        decode_or_refuse(body)
    assert decoder.pending <= MAX_ENCODED_FRAME


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_random_bytes_only_raise_protocol_errors_from_decoders(data: bytes) -> None:
    with contextlib.suppress(CborError):
        cbor_decode(data)
    decode_or_refuse(data)


@settings(max_examples=500)
@given(st.lists(st.integers(0, len(FRAME) * 8 - 1), min_size=1, max_size=4))
def test_bit_flips_are_dropped_and_the_next_frame_arrives(bits: list[int]) -> None:
    corrupted = bytearray(FRAME)
    for bit in bits:
        corrupted[bit // 8] ^= 1 << (bit % 8)
    decoder = FrameDecoder()
    received = decoder.feed(bytes(corrupted) + FRAME)
    assert received[-1] == BODY
    if len(bits) == 1 and 8 <= bits[0] < (len(FRAME) - 1) * 8:
        assert received == [BODY]  # one flipped bit inside a frame: CRC32 always catches it


@given(st.integers(0, len(FRAME) - 1), st.binary(max_size=40))
def test_truncated_frames_are_dropped(cut: int, noise: bytes) -> None:
    decoder = FrameDecoder()
    received = decoder.feed(FRAME[:cut] + FRAME)
    expected = [BODY, BODY] if cut == len(FRAME) - 1 else [BODY]  # only the trailing 0x00 missing
    assert received == expected
    assert decoder.feed(noise.replace(b"\x00", b"") + FRAME) == [BODY]


@given(st.binary(max_size=len(BODY)), st.integers(0, len(BODY)))
def test_mutated_bodies_only_raise_protocol_errors(replacement: bytes, start: int) -> None:
    decode_or_refuse(BODY[:start] + replacement + BODY[start + len(replacement) :])
    decode_or_refuse(BODY[:start])


@settings(max_examples=300)
@given(cbor_subset, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupted_valid_cbor_only_raises_cbor_errors(value: Any, edits: list[tuple[int, int]]) -> None:
    data = bytearray(cbor_encode(value))
    for position, byte in edits:
        data[position % len(data)] = byte
    with contextlib.suppress(CborError):
        cbor_decode(bytes(data))
    with contextlib.suppress(CborError):
        cbor_decode(bytes(data[: edits[0][0] % len(data)]))


HUGE = [2**60, 2**63, 2**64 - 1]
HEADS = [0x5B, 0x7B, 0x9B, 0xBB]  # byte string, text, array, map with an 8-byte length


@given(st.sampled_from(HEADS), st.sampled_from(HUGE), st.binary(max_size=50), st.integers(0, 6))
def test_huge_declared_lengths_are_refused_before_allocating(head: int, size: int, tail: bytes, nest: int) -> None:
    data = b"\x81" * nest + bytes([head]) + size.to_bytes(8, "big") + tail
    tracemalloc.start()
    try:
        with pytest.raises(CborError, match="declares"):
            cbor_decode(data)
        decoder = FrameDecoder()
        for body in decoder.feed(encode_frame(data)):
            decode_or_refuse(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT


def test_worst_inputs_stay_within_the_memory_limit() -> None:
    deep = b"\x81" * 100_000  # nesting bomb: refused at MAX_DEPTH
    wide = b"\x9a\x00\x00\x0f\xa0" + b"\x80" * 4000  # 4000 empty arrays: honest and small
    stream = b"\x00" + b"\x01" * 2_000_000  # 2 MB without a delimiter
    tracemalloc.start()
    try:
        with pytest.raises(CborError, match="nested"):
            cbor_decode(deep)
        assert len(cbor_decode(wide)) == 4000
        decoder = FrameDecoder()
        for offset in range(0, len(stream), 65536):
            assert decoder.feed(stream[offset : offset + 65536]) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.dropped_oversize == 1
    assert peak < 2 * MEMORY_LIMIT  # the 64 KiB slices themselves count here
