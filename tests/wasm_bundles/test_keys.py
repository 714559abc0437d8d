from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.store import Database
from station.wasm.errors import InvalidKey, KeyNotFound
from station.wasm.keys import TrustedKeys, key_id, parse_public_key
from tests.wasm_bundles.builders import raw_public

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@pytest.fixture
def keys(database: Database) -> TrustedKeys:
    return TrustedKeys(database)


def test_add_list_get_remove(keys: TrustedKeys) -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    a = keys.add("field-team", raw_public(first), added_by="admin", at=100.0)
    b = keys.add("vendor", raw_public(second).hex(), at=200.0)
    assert a.key_id == key_id(raw_public(first))
    assert len(a.key_id) == 16 and a.public_key == raw_public(first) and a.added_by == "admin"
    assert [key.key_id for key in keys.list()] == [a.key_id, b.key_id]
    assert keys.get(b.key_id) == b
    assert keys.get("0000000000000000") is None
    assert keys.remove(a.key_id) == a
    assert [key.name for key in keys.list()] == ["vendor"]
    with pytest.raises(KeyNotFound):
        keys.remove(a.key_id)


def test_the_key_id_is_the_start_of_the_sha256_of_the_raw_key() -> None:
    raw = raw_public(Ed25519PrivateKey.generate())
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]


def test_adding_a_trusted_key_again_keeps_the_first_record(keys: TrustedKeys) -> None:
    raw = raw_public(Ed25519PrivateKey.generate())
    first = keys.add("field-team", raw)
    assert keys.add("renamed", raw.hex()) == first
    assert len(keys.list()) == 1


@pytest.mark.parametrize("form", ["raw", "hex", "HEX", "pem", "pem-str", "der", "openssh"])
def test_public_key_forms(form: str) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    raw = raw_public(key)
    value: bytes | str = {
        "raw": raw,
        "hex": raw.hex(),
        "HEX": raw.hex().upper() + "\n",
        "pem": public.public_bytes(PEM, SPKI),
        "pem-str": public.public_bytes(PEM, SPKI).decode(),
        "der": public.public_bytes(DER, SPKI),
        "openssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    }[form]
    assert parse_public_key(value) == raw


PRIVATE_FORMS = {
    "pkcs8-pem": (PEM, serialization.PrivateFormat.PKCS8),
    "openssh": (PEM, serialization.PrivateFormat.OpenSSH),
    "pkcs8-der": (DER, serialization.PrivateFormat.PKCS8),
}


@pytest.mark.parametrize("form", sorted(PRIVATE_FORMS))
def test_a_private_key_is_refused(keys: TrustedKeys, form: str) -> None:
    encoding, private_format = PRIVATE_FORMS[form]
    private = Ed25519PrivateKey.generate().private_bytes(encoding, private_format, serialization.NoEncryption())
    with pytest.raises(InvalidKey, match="PRIVATE"):
        keys.add("oops", private)
    assert keys.list() == []


OTHER_KEYS = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()).public_key(),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048).public_key(),
    "ed448": lambda: ed448.Ed448PrivateKey.generate().public_key(),
}


@pytest.mark.parametrize("kind", sorted(OTHER_KEYS))
def test_another_key_type_is_refused(keys: TrustedKeys, kind: str) -> None:
    other = OTHER_KEYS[kind]().public_bytes(PEM, SPKI)
    with pytest.raises(InvalidKey, match="not an Ed25519"):
        keys.add("other", other)


@pytest.mark.parametrize("garbage", [
    b"", b"short", "zz" * 32, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", b"\x00" * 31, b"\x00" * 33,
])
def test_garbage_is_refused(garbage: bytes | str) -> None:
    with pytest.raises(InvalidKey):
        parse_public_key(garbage)


def test_a_key_needs_a_name(keys: TrustedKeys) -> None:
    with pytest.raises(InvalidKey, match="name"):
        keys.add("  ", raw_public(Ed25519PrivateKey.generate()))
