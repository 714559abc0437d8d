"""What the running interpreter offers the agent: clocks, free memory, reset, the
optional `machine` module, and the few path helpers MicroPython's `os` lacks.

Owns every difference between MicroPython (boards and the unix port) and CPython, so
the other agent modules stay free of `sys.implementation` checks. Holds no agent state.
"""

import gc
import os
import sys
import time

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

IS_MICROPYTHON = sys.implementation.name == "micropython"
PLATFORM = sys.platform  # "linux" on the unix port and CPython, "esp32", "rp2", ...

# Exit codes on the unix port and CPython, where a "reboot" ends the process and the
# supervisor (the station's virtual-board launcher, a test) starts it again.
EXIT_REBOOT = 75  # the station asked for a reboot (command "reboot")
EXIT_WATCHDOG = 76  # the software watchdog saw the loop stall past its limit

_ticks_ms = getattr(time, "ticks_ms", None)
_ticks_diff = getattr(time, "ticks_diff", None)
_mem_free = getattr(gc, "mem_free", None)


def optional_module(name: str) -> Any:
    """The module `name`, or None where this port lacks it (`machine` on CPython)."""
    try:
        return __import__(name)
    except ImportError:
        return None


MACHINE = optional_module("machine")


def ticks_ms() -> int:
    """A millisecond counter that wraps on MicroPython: compare with ticks_diff only."""
    if _ticks_ms is not None:
        return int(_ticks_ms())
    return int(time.monotonic() * 1000)


def ticks_diff(later: int, earlier: int) -> int:
    """Milliseconds from `earlier` to `later`, correct across a MicroPython wrap."""
    if _ticks_diff is not None:
        return int(_ticks_diff(later, earlier))
    return later - earlier


class Uptime:
    """Milliseconds since construction, accumulated so the 2**30 ms wrap of ticks_ms
    (12.4 days on the unix port, less on some boards) never shows; call it at least
    once per wrap half-period, which every heartbeat does."""

    def __init__(self) -> None:
        self._last = ticks_ms()
        self._total_ms = 0

    def ms(self) -> int:
        now = ticks_ms()
        self._total_ms += max(0, ticks_diff(now, self._last))
        self._last = now
        return self._total_ms

    def s(self) -> int:
        return self.ms() // 1000


# CPython has no agent heap to measure (the host's free memory would mislead the station),
# so an agent running there reports this fixed stand-in instead of gc.mem_free().
CPYTHON_FREE_MEM_STANDIN = 1 << 20


def free_mem() -> int:
    """Free heap bytes (gc.mem_free() on MicroPython, a fixed stand-in on CPython)."""
    if _mem_free is not None:
        return int(_mem_free())
    return CPYTHON_FREE_MEM_STANDIN


def collect() -> None:
    """A full collection on MicroPython: on a small heap, garbage left between heartbeats
    fragments it until a 4 KiB frame no longer fits; collecting once a beat (~1 ms) keeps it
    whole and makes the reported free_mem the real free heap. Nothing on CPython, whose
    free_mem is a stand-in and whose full collection of a large process (an agent inside a
    test runner) can take longer than a fast heartbeat period and starve the loop."""
    if IS_MICROPYTHON:
        gc.collect()


def unique_id() -> bytes | None:
    """The board's factory-burned id (machine.unique_id()), or None on the unix port and CPython."""
    read = getattr(MACHINE, "unique_id", None)
    return bytes(read()) if read is not None else None


def reset(exit_code: int) -> None:
    """Reboot: machine.reset() on a board; on the unix port and CPython end the process
    with `exit_code` (SystemExit leaves the asyncio loop even from a background task)."""
    hard_reset = getattr(MACHINE, "reset", None)
    if hard_reset is not None:
        hard_reset()
    sys.stderr.write(f"agent: exiting with code {exit_code}\n")
    raise SystemExit(exit_code)


def disable_ctrl_c() -> None:
    """Frames may hold 0x03: on MicroPython, stop it raising KeyboardInterrupt on stdin."""
    micropython = optional_module("micropython")
    kbd_intr = getattr(micropython, "kbd_intr", None)
    if kbd_intr is not None:
        kbd_intr(-1)


# ---- paths: MicroPython has no os.path and no os.makedirs

def join(base: str, name: str) -> str:
    if not base or name.startswith("/"):
        return name
    return base.rstrip("/") + "/" + name if base != "/" else "/" + name


def file_size(path: str) -> int | None:
    """Size in bytes, or None when `path` does not exist."""
    try:
        return int(os.stat(path)[6])
    except OSError:
        return None


def is_dir(path: str) -> bool:
    try:
        return bool(os.stat(path)[0] & 0x4000)
    except OSError:
        return False


def makedirs(path: str) -> None:
    """mkdir -p: create `path` and every missing parent."""
    if not path or is_dir(path):
        return
    parent = path.rstrip("/").rpartition("/")[0]
    if parent and parent != path:
        makedirs(parent)
    try:
        os.mkdir(path)
    except OSError:
        if not is_dir(path):
            raise


def remove(path: str) -> None:
    """Delete a file if it exists."""
    try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
        os.remove(path)
    except OSError:
        pass


def replace(src: str, dst: str) -> None:
    """Rename `src` over `dst`: atomic on POSIX and littlefs. FAT refuses to rename onto
    an existing file, so there (only) the old file is removed first: not atomic."""
    try:
        os.rename(src, dst)
    except OSError:
        if file_size(dst) is None:
            raise
        os.remove(dst)
        os.rename(src, dst)


def sync_file(handle: Any) -> None:
    """Push written bytes to the device before a rename makes them visible."""
    handle.flush()
    fsync = getattr(os, "fsync", None)
    if fsync is not None and hasattr(handle, "fileno"):
        fsync(handle.fileno())


def log(msg: str) -> None:
    """A diagnostic line on stderr: never stdout, which is the board link on the unix port."""
    sys.stderr.write("agent: " + msg + "\n")
