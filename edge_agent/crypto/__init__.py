"""Cryptographic primitives for board agents: SHA-512, Ed25519, X25519 and HMAC-SHA256 in
pure Python that runs unchanged on MicroPython and CPython. Owns no keys, files or
protocol state; enrollment and the session layer build on these functions."""

from edge_agent.crypto.ed25519 import (
    PUBLIC_KEY_SIZE,
    SEED_SIZE,
    SIGNATURE_SIZE,
    SigningKey,
    generate_keypair,
    is_valid_public_key,
    keypair_from_seed,
    sign,
    verify,
)
from edge_agent.crypto.errors import CryptoError, HashFinalized, InvalidLength
from edge_agent.crypto.hmac_sha256 import HmacSha256, compare_digest, hmac_sha256
from edge_agent.crypto.sha512 import Sha512, sha512, sha512_pure
from edge_agent.crypto.x25519 import LowOrderPoint, x25519
from edge_agent.crypto.x25519 import generate as generate_x25519
from edge_agent.crypto.x25519 import public_from_private as x25519_public_key

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "CryptoError",
    "HashFinalized",
    "HmacSha256",
    "InvalidLength",
    "LowOrderPoint",
    "Sha512",
    "SigningKey",
    "compare_digest",
    "generate_keypair",
    "generate_x25519",
    "hmac_sha256",
    "is_valid_public_key",
    "keypair_from_seed",
    "sha512",
    "sha512_pure",
    "sign",
    "verify",
    "x25519",
    "x25519_public_key",
]
