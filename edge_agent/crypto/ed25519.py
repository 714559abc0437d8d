"""Ed25519 signatures (RFC 8032 section 5.1) for board agents whose firmware has
no native Ed25519. Owns key derivation, signing and verification; never stores or
transmits keys (the enrollment code does). Runs unchanged on MicroPython and CPython.

Verification is cofactorless (S*B == R + k*A, compared as canonical encodings, as
ref10 and OpenSSL do), rejects S >= L, non-canonical or invalid point encodings and
small-order public keys, and never raises on malformed input."""

import os

from edge_agent.crypto import _edwards25519 as _ed
from edge_agent.crypto.errors import InvalidLength
from edge_agent.crypto.sha512 import new as _sha512

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_BYTES_TYPES = (bytes, bytearray)
_MESSAGE_TYPES = (bytes, bytearray, memoryview)


def _hash_int(*parts: bytes | bytearray | memoryview) -> int:
    """SHA-512 of the concatenated parts as a little-endian integer mod L."""
    h = _sha512(parts[0])
    for part in parts[1:]:
        h.update(part)
    return int.from_bytes(h.digest(), "little") % _ed.L


def _check_seed(seed: bytes | bytearray) -> bytes:
    if not isinstance(seed, _BYTES_TYPES):
        raise TypeError("seed must be bytes")
    if len(seed) != SEED_SIZE:
        raise InvalidLength("seed", len(seed), SEED_SIZE)
    return bytes(seed)


class SigningKey:
    """An expanded private key. Holding one saves the public-key derivation that
    sign() repeats on every call (about half of its cost); the public key is always
    derived from the seed, never accepted from the caller, so a mismatched pair
    cannot leak the secret scalar."""

    def __init__(self, seed: bytes | bytearray) -> None:
        seed = _check_seed(seed)
        h = _sha512(seed).digest()
        scalar = int.from_bytes(h[:32], "little")
        scalar &= (1 << 254) - 8
        scalar |= 1 << 254
        self._scalar = scalar
        self._prefix = h[32:]
        self.public_key = _ed.encode(_ed.base_mult(scalar))

    def sign(self, message: bytes | bytearray | memoryview) -> bytes:
        """RFC 8032 5.1.6: deterministic 64-byte signature R || S."""
        r = _hash_int(self._prefix, message)
        encoded_r = _ed.encode(_ed.base_mult(r))
        k = _hash_int(encoded_r, self.public_key, message)
        s = (r + k * self._scalar) % _ed.L
        return encoded_r + s.to_bytes(32, "little")


def keypair_from_seed(seed: bytes | bytearray) -> tuple[bytes, bytes]:
    """(seed, public key) for a 32-byte seed; the seed is the private key."""
    return _check_seed(seed), SigningKey(seed).public_key


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh key pair from the runtime's OS random source."""
    return keypair_from_seed(os.urandom(SEED_SIZE))


def sign(seed: bytes | bytearray, message: bytes | bytearray | memoryview) -> bytes:
    """Sign `message` with the key whose 32-byte seed is `seed`."""
    return SigningKey(seed).sign(message)


def _decode_public_key(public_key: bytes | bytearray) -> tuple[int, int, int, int] | None:
    point = _ed.decode(bytes(public_key))
    if point is None or _ed.is_small_order(point):
        return None
    return point


def is_valid_public_key(public_key: object) -> bool:
    """A canonical encoding of a curve point outside the small-order subgroup. The
    station should check this at enrollment: OpenSSL (and so `cryptography`) accepts
    small-order keys, for which R = identity, S = 0 verifies on every message."""
    if not isinstance(public_key, _BYTES_TYPES) or len(public_key) != PUBLIC_KEY_SIZE:
        return False
    return _decode_public_key(public_key) is not None


def verify(
    public_key: bytes | bytearray, message: bytes | bytearray | memoryview, signature: bytes | bytearray
) -> bool:
    """True only for a valid signature of `message` by `public_key`."""
    if not (
        isinstance(public_key, _BYTES_TYPES)
        and isinstance(signature, _BYTES_TYPES)
        and isinstance(message, _MESSAGE_TYPES)
        and len(public_key) == PUBLIC_KEY_SIZE
        and len(signature) == SIGNATURE_SIZE
    ):
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _ed.L:
        return False
    point_a = _decode_public_key(public_key)
    if point_a is None:
        return False
    encoded_r = bytes(signature[:32])
    k = _hash_int(encoded_r, bytes(public_key), bytes(message))
    check = _ed.add_cached(_ed.base_mult(s), _ed.to_cached(_ed.mult(k, _ed.negate(point_a))))
    return _ed.encode(check) == encoded_r
