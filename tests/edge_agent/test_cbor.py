"""Our CBOR codec against cbor2 in both directions, and its refusals."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocol import MAX_DEPTH, CborEncodeError, CborError, cbor_decode, cbor_encode, cbor_encode_map
from tests.edge_agent.cbor_values import cbor_subset, float_free_text_keyed, same


@given(cbor_subset)
def test_cbor2_reads_what_we_write(value: Any) -> None:
    assert same(cbor2.loads(cbor_encode(value)), value)


@given(cbor_subset)
def test_we_read_what_cbor2_writes(value: Any) -> None:
    assert same(cbor_decode(cbor2.dumps(value)), value)


@given(cbor_subset)
def test_we_read_cbor2_canonical_shortest_floats(value: Any) -> None:
    assert same(cbor_decode(cbor2.dumps(value, canonical=True)), value)


@given(st.one_of(st.floats(width=16), st.floats(width=32)))
def test_half_and_single_floats_from_cbor2(value: float) -> None:
    encoded = cbor2.dumps(value, canonical=True)
    assert len(encoded) <= 5  # cbor2 really chose float16 or float32
    assert same(cbor_decode(encoded), value)


@given(float_free_text_keyed)
def test_our_encoding_is_cbor2_canonical_byte_for_byte(value: Any) -> None:
    # With text keys only, RFC 8949 bytewise key order equals cbor2's length-first order.
    assert cbor_encode(value) == cbor2.dumps(value, canonical=True)


@given(cbor_subset)
def test_round_trip(value: Any) -> None:
    assert same(cbor_decode(cbor_encode(value)), value)


def test_floats_are_written_as_float64() -> None:
    assert cbor_encode(1.5) == bytes.fromhex("fb3ff8000000000000")
    assert math.isnan(cbor_decode(cbor_encode(math.nan)))


def test_map_order_is_deterministic_whatever_the_insertion_order() -> None:
    assert cbor_encode({"b": 1, "a": 2, 10: 3}) == cbor_encode({10: 3, "a": 2, "b": 1})
    assert cbor_encode({"b": 1, "a": 2}) == bytes.fromhex("a2616102616201")


def test_encode_map_puts_the_named_key_last() -> None:
    encoded = cbor_encode_map({"mac": b"\x01", "a": 1, "zz": 2}, "mac")
    assert encoded.endswith(bytes.fromhex("636d61634101"))
    assert cbor2.loads(encoded) == {"a": 1, "zz": 2, "mac": b"\x01"}


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (2**64, "int"),
        (-(2**64) - 1, "int"),
        ({1.5: 1}, "map key"),
        ({True: 1}, "map key"),
        ({(1,): 1}, "map key"),
        ({1, 2}, "set"),
        ("\ud800", "str"),
        (object(), "object"),
    ],
)
def test_values_outside_the_subset_are_refused(value: Any, what: str) -> None:
    with pytest.raises(CborEncodeError) as caught:
        cbor_encode(value)
    assert caught.value.what == what


def test_encoder_refuses_deep_nesting_and_cycles() -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(CborEncodeError):
        cbor_encode(deep)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(CborEncodeError):
        cbor_encode(cycle)


@pytest.mark.parametrize(
    ("hex_input", "offset", "reason"),
    [
        ("9fff", 0, "indefinite"),
        ("5f4101ff", 0, "indefinite"),
        ("bf6161ff", 0, "indefinite"),
        ("ff", 0, "break"),
        ("c249010000000000000000", 0, "tags"),
        ("f7", 0, "undefined"),
        ("f820", 0, "simple value"),
        ("1c", 0, "reserved"),
        ("1a0001", 0, "truncated"),
        ("", 0, "truncated"),
        ("0000", 1, "trailing"),
        ("a2616101616102", 4, "duplicate"),
        ("a1410001", 1, "map key"),
        ("a18000", 1, "map key"),
        ("a2616143010203", 7, "map key was expected"),
        ("6361ff", 0, "declares 3 bytes, 2 remain"),
        ("62c328", 0, "UTF-8"),
        ("5b7fffffffffffffff", 0, "declares"),
        ("9b7fffffffffffffff", 0, "declares"),
        ("bb7fffffffffffffff", 0, "declares"),
        ("81" * (MAX_DEPTH + 1) + "00", MAX_DEPTH, "nested"),
    ],
)
def test_decoder_refusals_name_the_offset_and_reason(hex_input: str, offset: int, reason: str) -> None:
    with pytest.raises(CborError) as caught:
        cbor_decode(bytes.fromhex(hex_input))
    assert caught.value.offset == offset
    assert reason in caught.value.reason


def test_item_budget_is_checked_before_allocating() -> None:
    with pytest.raises(CborError, match="item budget"):
        cbor_decode(bytes.fromhex("9903e8") + bytes(1000), max_items=10)
    assert cbor_decode(bytes.fromhex("83010203"), max_items=4) == [1, 2, 3]


def test_non_bytes_input_is_refused_without_allocating() -> None:
    with pytest.raises(CborError, match="must be bytes"):
        cbor_decode(10**12)  # type: ignore[arg-type]
    assert cbor_decode(memoryview(b"\x01")) == 1


def test_64_bit_extremes() -> None:
    assert cbor_decode(bytes.fromhex("1bffffffffffffffff")) == 2**64 - 1
    assert cbor_decode(bytes.fromhex("3bffffffffffffffff")) == -(2**64)
    with pytest.raises(CborError, match="tags"):  # bignums are tag 2/3: refused
        cbor_decode(cbor2.dumps(2**64))
