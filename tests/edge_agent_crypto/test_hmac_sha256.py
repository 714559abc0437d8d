from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.crypto.errors import HashFinalized
from edge_agent.crypto.hmac_sha256 import HmacSha256, compare_digest, hmac_sha256
from tests.edge_agent_crypto.vectors import RFC4231_HMAC_SHA256


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231_HMAC_SHA256)
def test_rfc4231_vectors(key: bytes, data: bytes, expected: str) -> None:
    assert hmac_sha256(key, data).hex().startswith(expected)


@given(st.binary(max_size=200), st.binary(max_size=500))
def test_matches_stdlib_hmac(key: bytes, data: bytes) -> None:
    assert hmac_sha256(key, data) == hmac.digest(key, data, "sha256")


@given(st.binary(max_size=100), st.lists(st.binary(max_size=100), max_size=6))
def test_incremental_matches_one_shot(key: bytes, chunks: list[bytes]) -> None:
    mac = HmacSha256(key)
    for chunk in chunks:
        mac.update(chunk)
    assert mac.digest() == hmac.digest(key, b"".join(chunks), "sha256")
    assert mac.hexdigest() == hmac.new(key, b"".join(chunks), "sha256").hexdigest()


def test_digest_finalizes() -> None:
    mac = HmacSha256(b"k", b"frame")
    first = mac.digest()
    assert mac.digest() == first
    with pytest.raises(HashFinalized):
        mac.update(b"spliced")


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_compare_digest_agrees_with_stdlib(a: bytes, b: bytes) -> None:
    assert compare_digest(a, b) is hmac.compare_digest(a, b)
    assert compare_digest(a, a) and compare_digest(bytearray(a), a)


@given(st.binary(min_size=1, max_size=64), st.data())
def test_compare_digest_detects_any_single_bit_flip(a: bytes, data: st.DataObject) -> None:
    bit = data.draw(st.integers(0, len(a) * 8 - 1))
    flipped = bytearray(a)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not compare_digest(a, bytes(flipped))


def test_compare_digest_rejects_str() -> None:
    with pytest.raises(TypeError):
        compare_digest("abc", b"abc")  # type: ignore[arg-type]
