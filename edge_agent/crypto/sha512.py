"""SHA-512 (FIPS 180-4). Owns the hash only: `sha512()` and `new()` use the
runtime's hashlib when it has SHA-512 (CPython) and the pure `Sha512` otherwise
(MicroPython). Must stay runnable unchanged on MicroPython: no `__future__`, no
runtime `typing`, annotations that are never evaluated at module level."""

import hashlib
import struct

from edge_agent.crypto.errors import HashFinalized

try:
    import typing

    TYPE_CHECKING = typing.TYPE_CHECKING
except ImportError:  # MicroPython ships no typing module
    TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Protocol

    class HashObject(Protocol):
        """What callers may rely on from either backend."""

        def update(self, __data: bytes | bytearray | memoryview) -> None: ...

        def digest(self) -> bytes: ...


DIGEST_SIZE = 64
BLOCK_SIZE = 128
NATIVE_AVAILABLE = hasattr(hashlib, "sha512")

_MASK = 0xFFFFFFFFFFFFFFFF
_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)  # fmt: skip
_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)  # fmt: skip


def _compress(state: list[int], block: bytes) -> None:
    """One FIPS 180-4 compression of a 128-byte block. A 64-bit rotation is a shift
    of the word doubled to 128 bits (x | x << 64), masked once per sigma: on
    MicroPython every big-int operation allocates, so operation count is the cost."""
    mask = _MASK
    w = list(struct.unpack(">16Q", block))
    for t in range(16, 80):
        x = w[t - 15]
        x2 = x | x << 64
        y = w[t - 2]
        y2 = y | y << 64
        s0 = ((x2 >> 1) ^ (x2 >> 8)) & mask ^ (x >> 7)
        s1 = ((y2 >> 19) ^ (y2 >> 61)) & mask ^ (y >> 6)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & mask)
    a, b, c, d, e, f, g, h = state
    for k, wt in zip(_K, w):  # noqa: B905  MicroPython's zip() has no strict=
        e2 = e | e << 64
        t1 = h + (((e2 >> 14) ^ (e2 >> 18) ^ (e2 >> 41)) & mask) + (g ^ (e & (f ^ g))) + k + wt
        a2 = a | a << 64
        t2 = (((a2 >> 28) ^ (a2 >> 34) ^ (a2 >> 39)) & mask) + ((a & b) | (c & (a | b)))
        h = g
        g = f
        f = e
        e = (d + t1) & mask
        d = c
        c = b
        b = a
        a = (t1 + t2) & mask
    state[0] = (state[0] + a) & mask
    state[1] = (state[1] + b) & mask
    state[2] = (state[2] + c) & mask
    state[3] = (state[3] + d) & mask
    state[4] = (state[4] + e) & mask
    state[5] = (state[5] + f) & mask
    state[6] = (state[6] + g) & mask
    state[7] = (state[7] + h) & mask


class Sha512:
    """Pure-Python incremental SHA-512. Like MicroPython's hashlib, digest() ends
    the object: later update() raises HashFinalized, digest() repeats the result."""

    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._state = list(_IV)
        self._pending = b""
        self._length = 0
        self._final: bytes | None = None
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._final is not None:
            raise HashFinalized("sha512")
        data = bytes(data)
        self._length += len(data)
        pending = self._pending + data if self._pending else data
        end = len(pending) - len(pending) % BLOCK_SIZE
        for start in range(0, end, BLOCK_SIZE):
            _compress(self._state, pending[start : start + BLOCK_SIZE])
        self._pending = pending[end:]

    def digest(self) -> bytes:
        if self._final is None:
            bit_length = self._length * 8
            tail = self._pending + b"\x80"
            tail += bytes((BLOCK_SIZE - 16 - len(tail)) % BLOCK_SIZE)
            tail += struct.pack(">QQ", bit_length >> 64, bit_length & _MASK)
            for start in range(0, len(tail), BLOCK_SIZE):
                _compress(self._state, tail[start : start + BLOCK_SIZE])
            self._final = struct.pack(">8Q", *self._state)
            self._pending = b""
        return self._final

    def hexdigest(self) -> str:
        return self.digest().hex()


def sha512_pure(data: bytes | bytearray | memoryview = b"") -> bytes:
    """SHA-512 of `data` by the pure implementation, whatever the runtime."""
    return Sha512(data).digest()


def new(data: bytes | bytearray | memoryview = b"") -> "HashObject":
    """An incremental SHA-512 object: hashlib's where the runtime has one."""
    if NATIVE_AVAILABLE:
        return hashlib.sha512(data)
    return Sha512(data)


def sha512(data: bytes | bytearray | memoryview = b"") -> bytes:
    """SHA-512 of `data`: hashlib's where the runtime has it, the pure one otherwise."""
    if NATIVE_AVAILABLE:
        return hashlib.sha512(data).digest()
    return Sha512(data).digest()
