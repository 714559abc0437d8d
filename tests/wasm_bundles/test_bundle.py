from __future__ import annotations

import io
import struct
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.store import Database
from station.wasm.bundle import (
    MANIFEST_MEMBER,
    MODULE_MAX_BYTES,
    MODULE_MEMBER,
    SIGNATURE_MEMBER,
    build_bundle,
    read_bundle,
    verify_signature,
)
from station.wasm.errors import (
    BadSignature,
    InvalidBundle,
    InvalidManifest,
    ModuleHashMismatch,
    UnknownSigningKey,
    UnsignedApp,
)
from station.wasm.keys import TrustedKeys, key_id
from tests.wasm_bundles.builders import manifest_bytes, raw_public, wat_module

MODULE = wat_module()


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trusted(database: Database, signer: Ed25519PrivateKey) -> TrustedKeys:
    keys = TrustedKeys(database)
    keys.add("field-team", raw_public(signer))
    return keys


def rezip(members: list[tuple[str, bytes]], comment_of: dict[str, bytes] | None = None,
          compression: int = zipfile.ZIP_STORED) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=compression) as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name)
            info.comment = (comment_of or {}).get(name, b"")
            archive.writestr(info, content, compress_type=compression)
    return output.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_signed_bundle_round_trips(signer: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    manifest = manifest_bytes(MODULE)
    bundle = read_bundle(build_bundle(manifest, MODULE, signer))
    assert bundle.manifest_bytes == manifest and bundle.module == MODULE
    assert bundle.signature is not None and len(bundle.signature) == 64
    assert bundle.key_id_hint == key_id(raw_public(signer))
    assert bundle.manifest.name == "test-app"
    assert verify_signature(bundle, trusted, allow_unsigned=False) == key_id(raw_public(signer))


def test_an_unsigned_bundle_is_refused_unless_allowed(trusted: TrustedKeys) -> None:
    bundle = read_bundle(build_bundle(manifest_bytes(MODULE), MODULE, None))
    assert bundle.signature is None and bundle.key_id_hint is None
    with pytest.raises(UnsignedApp):
        verify_signature(bundle, trusted, allow_unsigned=False)
    assert verify_signature(bundle, trusted, allow_unsigned=True) is None


def test_building_is_deterministic(signer: Ed25519PrivateKey) -> None:
    manifest = manifest_bytes(MODULE)
    assert build_bundle(manifest, MODULE, signer) == build_bundle(manifest, MODULE, signer)
    assert list(members(build_bundle(manifest, MODULE, signer))) == [MANIFEST_MEMBER, MODULE_MEMBER, SIGNATURE_MEMBER]


def test_building_refuses_a_manifest_for_another_module(signer: Ed25519PrivateKey) -> None:
    with pytest.raises(ModuleHashMismatch):
        build_bundle(manifest_bytes(MODULE), wat_module(entry_points=("other",)), signer)
    with pytest.raises(InvalidManifest):
        build_bundle(manifest_bytes(MODULE, name="Bad Name"), MODULE, signer)


def test_a_tampered_manifest_is_a_bad_signature(signer: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    original = members(build_bundle(manifest_bytes(MODULE), MODULE, signer))
    tampered = manifest_bytes(MODULE, capabilities=["log", "mesh_send"])
    hint = {SIGNATURE_MEMBER: key_id(raw_public(signer)).encode()}
    bundle = read_bundle(rezip([(MANIFEST_MEMBER, tampered), (MODULE_MEMBER, MODULE),
                                (SIGNATURE_MEMBER, original[SIGNATURE_MEMBER])], hint))
    with pytest.raises(BadSignature):
        verify_signature(bundle, trusted, allow_unsigned=True)


def test_a_tampered_module_is_a_hash_mismatch(signer: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    original = members(build_bundle(manifest_bytes(MODULE), MODULE, signer))
    other = wat_module(entry_points=("run", "evil"))
    bundle = read_bundle(rezip([(MANIFEST_MEMBER, original[MANIFEST_MEMBER]), (MODULE_MEMBER, other),
                                (SIGNATURE_MEMBER, original[SIGNATURE_MEMBER])]))
    with pytest.raises(ModuleHashMismatch) as caught:
        verify_signature(bundle, trusted, allow_unsigned=False)
    assert caught.value.actual == bundle.module_sha256


def test_an_unsigned_bundle_with_a_swapped_module_is_a_hash_mismatch(trusted: TrustedKeys) -> None:
    bundle = read_bundle(rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)),
                                (MODULE_MEMBER, wat_module(entry_points=("x",)))]))
    with pytest.raises(ModuleHashMismatch):
        verify_signature(bundle, trusted, allow_unsigned=True)


