from __future__ import annotations

import hashlib
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.crypto.errors import HashFinalized
from edge_agent.crypto.sha512 import Sha512, new, sha512, sha512_pure
from tests.edge_agent_crypto.vectors import FIPS180_SHA512

# The package re-exports the function sha512, which shadows the submodule attribute.
sha512_module = importlib.import_module("edge_agent.crypto.sha512")


@pytest.mark.parametrize(("message", "expected"), FIPS180_SHA512, ids=["abc", "empty", "448b", "896b", "million-a"])
def test_fips_vectors_pure_and_dispatching(message: bytes, expected: str) -> None:
    assert sha512_pure(message).hex() == expected
    assert sha512(message).hex() == expected


@settings(max_examples=300)
@given(st.binary(max_size=700))
def test_pure_matches_hashlib(data: bytes) -> None:
    assert sha512_pure(data) == hashlib.sha512(data).digest()


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_incremental_matches_one_shot(chunks: list[bytes]) -> None:
    h = Sha512()
    for chunk in chunks:
        h.update(chunk)
    assert h.digest() == hashlib.sha512(b"".join(chunks)).digest()
    assert h.hexdigest() == hashlib.sha512(b"".join(chunks)).hexdigest()


@pytest.mark.parametrize("length", [111, 112, 127, 128, 129, 239, 240, 256])
def test_padding_boundaries(length: int) -> None:
    data = bytes(range(256))[:length]
    assert sha512_pure(data) == hashlib.sha512(data).digest()


def test_digest_finalizes_like_micropython() -> None:
    h = Sha512(b"abc")
    first = h.digest()
    assert h.digest() == first
    with pytest.raises(HashFinalized):
        h.update(b"more")


def test_dispatch_falls_back_to_pure_without_native(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sha512_module.NATIVE_AVAILABLE  # CPython has hashlib.sha512
    monkeypatch.setattr(sha512_module, "NATIVE_AVAILABLE", False)
    assert isinstance(new(b"abc"), Sha512)
    assert sha512(b"abc") == hashlib.sha512(b"abc").digest()
