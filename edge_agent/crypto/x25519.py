"""X25519 Diffie-Hellman (RFC 7748) for the ephemeral key exchange of board sessions.
Owns scalar clamping, the Montgomery ladder and the all-zero (low-order) check; never
stores keys or decides what the shared secret is used for (edge_agent/session.py does).
Pure Python that runs unchanged on MicroPython and CPython.

Public keys of our own scalars are computed on edwards25519 with the fixed-base comb of
_edwards25519 (u = (1 + y) / (1 - y) maps it onto curve25519), about four times faster
than the ladder; any other u goes through the ladder. Not constant time: Python big
ints are not, but the ladder runs the same 255 steps with an arithmetic (branch-free)
swap whatever the scalar bits are."""

import os

from edge_agent.crypto import _edwards25519 as _ed
from edge_agent.crypto.errors import CryptoError, InvalidLength

KEY_SIZE = 32
BASE_POINT = (9).to_bytes(32, "little")
_P = _ed.P
_A24 = 121665  # (486662 - 2) / 4, RFC 7748 section 5
_U_MASK = (1 << 255) - 1
_BYTES_TYPES = (bytes, bytearray)


class LowOrderPoint(CryptoError):
    """The peer's public key is a point of small order (or otherwise forces the shared
    secret to zero): it contributes nothing secret, so the exchange must be refused."""

    def __init__(self) -> None:
        super().__init__("X25519 shared secret is all zeros: the peer sent a low-order public key")


def _check(what: str, value: bytes | bytearray) -> bytes:
    if not isinstance(value, _BYTES_TYPES):
        raise TypeError(what + " must be bytes")
    if len(value) != KEY_SIZE:
        raise InvalidLength(what, len(value), KEY_SIZE)
    return bytes(value)


def _clamp(scalar: bytes) -> int:
    k = int.from_bytes(scalar, "little")
    k &= (1 << 254) - 8
    return k | 1 << 254


def _ladder(k: int, u: int) -> int:
    """RFC 7748 section 5 ladder: u-coordinate of k * (point with u-coordinate u)."""
    x2, z2, x3, z3 = 1, 0, u, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        # Branch-free conditional swap: dx is 0 or the difference.
        dx = swap * (x2 - x3)
        dz = swap * (z2 - z3)
        x2, x3, z2, z3 = x2 - dx, x3 + dx, z2 - dz, z3 + dz
        swap = bit
        a = x2 + z2
        aa = a * a % _P
        b = x2 - z2
        bb = b * b % _P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % _P
        cb = c * b % _P
        s = da + cb
        x3 = s * s % _P
        s = da - cb
        z3 = u * (s * s % _P) % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    dx = swap * (x2 - x3)
    dz = swap * (z2 - z3)
    x2, z2 = x2 - dx, z2 - dz
    return x2 * pow(z2, _P - 2, _P) % _P


def x25519(scalar: bytes | bytearray, u: bytes | bytearray) -> bytes:
    """scalar * u (RFC 7748 section 5): 32-byte little-endian result. The top bit of u is
    ignored and non-canonical u (>= p) is reduced, as the RFC requires. Raises
    LowOrderPoint instead of returning the all-zero output."""
    k = _clamp(_check("X25519 scalar", scalar))
    u_int = (int.from_bytes(_check("X25519 u-coordinate", u), "little") & _U_MASK) % _P
    out = _ladder(k, u_int)
    if out == 0:
        raise LowOrderPoint()
    return out.to_bytes(KEY_SIZE, "little")


def public_from_private(private: bytes | bytearray) -> bytes:
    """The public key of `private`: X25519(private, 9), through the Edwards comb."""
    k = _clamp(_check("X25519 private key", private))
    _x, y, z, _t = _ed.base_mult(k)
    # The birational map u = (1 + y) / (1 - y) = (Z + Y) / (Z - Y); Z != Y because a
    # clamped scalar is never a multiple of the base point's order.
    u = (z + y) * pow((z - y) % _P, _P - 2, _P) % _P
    return u.to_bytes(KEY_SIZE, "little")


def generate() -> tuple[bytes, bytes]:
    """A fresh (private, public) pair from the runtime's OS random source."""
    private = os.urandom(KEY_SIZE)
    return private, public_from_private(private)
