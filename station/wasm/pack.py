"""Packing an app for developers: compile its WAT (if it has one), write the module's sha256 into
its manifest, build the signed `.fapp`, and manage a development signing key.

Used by `scripts/build-example-apps` and the developer CLI. Owns the app source directory layout
(app.wat or app.wasm, manifest.json) and the key files; the bundle format is bundle.py's. Never
runs on the station and never touches its database."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from station.wasm.bundle import build_bundle, read_bundle
from station.wasm.errors import AppRefused, InvalidKey, InvalidModule
from station.wasm.keys import key_id, parse_public_key

SOURCE_FILE = "app.wat"
MODULE_FILE = "app.wasm"
MANIFEST_FILE = "manifest.json"
PRIVATE_KEY_FILE = "private.pem"
PUBLIC_KEY_FILE = "public.pem"
PRIVATE_KEY_MODE = 0o600


@dataclass(frozen=True)
class PackedApp:
    name: str
    version: str
    module: bytes
    manifest_json: bytes  # the manifest as signed, module_sha256 filled in
    bundle: bytes
    key_id: str | None  # the signer, None when unsigned

    @property
    def bundle_file(self) -> str:
        return f"{self.name}-{self.version}.fapp"

    def files(self) -> dict[str, bytes]:
        """What the app directory holds once packed: name -> content."""
        return {MODULE_FILE: self.module, MANIFEST_FILE: self.manifest_json, self.bundle_file: self.bundle}


def compile_wat(source: str) -> bytes:
    """The wasm bytes of WAT text (deterministic for a given wasmtime version)."""
    try:
        return bytes(wasmtime.wat2wasm(source))
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"the WAT does not compile: {str(exc).strip().splitlines()[0]}") from exc


def manifest_with_hash(manifest_json: bytes, module: bytes) -> bytes:
    """The manifest with module_sha256 set to the module's, formatted the one way this tool writes
    manifests (2-space indent, keys in the author's order, trailing newline)."""
    document = json.loads(manifest_json)
    document["module_sha256"] = hashlib.sha256(module).hexdigest()
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def pack_app(app_dir: Path, private_key: Ed25519PrivateKey | None) -> PackedApp:
    """Build the app in `app_dir` in memory (nothing is written): the module from app.wat when
    there is one, else app.wasm; the manifest from manifest.json; the bundle signed with the key."""
    source = app_dir / SOURCE_FILE
    if source.exists():
        module = compile_wat(source.read_text(encoding="utf-8"))
    else:
        module = (app_dir / MODULE_FILE).read_bytes()
    manifest_json = manifest_with_hash((app_dir / MANIFEST_FILE).read_bytes(), module)
    bundle = build_bundle(manifest_json, module, private_key)
    document = json.loads(manifest_json)
    signer = None if private_key is None else key_id(public_key_raw(private_key))
    return PackedApp(document["name"], document["version"], module, manifest_json, bundle, signer)


def write_packed(app_dir: Path, packed: PackedApp) -> list[Path]:
    """Write the packed files that differ from what is on disk; the paths written."""
    written = []
    for name, content in packed.files().items():
        path = app_dir / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            written.append(path)
    return written


def differences(app_dir: Path, packed: PackedApp, public_key: Ed25519PublicKey | None = None) -> list[str]:
    """The packed files whose content on disk is missing or different. With `public_key` (the
    bundle was packed unsigned: the private key is not at hand), the bundle on disk only has to
    hold the same manifest and module, signed by that key."""
    stale = [name for name, content in packed.files().items()
             if not (public_key is not None and name == packed.bundle_file)
             and (not (app_dir / name).exists() or (app_dir / name).read_bytes() != content)]
    if public_key is not None and not _signed_copy(app_dir / packed.bundle_file, packed, public_key):
        stale.append(packed.bundle_file)
    return stale


def _signed_copy(path: Path, packed: PackedApp, public_key: Ed25519PublicKey) -> bool:
    try:
        bundle = read_bundle(path.read_bytes())
        if bundle.signature is None:
            return False
        public_key.verify(bundle.signature, bundle.manifest_bytes)
    except (OSError, AppRefused, InvalidSignature):
        return False
    return bundle.manifest_bytes == packed.manifest_json and bundle.module == packed.module


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file in any form keys.parse_public_key reads (PEM, hex, OpenSSH)."""
    return Ed25519PublicKey.from_public_bytes(parse_public_key(path.read_bytes()))


def public_key_raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted PKCS#8 PEM Ed25519 private key (InvalidKey otherwise)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"{path} is not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKey(f"{path} holds a {type(key).__name__.lstrip('_')}, not an Ed25519 key")
    return key


def create_key(directory: Path) -> Ed25519PrivateKey:
    """A new signing key as directory/private.pem (mode 0600) and directory/public.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(directory / PRIVATE_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_key_pem(key))
    return key


def load_or_create_key(directory: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key in directory/private.pem, or a new one; True when it was created."""
    path = directory / PRIVATE_KEY_FILE
    if path.exists():
        return load_private_key(path), False
    return create_key(directory), True
