"""Receiving file transfers (docs/board-protocol.md, "File transfer"): file_begin,
file_chunk, file_end in, file_status and file_chunk_ack out.

Each transfer appends to a partial file in the spool directory, named after the
(path, sha256) pair, and the partial file's size *is* `have`: nothing else needs
saving, so a board killed mid-transfer resumes from what reached its flash when the
station sends the same file_begin again. file_end hashes the whole partial file and
renames it over the target only if the SHA-256 matches. Owns paths, limits and the
spool; it never touches the link (the runtime sends the replies it returns).
"""

import binascii
import hashlib
import os

from edge_agent.agent import _port
from edge_agent.protocol import FILE_CHUNK_ACK, FILE_STATUS, make

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

MAX_FILE_SIZE = 1 << 20  # default limit per file; profiles set theirs from the flash size
MAX_ACTIVE_TRANSFERS = 4  # each costs only its metadata: data goes straight to flash
MAX_PATH_LENGTH = 128  # littlefs's default name limit is 255; whole paths stay well below
HASH_BLOCK = 1024  # bytes read per step while hashing: small enough for a 64 KiB heap
PART_SUFFIX = ".part"


class TransferError(Exception):
    """A file_begin the board refuses; `reason` goes back in file_status.error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PathRefused(TransferError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"path {path!r} refused: {reason}")
        self.path = path


class FileTooLarge(TransferError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"file of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


def safe_relative_path(path: str) -> str:
    """`path` as a relative path inside the files root, or PathRefused: no "..", no
    empty or hidden components, no backslashes; a leading "/" means the root itself."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise PathRefused(str(path)[:MAX_PATH_LENGTH], "empty or too long")
    if "\\" in path or "\x00" in path:
        raise PathRefused(path, "backslash or NUL")
    parts = [part for part in path.split("/") if part and part != "."]
    if not parts:
        raise PathRefused(path, "names no file")
    for part in parts:
        if part == ".." or part[0] == ".":
            raise PathRefused(path, "escapes the files root or names a hidden file")
    return "/".join(parts)


def sha256_file(path: str) -> bytes:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return bytes(digest.digest())


class _Transfer:
    def __init__(self, xfer: int, target: str, part: str, size: int, sha256: bytes, have: int) -> None:
        self.xfer = xfer
        self.target = target
        self.part = part
        self.size = size
        self.sha256 = sha256
        self.have = have
        self.used = 0  # FileReceiver's tick of the last message for this transfer


