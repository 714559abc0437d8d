from __future__ import annotations

import importlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.crypto import _edwards25519 as ed
from edge_agent.crypto.ed25519 import (
    SigningKey,
    generate_keypair,
    is_valid_public_key,
    keypair_from_seed,
    sign,
    verify,
)
from edge_agent.crypto.errors import InvalidLength
from tests.edge_agent_crypto.vectors import RFC8032_ED25519

# The package re-exports the function sha512, which shadows the submodule attribute.
sha512_module = importlib.import_module("edge_agent.crypto.sha512")

CROSS_CHECK = settings(max_examples=60, deadline=None)  # the first example builds the base table


def _theirs_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


RFC8032_IDS = ["1", "2", "3", "1024", "abc"]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_ED25519, ids=RFC8032_IDS)
@pytest.mark.parametrize("native_sha512", [True, False], ids=["hashlib", "pure-sha512"])
def test_rfc8032_vectors(
    seed: str, public: str, message: str, signature: str, native_sha512: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sha512_module, "NATIVE_AVAILABLE", native_sha512)
    seed_b, message_b = bytes.fromhex(seed), bytes.fromhex(message)
    assert keypair_from_seed(seed_b) == (seed_b, bytes.fromhex(public))
    assert sign(seed_b, message_b).hex() == signature
    assert verify(bytes.fromhex(public), message_b, bytes.fromhex(signature))
    assert not verify(bytes.fromhex(public), message_b + b"\x00", bytes.fromhex(signature))


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300))
def test_signatures_match_cryptography_both_ways(seed: bytes, message: bytes) -> None:
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    public = theirs.public_key().public_bytes_raw()
    ours = sign(seed, message)
    assert keypair_from_seed(seed)[1] == public
    assert ours == theirs.sign(message)  # Ed25519 is deterministic
    assert _theirs_verify(public, message, ours)
    assert verify(public, message, theirs.sign(message))


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=100), st.data())
def test_tampering_fails_in_both(seed: bytes, message: bytes, data: st.DataObject) -> None:
    public = keypair_from_seed(seed)[1]
    signature = sign(seed, message)
    bit = data.draw(st.integers(0, 511), label="signature bit")
    bad_signature = bytearray(signature)
    bad_signature[bit // 8] ^= 1 << (bit % 8)
    assert not verify(public, message, bytes(bad_signature))
    assert not _theirs_verify(public, message, bytes(bad_signature))
    bad_message = data.draw(st.binary(max_size=100).filter(lambda m: m != message), label="other message")
    assert not verify(public, bad_message, signature)
    assert not _theirs_verify(public, bad_message, signature)
    other_public = keypair_from_seed(bytes(b ^ 1 for b in seed))[1]
    assert not verify(other_public, message, signature)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=70), st.binary(max_size=20))
def test_verify_never_raises_on_random_input(public: bytes, signature: bytes, message: bytes) -> None:
    assert verify(public, message, signature) is False


@pytest.mark.parametrize("junk", [None, "text", 7, [1, 2], b"", bytes(31), bytes(33)])
def test_verify_rejects_wrong_types_and_lengths(junk: object) -> None:
    seed, public = keypair_from_seed(bytes(32))
    signature = sign(seed, b"m")
    assert not verify(junk, b"m", signature)  # type: ignore[arg-type]
    assert not verify(public, junk, signature)  # type: ignore[arg-type]
    assert not verify(public, b"m", junk)  # type: ignore[arg-type]
    assert verify(bytearray(public), memoryview(b"m"), bytearray(signature))
    assert sign(bytearray(seed), bytearray(b"m")) == signature


def test_rejects_malleated_s_plus_l() -> None:
    seed, public = keypair_from_seed(bytes(range(32)))
    signature = sign(seed, b"challenge")
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + ed.L).to_bytes(32, "little")
    assert not verify(public, b"challenge", malleated)
    assert not _theirs_verify(public, b"challenge", malleated)


def test_rejects_non_canonical_r() -> None:
    # R = y + p for a small y is a non-canonical alias; compare-by-encoding refuses it.
    seed, public = keypair_from_seed(bytes(range(32)))
    signature = sign(seed, b"m")
    for y in range(19):
        forged = (y + ed.P).to_bytes(32, "little") + signature[32:]
        assert not verify(public, b"m", forged)


def test_decode_rejects_bad_encodings() -> None:
    for y in range(19):  # y + p < 2**255: the only non-canonical y encodings
        assert ed.decode((y + ed.P).to_bytes(32, "little")) is None
    assert ed.decode((1 | 1 << 255).to_bytes(32, "little")) is None  # x = 0 with the sign bit set
    assert ed.decode((2).to_bytes(32, "little")) is None  # y = 2 has no x on the curve
    assert ed.decode(bytes(31)) is None
    assert ed.decode(ed.encode(ed.BASE)) == ed.BASE


def test_rejects_small_order_public_key_forgery() -> None:
    # With A = identity and R = identity, S = 0 satisfies S*B = R + k*A for every message;
    # OpenSSL accepts it, which is why enrollment must call is_valid_public_key.
    identity = (1).to_bytes(32, "little")
    assert _theirs_verify(identity, b"any message", identity + bytes(32))
    assert not verify(identity, b"any message", identity + bytes(32))


def test_is_valid_public_key() -> None:
    assert is_valid_public_key(keypair_from_seed(bytes(32))[1])
    order_four = ed.decode(bytes(32))  # y = 0: x = sqrt(-1), a point of order 4
    assert order_four is not None and ed.is_small_order(order_four)
    for bad in [(1).to_bytes(32, "little"), bytes(32), (ed.P + 3).to_bytes(32, "little"), bytes(31), "key", None]:
        assert not is_valid_public_key(bad)


@CROSS_CHECK
@given(st.binary(min_size=32, max_size=32))
def test_every_real_public_key_is_valid(seed: bytes) -> None:
    assert is_valid_public_key(keypair_from_seed(seed)[1])


@given(st.integers(0, ed.L - 1))
@settings(max_examples=50, deadline=None)
def test_base_mult_agrees_with_variable_base(n: int) -> None:
    assert ed.encode(ed.base_mult(n)) == ed.encode(ed.mult(n, ed.BASE))


def test_curve_constants() -> None:
    assert -121665 * pow(121666, ed.P - 2, ed.P) % ed.P == ed.D
    assert ed.SQRT_M1 * ed.SQRT_M1 % ed.P == ed.P - 1
    x, y = ed.BASE[0], ed.BASE[1]
    assert (-x * x + y * y - 1 - ed.D * x * x * y * y) % ed.P == 0
    assert ed.encode(ed.mult(ed.L, ed.BASE)) == ed.encode(ed.IDENTITY)


def test_signing_key_reuses_expansion_and_generate_keypair_is_fresh() -> None:
    seed, public = generate_keypair()
    key = SigningKey(seed)
    assert key.public_key == public == Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert key.sign(b"nonce") == sign(seed, b"nonce")
    assert generate_keypair()[0] != seed


@pytest.mark.parametrize("bad_seed", [bytes(31), bytes(33), b""])
def test_wrong_seed_length_is_reported(bad_seed: bytes) -> None:
    with pytest.raises(InvalidLength) as info:
        sign(bad_seed, b"m")
    assert (info.value.what, info.value.size, info.value.expected) == ("seed", len(bad_seed), 32)
