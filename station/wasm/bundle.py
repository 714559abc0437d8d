"""The app bundle (`.fapp`): a zip archive of exactly `manifest.json`, `app.wasm` and, when
signed, `manifest.sig` (64 raw bytes, Ed25519 over the exact bytes of manifest.json). The
manifest names the module's sha256, so one signature covers both.

Owns reading (zip-bomb and path-trick safe: declared sizes checked before reading, reads bounded,
no member outside the three), building (deterministic: same inputs, same bytes) and signature
verification. It never compiles the module (validate.py) nor stores anything.

The signing key's id rides along as the zip comment of the `manifest.sig` member: a hint that
lets the station say "signed by unknown key <id>" rather than only "bad signature". It is not
trusted: verification tries the hinted key and every trusted key."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.wasm.errors import BadSignature, InvalidBundle, ModuleHashMismatch, UnknownSigningKey, UnsignedApp
from station.wasm.keys import TrustedKey, TrustedKeys, key_id
from station.wasm.manifest import Manifest, parse_manifest

MANIFEST_MEMBER = "manifest.json"
MODULE_MEMBER = "app.wasm"
SIGNATURE_MEMBER = "manifest.sig"
MANIFEST_MAX_BYTES = 64 * 1024
MODULE_MAX_BYTES = 16 * 1024 * 1024  # far above a useful app; bounds what one upload can make us hold
SIGNATURE_BYTES = 64
BUNDLE_MAX_BYTES = MODULE_MAX_BYTES + MANIFEST_MAX_BYTES + 64 * 1024  # members stored plus zip overhead
_MEMBER_LIMITS = {MANIFEST_MEMBER: MANIFEST_MAX_BYTES, MODULE_MEMBER: MODULE_MAX_BYTES,
                  SIGNATURE_MEMBER: SIGNATURE_BYTES}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest zip date: fixed, so a build is byte-for-byte reproducible
_KEY_ID_HINT = re.compile(rb"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class AppBundle:
    manifest: Manifest
    manifest_bytes: bytes  # exactly as signed
    module: bytes
    signature: bytes | None  # None: unsigned
    key_id_hint: str | None = None  # the signer's key id as the bundle claims it (unverified)

    @property
    def module_sha256(self) -> str:
        """The sha256 of the module as received (the manifest's module_sha256 is what it should be)."""
        return hashlib.sha256(self.module).hexdigest()


def read_bundle(data: bytes) -> AppBundle:
    """Parse a `.fapp`. InvalidBundle for anything but a zip of the expected members within their
    limits; InvalidManifest for a bad manifest. The signature and hash are checked by verify_signature."""
    if len(data) > BUNDLE_MAX_BYTES:
        raise InvalidBundle(f"{len(data)} bytes, more than the {BUNDLE_MAX_BYTES}-byte limit")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidBundle(f"not a zip archive ({exc})") from exc
    with archive:
        members = _check_members(archive.infolist())
        contents = {name: _read_member(archive, info) for name, info in members.items()}
    signature = contents.get(SIGNATURE_MEMBER)
    if signature is not None and len(signature) != SIGNATURE_BYTES:
        raise InvalidBundle(f"{SIGNATURE_MEMBER} has {len(signature)} bytes, an Ed25519 signature has 64")
    hint = members[SIGNATURE_MEMBER].comment if SIGNATURE_MEMBER in members else b""
    manifest_bytes = contents[MANIFEST_MEMBER]
    return AppBundle(manifest=parse_manifest(manifest_bytes), manifest_bytes=manifest_bytes,
                     module=contents[MODULE_MEMBER], signature=signature,
                     key_id_hint=hint.decode() if _KEY_ID_HINT.match(hint) else None)


def _check_members(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Refuse before reading a byte: unknown or duplicated names (which also covers "../x",
    "/x" and "dir/x"), encryption, unusual compression and declared sizes above the limits."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name not in _MEMBER_LIMITS:
            raise InvalidBundle(f"unexpected member {name[:80]!r} (a bundle holds only "
                                f"{MANIFEST_MEMBER}, {MODULE_MEMBER} and {SIGNATURE_MEMBER})")
        if name in members:
            raise InvalidBundle(f"member {name} appears twice")
        if info.flag_bits & 0x1:
            raise InvalidBundle(f"member {name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidBundle(f"member {name} uses compression method {info.compress_type} (stored or deflate only)")
        if info.file_size > _MEMBER_LIMITS[name]:
            raise InvalidBundle(f"member {name} declares {info.file_size} bytes, the limit is {_MEMBER_LIMITS[name]}")
        members[name] = info
    for required in (MANIFEST_MEMBER, MODULE_MEMBER):
        if required not in members:
            raise InvalidBundle(f"no {required}")
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """At most limit + 1 bytes, whatever the header claims: a lying header cannot make us inflate more."""
    limit = _MEMBER_LIMITS[info.filename]
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise InvalidBundle(f"member {info.filename} cannot be read ({exc})") from exc
    if len(content) > limit:
        raise InvalidBundle(f"member {info.filename} holds more than {limit} bytes")
    if len(content) != info.file_size:
        raise InvalidBundle(f"member {info.filename} holds {len(content)} bytes, its header says {info.file_size}")
    return content


def build_bundle(manifest_json: bytes, module: bytes, private_key: Ed25519PrivateKey | None) -> bytes:
    """A `.fapp` of these exact manifest bytes and module, signed when a key is given. Refuses a
    manifest that would not be accepted (InvalidManifest) or that does not match the module
    (ModuleHashMismatch). Deterministic: members stored uncompressed, in a fixed order and date."""
    manifest = parse_manifest(manifest_json)
    actual = hashlib.sha256(module).hexdigest()
    if manifest.module_sha256 != actual:
        raise ModuleHashMismatch(manifest.module_sha256, actual)
    if len(manifest_json) > MANIFEST_MAX_BYTES or len(module) > MODULE_MAX_BYTES:
        raise InvalidBundle(f"manifest or module above its limit ({MANIFEST_MAX_BYTES} / {MODULE_MAX_BYTES} bytes)")
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        _write_member(archive, MANIFEST_MEMBER, manifest_json)
        _write_member(archive, MODULE_MEMBER, module)
        if private_key is not None:
            raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            _write_member(archive, SIGNATURE_MEMBER, private_key.sign(manifest_json), comment=key_id(raw).encode())
    return output.getvalue()


def _write_member(archive: zipfile.ZipFile, name: str, content: bytes, comment: bytes = b"") -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.create_system = 3  # unix, whatever builds it
    info.external_attr = 0o644 << 16
    info.comment = comment
    archive.writestr(info, content)


def verify_signature(bundle: AppBundle, trusted: TrustedKeys, allow_unsigned: bool) -> str | None:
    """The id of the trusted key that signed the manifest, or None for an unsigned bundle the
    station allows. Then the module must be the one the manifest names.

    Raises UnsignedApp, UnknownSigningKey (no trusted key verifies and the bundle names a key
    the station does not trust), BadSignature (otherwise) and ModuleHashMismatch."""
    signer: str | None = None
    if bundle.signature is None:
        if not allow_unsigned:
            raise UnsignedApp()
    else:
        signer = _verifying_key(bundle, bundle.signature, trusted.list())
    if bundle.module_sha256 != bundle.manifest.module_sha256:
        raise ModuleHashMismatch(bundle.manifest.module_sha256, bundle.module_sha256)
    return signer


def _verifying_key(bundle: AppBundle, signature: bytes, keys: list[TrustedKey]) -> str:
    # the hinted key first: with the right hint, one verification
    keys = sorted(keys, key=lambda key: key.key_id != bundle.key_id_hint)
    for key in keys:
        try:
            key.verifier().verify(signature, bundle.manifest_bytes)
        except InvalidSignature:
            continue
        return key.key_id
    if bundle.key_id_hint is not None and all(key.key_id != bundle.key_id_hint for key in keys):
        raise UnknownSigningKey(bundle.key_id_hint)
    raise BadSignature()
