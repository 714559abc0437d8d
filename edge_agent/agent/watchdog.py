"""The agent's watchdog: reboot a board whose event loop, or whose link loop, stalls.

Three layers, because a check that runs in the loop cannot see the loop stop:
- the check task wakes every `check_ms`; if it wakes more than `limit` late, the loop
  was blocked (a runaway handler), and if the runtime has not fed it for more than
  `limit` while serving, the link loop is stuck (heartbeats stopped): either way it
  reboots (machine.reset() on a board, exit EXIT_WATCHDOG on the unix port);
- on a board, machine.WDT, fed only by that check task, resets a loop blocked for good
  (its timeout is capped at HARDWARE_MAX_MS, the rp2040's limit);
- on the unix port and CPython, a guard thread ends the process when the check task
  itself has not run for GUARD_FACTOR x limit.
Owns stall detection only; what counts as progress is the runtime's call to feed().
"""

import asyncio
import os
import time

from edge_agent.agent import _port

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

CHECK_MS_MAX = 1000  # the check task's period, shortened for small limits (limit / 4)
HARDWARE_MAX_MS = 8000  # the rp2040's WDT cannot wait longer than 8.3 s; the esp32's can
GUARD_FACTOR = 2  # the guard thread waits twice the limit: the in-loop check reports first
GUARD_POLL_MS = 250


class Watchdog:
    def __init__(self, limit_s: float, on_stall: Callable[[str, int], None], guard: bool = True) -> None:
        """`guard=False` leaves out the guard thread: for an agent running inside a test
        process, which that thread would end."""
        self.limit_ms = int(limit_s * 1000)
        self._guard_wanted = guard
        self.check_ms = max(10, min(CHECK_MS_MAX, self.limit_ms // 4))
        self._on_stall = on_stall
        self._fed = _port.ticks_ms()
        self._checked = [_port.ticks_ms()]  # shared with the guard thread
        self._guarding = [False]  # cleared when the check task ends: the guard thread stops
        self._watching_link = False
        self._hardware: Any = None
        self.max_lag_ms = 0  # the worst loop delay seen, for diagnostics

    def feed(self) -> None:
        """The link loop made progress (a heartbeat went out)."""
        self._fed = _port.ticks_ms()

    def watch_link(self, on: bool) -> None:
        """Check link progress only while serving: not while reconnecting or enrolling."""
        self._watching_link = on
        self.feed()

    def _start_hardware(self) -> None:
        wdt = getattr(_port.MACHINE, "WDT", None)
        if wdt is not None:
            self._hardware = wdt(timeout=min(self.limit_ms, HARDWARE_MAX_MS))

    async def run(self) -> None:
        """The check task; runs until cancelled or until it reboots the board."""
        self._start_hardware()
        if self._hardware is None and self._guard_wanted:
            self._start_guard()
        try:
            while True:
                before = _port.ticks_ms()
                await asyncio.sleep(self.check_ms / 1000)
                now = _port.ticks_ms()
                self._checked[0] = now
                lag = _port.ticks_diff(now, before) - self.check_ms
                self.max_lag_ms = max(self.max_lag_ms, lag)
                if lag > self.limit_ms:
                    self._on_stall("event loop blocked", lag)
                elif self._watching_link and _port.ticks_diff(now, self._fed) > self.limit_ms:
                    self._on_stall("link loop stalled", _port.ticks_diff(now, self._fed))
                elif self._hardware is not None:
                    self._hardware.feed()
        finally:
            self._guarding[0] = False

    def _start_guard(self) -> None:
        thread = _port.optional_module("_thread")
        if thread is not None and self.limit_ms > 0:
            self._checked[0] = _port.ticks_ms()
            self._guarding[0] = True
            thread.start_new_thread(self._guard, ())

    def _guard(self) -> None:
        """Runs in its own thread: the last resort for a loop that never comes back."""
        while self._guarding[0]:
            time.sleep(GUARD_POLL_MS / 1000)
            stalled = _port.ticks_diff(_port.ticks_ms(), self._checked[0])
            if self._guarding[0] and stalled > GUARD_FACTOR * self.limit_ms:
                _port.log(f"watchdog: event loop blocked for {stalled} ms, killing the process")
                _kill_process()
                return


def _kill_process() -> None:
    exit_now = getattr(os, "_exit", None)
    if exit_now is not None:  # CPython
        exit_now(_port.EXIT_WATCHDOG)
    # The unix port cannot end its process from a thread (sys.exit ends only the thread,
    # exceptions in micropython.schedule callbacks are swallowed): ask the shell, whose
    # parent is this process, to kill it. Exit status: SIGKILL rather than EXIT_WATCHDOG.
    os.system("kill -9 $PPID")  # noqa: S605 - a fixed command line, no input reaches it