class FileReceiver:
    """The board's side of file transfers into `root`, spooling partial files in `spool`.
    `reserved` lists relative paths under `root` that transfers must not touch (the
    state directory when it lies inside the files root, as on a board's flash)."""

    def __init__(self, root: str, spool: str, max_size: int = MAX_FILE_SIZE, reserved: tuple[str, ...] = ()) -> None:
        self.root = root
        self.spool = spool
        self.max_size = max_size
        self.reserved = reserved
        self._active: dict[int, _Transfer] = {}
        self._tick = 0
        self.completed = 0
        self.failed = 0

    def _part_path(self, rel: str, sha256: bytes) -> str:
        path_id = binascii.hexlify(hashlib.sha256(rel.encode()).digest()[:6]).decode()
        return _port.join(self.spool, path_id + "-" + binascii.hexlify(sha256[:8]).decode() + PART_SUFFIX)

    def _drop_stale_parts(self, part: str) -> None:
        """Forget partial files of older versions of the same path (same prefix)."""
        keep = part.rpartition("/")[2]
        prefix = keep.partition("-")[0] + "-"
        for name in os.listdir(self.spool):
            if name.startswith(prefix) and name != keep:
                _port.remove(_port.join(self.spool, name))

    def _status(self, xfer: int, have: int, state: str, error: str | None = None) -> dict[str, Any]:
        if error is None:
            return make(FILE_STATUS, xfer=xfer, have=have, state=state)
        return make(FILE_STATUS, xfer=xfer, have=have, state=state, error=error[:120])

    def begin(self, msg: dict[str, Any]) -> dict[str, Any]:
        """file_begin -> file_status: `receiving` with what we already have, `done` when
        the target already holds exactly this file, `failed` when refused."""
        xfer, size, sha256 = msg["xfer"], msg["size"], msg["sha256"]
        try:
            rel = safe_relative_path(msg["path"])
            for prefix in self.reserved:
                if rel == prefix or rel.startswith(prefix + "/"):
                    raise PathRefused(rel, "reserved for the agent's state")
            if size > self.max_size:
                raise FileTooLarge(size, self.max_size)
        except TransferError as exc:
            self.failed += 1
            return self._status(xfer, 0, "failed", exc.reason)
        target = _port.join(self.root, rel)
        part = self._part_path(rel, sha256)
        try:
            _port.makedirs(self.spool)
            self._drop_stale_parts(part)
            have = _port.file_size(part)
            if have is None or have > size:
                _port.remove(part)
                if _port.file_size(target) == size and sha256_file(target) == sha256:
                    return self._status(xfer, size, "done")  # already there: a lost file_status
                open(part, "wb").close()
                have = 0
        except OSError as exc:
            self.failed += 1
            return self._status(xfer, 0, "failed", f"flash error {exc}")
        self._make_room(xfer, target)
        self._active[xfer] = self._touch(_Transfer(xfer, target, part, size, sha256, have))
        return self._status(xfer, have, "receiving")

    def _make_room(self, xfer: int, target: str) -> None:
        """Forget transfers the station abandoned: one to the same target, the idlest beyond the limit."""
        for other in list(self._active.values()):
            if other.xfer != xfer and other.target == target:
                del self._active[other.xfer]
        if xfer not in self._active and len(self._active) >= MAX_ACTIVE_TRANSFERS:
            idlest = min(self._active.values(), key=lambda transfer: transfer.used)
            del self._active[idlest.xfer]

    def _touch(self, transfer: _Transfer) -> _Transfer:
        self._tick += 1
        transfer.used = self._tick
        return transfer

    def chunk(self, msg: dict[str, Any]) -> dict[str, Any]:
        """file_chunk -> file_chunk_ack with `have`; data is appended only at off == have."""
        transfer = self._active.get(msg["xfer"])
        if transfer is None:
            return self._status(msg["xfer"], 0, "failed", "unknown transfer: send file_begin")
        self._touch(transfer)
        data = msg["data"]
        if msg["off"] == transfer.have and data and transfer.have + len(data) <= transfer.size:
            try:  # opened per chunk: once closed, the bytes count towards `have` after a reset
                with open(transfer.part, "ab") as handle:
                    handle.write(data)
            except OSError as exc:
                del self._active[transfer.xfer]
                self.failed += 1
                return self._status(transfer.xfer, transfer.have, "failed", f"flash error {exc}")
            transfer.have += len(data)
        return make(FILE_CHUNK_ACK, xfer=transfer.xfer, have=transfer.have)

    def end(self, msg: dict[str, Any]) -> dict[str, Any]:
        """file_end -> file_status `done` (verified and renamed into place), `failed`, or
        `receiving` if bytes are still missing."""
        xfer = msg["xfer"]
        transfer = self._active.get(xfer)
        if transfer is None:
            return self._status(xfer, 0, "failed", "unknown transfer: send file_begin")
        if transfer.have < transfer.size:
            return self._status(xfer, transfer.have, "receiving", "incomplete")
        del self._active[xfer]
        try:
            if sha256_file(transfer.part) != transfer.sha256:
                _port.remove(transfer.part)
                self.failed += 1
                return self._status(xfer, 0, "failed", "sha256 mismatch")
            _port.makedirs(transfer.target.rpartition("/")[0])
            _port.replace(transfer.part, transfer.target)
        except OSError as exc:
            self.failed += 1
            return self._status(xfer, 0, "failed", f"flash error {exc}")
        self.completed += 1
        return self._status(xfer, transfer.size, "done")
