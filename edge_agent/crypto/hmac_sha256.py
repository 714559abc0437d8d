"""HMAC-SHA256 (RFC 2104) for the session MAC on board frames, built on hashlib's
SHA-256, which both CPython and MicroPython provide. Owns the MAC and a comparison
without early exit; never chooses keys or frame layouts."""

import hashlib

from edge_agent.crypto.errors import HashFinalized

DIGEST_SIZE = 32
BLOCK_SIZE = 64


def _xor_pad(key: bytes, pad: int) -> bytes:
    return bytes(b ^ pad for b in key)


class HmacSha256:
    """Incremental HMAC-SHA256. digest() ends the object (MicroPython hashes cannot
    be copied or continued): later update() raises HashFinalized."""

    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    def __init__(self, key: bytes | bytearray | memoryview, message: bytes | bytearray | memoryview = b"") -> None:
        key = bytes(key)
        if len(key) > BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        key += bytes(BLOCK_SIZE - len(key))
        self._inner = hashlib.sha256(_xor_pad(key, 0x36))
        self._outer_key = _xor_pad(key, 0x5C)
        self._final: bytes | None = None
        if message:
            self.update(message)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._final is not None:
            raise HashFinalized("hmac-sha256")
        self._inner.update(data)

    def digest(self) -> bytes:
        if self._final is None:
            outer = hashlib.sha256(self._outer_key)
            outer.update(self._inner.digest())
            self._final = outer.digest()
        return self._final

    def hexdigest(self) -> str:
        return self.digest().hex()


def hmac_sha256(key: bytes | bytearray | memoryview, message: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte HMAC-SHA256 of `message` under `key`."""
    return HmacSha256(key, message).digest()


def compare_digest(a: bytes | bytearray, b: bytes | bytearray) -> bool:
    """a == b, looking at every byte whatever differs first, so the time depends only
    on the lengths (which are public: MACs have a fixed size)."""
    if not (isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray))):
        raise TypeError("compare_digest needs bytes")
    result = len(a) ^ len(b)
    if len(a) != len(b):
        b = a  # still walk a whole buffer; result is already non-zero
    for i in range(len(a)):
        result |= a[i] ^ b[i]
    return result == 0
