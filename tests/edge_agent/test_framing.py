"""Frames with real bytes: round trips over any chunking, corrupted, truncated and
oversize frames, resynchronisation, and a buffer that never grows past its limit."""

from __future__ import annotations

import binascii
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocol import (
    MAX_ENCODED_FRAME,
    MAX_FRAME_BODY,
    ChecksumMismatch,
    FrameDecoder,
    FrameTooLarge,
    FrameTooShort,
    cobs_encode,
    decode_frame,
    encode_frame,
)

bodies = st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=8)


def feed_in_pieces(decoder: FrameDecoder, stream: bytes, cuts: list[int]) -> list[bytes]:
    received: list[bytes] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        received += decoder.feed(stream[start:cut])
        start = max(start, cut)
    return received


def test_frame_layout() -> None:
    frame = encode_frame(b"hi")
    crc = struct.pack("<I", binascii.crc32(b"hi"))
    assert frame == b"\x00" + cobs_encode(b"hi" + crc) + b"\x00"
    assert decode_frame(frame[1:-1]) == b"hi"


@given(bodies, st.data())
def test_round_trip_over_random_chunking(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(body) for body in payloads)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    decoder = FrameDecoder()
    assert feed_in_pieces(decoder, stream, cuts) == payloads
    assert decoder.frames_ok == len(payloads)
    assert decoder.pending == 0


def test_byte_by_byte_and_the_largest_body() -> None:
    body = bytes(range(256)) * (MAX_FRAME_BODY // 256)
    frame = encode_frame(body)
    assert len(frame) <= MAX_ENCODED_FRAME + 2
    decoder = FrameDecoder()
    received = [out for byte in frame for out in decoder.feed(bytes([byte]))]
    assert received == [body]


def test_encode_refuses_an_oversize_body() -> None:
    with pytest.raises(FrameTooLarge) as caught:
        encode_frame(bytes(MAX_FRAME_BODY + 1))
    assert (caught.value.size, caught.value.limit) == (MAX_FRAME_BODY + 1, MAX_FRAME_BODY)


def test_garbage_before_the_first_delimiter_is_skipped_not_counted_as_a_drop() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"MicroPython v1.24 on esp32\r\n>>> " + encode_frame(b"ok")) == [b"ok"]
    assert decoder.counters() == {
        "frames_ok": 1, "dropped_crc": 0, "dropped_oversize": 0, "dropped_malformed": 0, "dropped_memory": 0,
        "skipped_bytes": 32,
    }


def test_corrupted_frame_is_dropped_counted_and_the_next_one_arrives() -> None:
    bad = bytearray(encode_frame(b"temperature=21.5"))
    bad[4] ^= 0x01
    decoder = FrameDecoder()
    assert decoder.feed(bytes(bad) + encode_frame(b"next")) == [b"next"]
    assert decoder.dropped_crc == 1
    assert isinstance(decoder.last_error, ChecksumMismatch)


def test_truncated_frame_is_dropped_at_the_next_delimiter() -> None:
    frame = encode_frame(b"a fairly long body " * 5)
    decoder = FrameDecoder()
    assert decoder.feed(frame[: len(frame) // 2] + encode_frame(b"after")) == [b"after"]
    assert decoder.dropped_malformed + decoder.dropped_crc == 1


def test_frame_too_short_for_a_crc_is_malformed() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x03ab\x00") == []
    assert decoder.dropped_malformed == 1
    assert isinstance(decoder.last_error, FrameTooShort)


def test_oversize_frame_is_dropped_while_it_streams_and_the_link_resyncs() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00") == []
    for _ in range(100):  # 400 KB without a delimiter: the buffer stays bounded
        assert decoder.feed(b"\x55" * 4000) == []
        assert decoder.pending <= MAX_ENCODED_FRAME
    assert decoder.dropped_oversize == 1
    assert decoder.feed(encode_frame(b"back")) == [b"back"]


def test_a_body_over_the_limit_with_a_valid_crc_is_dropped_as_oversize() -> None:
    body = bytes(MAX_FRAME_BODY + 1)  # zeros: COBS of it is short enough to buffer
    crc = struct.pack("<I", binascii.crc32(body))
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00" + cobs_encode(body + crc) + b"\x00") == []
    assert decoder.dropped_oversize == 1


@given(bodies, st.data())
def test_a_smaller_limit_is_honoured(payloads: list[bytes], data: st.DataObject) -> None:
    limit = data.draw(st.integers(1, 600))
    decoder = FrameDecoder(max_body=limit)
    received = decoder.feed(b"".join(encode_frame(body) for body in payloads))
    assert received == [body for body in payloads if len(body) <= limit]
    assert decoder.pending <= decoder.max_encoded


def test_reset_waits_for_the_next_delimiter() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"x")
    decoder.feed(frame[:-1])
    decoder.reset()
    assert decoder.feed(b"\x02" + frame) == [b"x"]
    assert decoder.skipped_bytes == len(frame) - 2 + 1  # the abandoned frame's bytes, then 0x02


def test_memoryview_input_and_non_bytes_are_tolerated() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(memoryview(encode_frame(b"mv"))) == [b"mv"]
    assert decoder.feed("not bytes") == []  # type: ignore[arg-type]
    assert decoder.feed(10**12) == []  # type: ignore[arg-type]  # not bytes(10**12)
