"""X25519 against RFC 7748 and against OpenSSL (through `cryptography`)."""

from __future__ import annotations

import importlib

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.crypto import LowOrderPoint, generate_x25519, x25519_public_key
from edge_agent.crypto.errors import InvalidLength

# The package re-exports the function x25519, which shadows the submodule attribute.
X = importlib.import_module("edge_agent.crypto.x25519")

CROSS_CHECK = settings(max_examples=80, deadline=None)  # the first example builds the base table
P = 2**255 - 19

RFC7748_5_2 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]
ITERATED_1 = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
ITERATED_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

# u-coordinates whose multiples by a clamped scalar are all zero: 0, 1, the order-8
# points, and their non-canonical encodings (p-1 has order 2 but p-1 times 8k is 0 too).
LOW_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P - 1,
    P,
    P + 1,
]


def _theirs(scalar: bytes, u: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(u))


@pytest.mark.parametrize(("scalar", "u", "out"), RFC7748_5_2)
def test_rfc7748_section_5_2_vectors(scalar: str, u: str, out: str) -> None:
    assert X.x25519(bytes.fromhex(scalar), bytes.fromhex(u)).hex() == out


def test_rfc7748_iterated_once_and_a_thousand_times() -> None:
    k = u = X.BASE_POINT
    for i in range(1, 1001):
        k, u = X.x25519(k, u), k
        if i == 1:
            assert k.hex() == ITERATED_1
    assert k.hex() == ITERATED_1000


def test_rfc7748_section_6_1_diffie_hellman() -> None:
    alice, bob = bytes.fromhex(ALICE_PRIVATE), bytes.fromhex(BOB_PRIVATE)
    assert x25519_public_key(alice).hex() == ALICE_PUBLIC
    assert x25519_public_key(bob).hex() == BOB_PUBLIC
    assert X.x25519(alice, bytes.fromhex(BOB_PUBLIC)).hex() == SHARED
    assert X.x25519(bob, bytes.fromhex(ALICE_PUBLIC)).hex() == SHARED


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_agrees_with_openssl_on_any_input(scalar: bytes, u: bytes) -> None:
    try:
        expected = _theirs(scalar, u)
    except ValueError:  # OpenSSL refuses the all-zero output too
        with pytest.raises(LowOrderPoint):
            X.x25519(scalar, u)
        return
    assert X.x25519(scalar, u) == expected


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32))
def test_public_key_by_the_edwards_comb_matches_openssl_and_the_ladder(private: bytes) -> None:
    public = x25519_public_key(private)
    assert public == X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    assert public == X.x25519(private, X.BASE_POINT)


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32), st.sampled_from(LOW_ORDER_U), st.booleans())
def test_low_order_points_are_refused(scalar: bytes, u: int, top_bit: bool) -> None:
    encoded = (u | (top_bit << 255)).to_bytes(32, "little")  # the top bit is ignored
    with pytest.raises(LowOrderPoint, match="low-order"):
        X.x25519(scalar, encoded)


def test_generated_pairs_agree() -> None:
    (a, a_public), (b, b_public) = generate_x25519(), generate_x25519()
    assert a != b
    assert X.x25519(a, b_public) == X.x25519(b, a_public) == _theirs(a, b_public)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_lengths_are_refused(size: int) -> None:
    with pytest.raises(InvalidLength):
        X.x25519(bytes(size), X.BASE_POINT)
    with pytest.raises(InvalidLength):
        X.x25519(bytes(32), bytes(size))
    with pytest.raises(InvalidLength):
        x25519_public_key(bytes(size))


def test_non_bytes_are_refused() -> None:
    with pytest.raises(TypeError):
        X.x25519("0" * 32, X.BASE_POINT)  # type: ignore[arg-type]
    assert X.x25519(bytearray(32), bytearray(X.BASE_POINT)) == X.x25519(bytes(32), X.BASE_POINT)
