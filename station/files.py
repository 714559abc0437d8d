"""Durable file writes for the station's data directory. Owns the one way a file appears there
whole or not at all, and how long the disk takes to make a write durable; what goes into a file
belongs to the caller."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
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


def fsync_seconds(directory: Path, samples: int = 3) -> float:
    """Median time one fsync of a freshly written 4 KiB takes in `directory`: what each durable commit
    of a database there waits for (~0.2 ms on an SSD, often tens of milliseconds on an SD card)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fsync-probe.", suffix=".tmp")
    try:
        timings = []
        for _ in range(samples):
            os.write(fd, os.urandom(4096))
            started = time.perf_counter()
            os.fsync(fd)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
