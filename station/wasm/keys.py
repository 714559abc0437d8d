"""Trusted app-signing keys: the Ed25519 public keys in table `app_keys` whose signatures this
station accepts, and the parsing of a key given by an operator (raw 32 bytes, hex, PEM, OpenSSH).

Owns the table and the key formats; it never verifies a bundle (bundle.py does, with these keys)
and refuses anything that is not an Ed25519 public key, a private key above all."""

from __future__ import annotations

import builtins
import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station.store.database import Database
from station.wasm.errors import InvalidKey, KeyNotFound

RAW_KEY_BYTES = 32
KEY_ID_HEX_CHARS = 16  # 64 bits: unique among the handful of keys a station trusts, short enough to read out
MAX_KEY_NAME_CHARS = 64
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    name: str
    public_key: bytes  # raw 32 bytes
    added_by: str
    added_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TrustedKey:
        return cls(key_id=row["key_id"], name=row["name"], public_key=bytes(row["public_key"]),
                   added_by=row["added_by"], added_at=row["added_at"])

    def verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the key as hex."""
        return {"key_id": self.key_id, "name": self.name, "public_key": self.public_key.hex(),
                "added_by": self.added_by, "added_at": self.added_at}


def key_id(raw: bytes) -> str:
    """The id of a raw 32-byte Ed25519 public key: the first 16 hex characters of its sha256."""
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_CHARS]


def parse_public_key(value: bytes | str) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as raw bytes, 64 hex characters, PEM
    ("BEGIN PUBLIC KEY"), DER or OpenSSH ("ssh-ed25519 AAAA..."). InvalidKey for anything else."""
    if isinstance(value, bytes) and len(value) == RAW_KEY_BYTES:
        return value
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    stripped = text.strip()
    if _HEX_KEY.match(stripped):
        return bytes.fromhex(stripped)
    if "PRIVATE KEY" in stripped:
        raise InvalidKey("this is a PRIVATE key: give its public half (keep the private key with the signer)")
    if stripped.startswith("-----BEGIN"):
        return _raw(_load(serialization.load_pem_public_key, stripped.encode()))
    if stripped.startswith("ssh-"):
        return _raw(_load(serialization.load_ssh_public_key, stripped.encode()))
    if isinstance(value, bytes):
        if _is_der_private_key(value):
            raise InvalidKey("this is a PRIVATE key: give its public half (keep the private key with the signer)")
        return _raw(_load(serialization.load_der_public_key, value))
    raise InvalidKey(f"expected 64 hex characters, PEM or OpenSSH text ({len(stripped)} characters given)")


def _load(loader: Any, data: bytes) -> object:
    try:
        return loader(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKey(f"cannot read it ({str(exc).split('.')[0]})") from exc


def _is_der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _raw(key: object) -> bytes:
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey(f"it is a {type(key).__name__.lstrip('_')}")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class TrustedKeys:
    """The station's trusted signing keys. Each method is one statement or one transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, name: str, public_key: bytes | str, added_by: str = "operator",
            at: float | None = None) -> TrustedKey:
        """Trust `public_key` (see parse_public_key) under `name`. Adding a key already trusted
        returns its existing record unchanged (its name included)."""
        name = name.strip()
        if not name or len(name) > MAX_KEY_NAME_CHARS:
            raise InvalidKey(f"the key needs a name of 1-{MAX_KEY_NAME_CHARS} characters")
        raw = parse_public_key(public_key)
        record = TrustedKey(key_id(raw), name, raw, added_by, time.time() if at is None else at)
        with self._database.transaction() as db:
            existing = db.execute("SELECT * FROM app_keys WHERE key_id = ?", (record.key_id,)).fetchone()
            if existing is not None:
                return TrustedKey.from_row(existing)
            db.execute("INSERT INTO app_keys (key_id, name, public_key, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
                       (record.key_id, record.name, record.public_key, record.added_by, record.added_at))
        return record

    def list(self) -> builtins.list[TrustedKey]:
        """Oldest first."""
        rows = self._database.connection.execute("SELECT * FROM app_keys ORDER BY added_at, key_id")
        return [TrustedKey.from_row(row) for row in rows]

    def get(self, key_id: str) -> TrustedKey | None:
        row = self._database.connection.execute("SELECT * FROM app_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else TrustedKey.from_row(row)

    def remove(self, key_id: str) -> TrustedKey:
        """Stop trusting the key; returns what was removed. Apps already signed with it keep
        running until their next upload is verified."""
        with self._database.transaction() as db:
            row = db.execute("SELECT * FROM app_keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None:
                raise KeyNotFound(key_id)
            db.execute("DELETE FROM app_keys WHERE key_id = ?", (key_id,))
        return TrustedKey.from_row(row)
