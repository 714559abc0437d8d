"""Durable file writes for the station's data directory. Owns the one way a file appears there
whole or not at all; what goes into it belongs to the caller."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Make `path` hold `data`: written to a unique temporary file beside it (`mode`), synced, then
    renamed over it, so a crash or a full disk leaves the old file or none, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
