"""Manifests, modules and keys for the bundle tests: small real wasm built from WAT."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import wasmtime
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ENTRY = '(func (export "{name}") (param i32 i32) (result i64) (i64.const 0))'


def wat_module(imports: str = "", entry_points: tuple[str, ...] = ("run",), extra: str = "",
               memory: bool = True, alloc: bool = True) -> bytes:
    parts = [imports]
    if memory:
        parts.append('(memory (export "memory") 1)')
    if alloc:
        parts.append('(func (export "alloc") (param i32) (result i32) (i32.const 1024))')
    parts += [ENTRY.format(name=name) for name in entry_points]
    parts.append(extra)
    return bytes(wasmtime.wat2wasm("(module " + "\n".join(parts) + ")"))


def manifest_dict(module: bytes, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "test-app",
        "version": "1.0.0",
        "host_api": 1,
        "module_sha256": hashlib.sha256(module).hexdigest(),
        "entry_points": ["run"],
        "capabilities": ["log"],
    }
    document.update(overrides)
    return document


def manifest_bytes(module: bytes, **overrides: Any) -> bytes:
    return json.dumps(manifest_dict(module, **overrides)).encode()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
