"""COBS with real bytes: the paper's examples, round trips and malformed input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocol import CobsError, cobs_decode, cobs_encode
from edge_agent.protocol.cobs import max_encoded_size


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255)) + b"\x01"),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_known_encodings(data: bytes, encoded: bytes) -> None:
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


@given(st.binary(max_size=2000))
def test_round_trip_has_no_zero_and_bounded_overhead(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= max_encoded_size(len(data))
    assert cobs_decode(encoded) == data


@given(st.lists(st.sampled_from([b"\x00", b"\x01", b"\xff" * 300, b"ab"]), max_size=20).map(b"".join))
def test_round_trip_around_block_boundaries(data: bytes) -> None:
    assert cobs_decode(cobs_encode(data)) == data


@pytest.mark.parametrize(
    ("encoded", "offset"),
    [(b"", 0), (b"\x00", 0), (b"\x05\x11", 0), (b"\x03\x11\x22\x00\x33", 3), (b"\x03\x11\x00", 2)],
)
def test_malformed_input_raises_cobs_error_with_offset(encoded: bytes, offset: int) -> None:
    with pytest.raises(CobsError) as caught:
        cobs_decode(encoded)
    assert caught.value.offset == offset


@given(st.binary(max_size=600))
def test_decode_of_arbitrary_bytes_raises_only_cobs_error(data: bytes) -> None:
    with contextlib.suppress(CobsError):
        cobs_decode(data)