def test_a_signature_from_an_unknown_key_names_the_key(trusted: TrustedKeys) -> None:
    stranger = Ed25519PrivateKey.generate()
    bundle = read_bundle(build_bundle(manifest_bytes(MODULE), MODULE, stranger))
    with pytest.raises(UnknownSigningKey) as caught:
        verify_signature(bundle, trusted, allow_unsigned=True)
    assert caught.value.key_id == key_id(raw_public(stranger))


def test_a_wrong_key_hint_does_not_matter_when_a_trusted_key_verifies(
        signer: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    original = members(build_bundle(manifest_bytes(MODULE), MODULE, signer))
    bundle = read_bundle(rezip(list(original.items()), {SIGNATURE_MEMBER: b"0123456789abcdef"}))
    assert verify_signature(bundle, trusted, allow_unsigned=False) == key_id(raw_public(signer))


def test_a_key_removed_from_the_trusted_list_no_longer_verifies(
        signer: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    bundle = read_bundle(build_bundle(manifest_bytes(MODULE), MODULE, signer))
    trusted.remove(key_id(raw_public(signer)))
    with pytest.raises(UnknownSigningKey):
        verify_signature(bundle, trusted, allow_unsigned=True)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 40, b"\0asm\1\0\0\0"])
def test_something_that_is_not_a_zip_is_an_invalid_bundle(data: bytes) -> None:
    with pytest.raises(InvalidBundle):
        read_bundle(data)


def test_an_extra_member_is_refused() -> None:
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, MODULE), ("README.md", b"hi")])
    with pytest.raises(InvalidBundle, match=r"unexpected member 'README\.md'"):
        read_bundle(data)


@pytest.mark.parametrize("name", ["../app.wasm", "/app.wasm", "lib/app.wasm", "APP.WASM", "app.wasm/"])
def test_path_tricks_are_refused(name: str) -> None:
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (name, MODULE)])
    with pytest.raises(InvalidBundle):
        read_bundle(data)


def test_a_duplicated_member_is_refused() -> None:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr(MANIFEST_MEMBER, manifest_bytes(MODULE))
        archive.writestr(MODULE_MEMBER, MODULE)
        with pytest.warns(UserWarning):  # zipfile itself warns about the duplicate name
            archive.writestr(MODULE_MEMBER, wat_module(entry_points=("evil",)))
    with pytest.raises(InvalidBundle, match="twice"):
        read_bundle(output.getvalue())


@pytest.mark.parametrize("missing", [MANIFEST_MEMBER, MODULE_MEMBER])
def test_a_missing_member_is_refused(missing: str) -> None:
    present = [(name, content) for name, content in [(MANIFEST_MEMBER, manifest_bytes(MODULE)),
                                                      (MODULE_MEMBER, MODULE)] if name != missing]
    with pytest.raises(InvalidBundle, match=f"no {missing}"):
        read_bundle(rezip(present))


def test_a_signature_of_the_wrong_size_is_refused() -> None:
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, MODULE), (SIGNATURE_MEMBER, b"x" * 63)])
    with pytest.raises(InvalidBundle):
        read_bundle(data)


def _patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of `name` in the central directory (what zipfile trusts)."""
    patched = bytearray(data)
    start = 0
    while (at := patched.find(b"PK\x01\x02", start)) >= 0:
        name_length = struct.unpack_from("<H", patched, at + 28)[0]
        if patched[at + 46:at + 46 + name_length] == name.encode():
            struct.pack_into("<I", patched, at + 24, size)
        start = at + 4
    return bytes(patched)


def test_a_huge_declared_size_is_refused_before_reading() -> None:
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, MODULE)])
    with pytest.raises(InvalidBundle, match="declares"):
        read_bundle(_patch_declared_size(data, MODULE_MEMBER, 0xFFFF_FFF0))


def test_a_lying_small_declared_size_cannot_make_it_inflate_more() -> None:
    bomb = b"\0" * (MODULE_MAX_BYTES + 1024 * 1024)  # deflates to ~17 KB
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, bomb)], compression=zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    with pytest.raises(InvalidBundle):
        read_bundle(data)
    with pytest.raises(InvalidBundle):
        read_bundle(_patch_declared_size(data, MODULE_MEMBER, 1000))


def test_a_corrupted_member_is_refused() -> None:
    data = bytearray(rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, MODULE)]))
    at = bytes(data).find(MODULE[8:40])
    data[at + 5] ^= 0xFF  # the CRC no longer matches
    with pytest.raises(InvalidBundle):
        read_bundle(bytes(data))


def test_a_deflated_bundle_from_another_tool_is_read() -> None:
    data = rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE)), (MODULE_MEMBER, MODULE)],
                 compression=zipfile.ZIP_DEFLATED)
    assert read_bundle(data).module == MODULE


def test_a_bad_manifest_inside_a_bundle_names_its_field() -> None:
    with pytest.raises(InvalidManifest) as caught:
        read_bundle(rezip([(MANIFEST_MEMBER, manifest_bytes(MODULE, version="one")), (MODULE_MEMBER, MODULE)]))
    assert caught.value.field == "version"
