"""Compiled-module cache: `<dir>/<sha256(module)>-<wasmtime version>.cwasm` plus a sidecar `.sha256` holding
HMAC-SHA256(station key, name + serialized bytes). The key is a per-station secret in `<dir>/cache.key`
(0600): whoever can write the cache but not read the key cannot forge an entry, and an entry cannot be
swapped under another module's name. `Module.deserialize` runs native code it trusts blindly, so it only
ever sees bytes whose HMAC verified; anything else is deleted, recompiled and counted as rejected.

Owns the cache directory and nothing else; never raises for a broken cache (it recompiles)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import stat
import threading
from importlib.metadata import version
from pathlib import Path

import wasmtime

from station.files import write_atomic
from station.wasm.errors import InvalidModule

logger = logging.getLogger(__name__)

WASMTIME_VERSION = version("wasmtime")  # artifacts of another wasmtime never load (and wasmtime refuses them)
KEY_FILE = "cache.key"
KEY_BYTES = 32
WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"  # a core module, version 1 (not a component, not WAT text)


def compile_module(engine: wasmtime.Engine, module: bytes) -> wasmtime.Module:
    """Compile wasm bytes; InvalidModule for anything else (wasmtime would also accept WAT text: we do not)."""
    if not bytes(module[:8]) == WASM_MAGIC:
        raise InvalidModule("it does not start with the WebAssembly magic and version 1 (\\0asm 01 00 00 00)")
    try:
        return wasmtime.Module(engine, bytes(module))
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(_first_line(str(exc))) from exc


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


class ModuleCache:
    """Compiled modules for one Engine. Counters: `hits`, `misses`, `rejected` (tampered, truncated or
    stale entries that were deleted and recompiled)."""

    def __init__(self, directory: Path, engine: wasmtime.Engine) -> None:
        self.directory = directory
        self._engine = engine
        self.hits = self.misses = self.rejected = 0
        self._key: bytes | None = None
        self._lock = threading.Lock()  # loads may come from several threads (the service offloads them)

    def counters(self) -> dict[str, int]:
        return {"cache_hits": self.hits, "cache_misses": self.misses, "cache_rejected": self.rejected}

    def paths(self, module_sha256: str) -> tuple[Path, Path]:
        """The artifact and its HMAC sidecar for a module hash."""
        stem = f"{module_sha256}-{WASMTIME_VERSION}"
        return self.directory / f"{stem}.cwasm", self.directory / f"{stem}.sha256"

    def load(self, module: bytes) -> wasmtime.Module:
        """The compiled module for these wasm bytes: from the cache if an authentic entry exists, else compiled
        (InvalidModule if it does not compile) and stored."""
        digest = hashlib.sha256(module).hexdigest()
        artifact, sidecar = self.paths(digest)
        cached = self._load_verified(artifact, sidecar)
        if cached is not None:
            self._count("hits")
            return cached
        self._count("misses")
        compiled = compile_module(self._engine, module)
        self._store(artifact, sidecar, bytes(compiled.serialize()))
        return compiled

    def _load_verified(self, artifact: Path, sidecar: Path) -> wasmtime.Module | None:
        try:
            serialized, tag = artifact.read_bytes(), sidecar.read_text().strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._reject(artifact, sidecar, f"unreadable: {exc}")
            return None
        if not hmac.compare_digest(tag, self._tag(artifact.name, serialized)):
            self._reject(artifact, sidecar, "HMAC mismatch")
            return None
        try:
            return wasmtime.Module.deserialize(self._engine, serialized)
        except wasmtime.WasmtimeError as exc:  # authentic but incompatible with this engine's configuration
            self._reject(artifact, sidecar, f"deserialize failed: {_first_line(str(exc))}")
            return None

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _reject(self, artifact: Path, sidecar: Path, reason: str) -> None:
        self._count("rejected")
        logger.warning("compiled module cache entry rejected", extra={"entry": artifact.name, "reason": reason})
        for path in (artifact, sidecar):
            path.unlink(missing_ok=True)

    def _store(self, artifact: Path, sidecar: Path, serialized: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(artifact, serialized)
            write_atomic(sidecar, self._tag(artifact.name, serialized).encode())
        except OSError as exc:  # a full or read-only disk costs a recompile next time, nothing more
            logger.warning("compiled module not cached", extra={"entry": artifact.name, "error": str(exc)})

    def _tag(self, name: str, serialized: bytes) -> str:
        return hmac.new(self._secret(), name.encode() + b"\0" + serialized, hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        """The station's cache key, created on first use. A key file others may read is replaced: every
        existing entry then fails verification and is recompiled, which is the point."""
        with self._lock:
            if self._key is None:
                self._key = self._read_or_create_key()
            return self._key

    def _read_or_create_key(self) -> bytes:
        path = self.directory / KEY_FILE
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            info = path.stat()
            key = path.read_bytes()
            if len(key) == KEY_BYTES and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                return key
            logger.warning("compiled module cache key replaced", extra={"path": str(path)})
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(KEY_BYTES)
        write_atomic(path, key, 0o600)
        return key
