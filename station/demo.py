"""The demo station: embedded defaults (data in ./var/demo, API on 127.0.0.1:8080), the radio
simulator started as a child process and connected as the station's radio, and two simulated
boards (`firefly board sim`) connected as `[[boards.links]]`: enrolled with one-time codes on
the first run, authenticated with their certificates on later ones (state kept in var/demo).

The boards are served on loopback TCP (the sim's --tcp-base-port), not opened as serial ports:
pyserial flushes a port's input when it opens it, which would drop the hello (and the
enroll_request) an agent sends once at boot, before the boards service opens its links."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from station.boards.ca import BoardCA
from station.boards.enrollment import Enrollment
from station.boards.sim import ENROLLED_FILES, LINK_PREFIX, TCP_HOST
from station.bus import EventBus
from station.config import BoardsConfig, StationConfig, validate_config
from station.services import Service, ServiceState
from station.store import open_database

logger = logging.getLogger(__name__)

DEMO_DATA_DIR = Path("var/demo")
DEMO_SIM_PORT = 4403  # Meshtastic's stream port, so `meshtastic --host 127.0.0.1` works too
SIM_READY_TIMEOUT_S = 15.0  # the simulator prints its ready line within a second
SIM_STOP_TIMEOUT_S = 5.0
DEMO_BOARDS = 2
DEMO_BOARD_PROFILE = "unix-sim"  # boards/unix-sim.toml: the agents the board simulator runs
BOARD_SIM_READY_TIMEOUT_S = 45.0  # two cold MicroPython starts; the sim's own hello timeout is 15 s
BOARD_SIM_STOP_TIMEOUT_S = 10.0  # the board simulator stops its agents within 5 s


def free_port_range(count: int) -> int:
    """P such that 127.0.0.1:P to P+count-1 are free now (board i of the sim listens on P+i)."""
    while True:
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            try:
                for offset in range(1, count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(base: dict[str, Any], sim_port: int, board_base_port: int) -> StationConfig:
    raw: dict[str, Any] = {"data_dir": str(DEMO_DATA_DIR), **base}
    mesh = raw.setdefault("mesh", {})
    mesh["radios"] = [{"name": "sim", "url": f"tcp://127.0.0.1:{sim_port}"}]
    boards = raw.setdefault("boards", {})
    boards["links"] = [{"name": f"{LINK_PREFIX}{i}", "url": f"tcp://{TCP_HOST}:{board_base_port + i}"}
                       for i in range(DEMO_BOARDS)]
    return validate_config(raw)


class ChildProcess(Service):
    """A simulator as a supervised child process: started before the service that connects to
    it (ready once it prints a JSON `ready` line), stopped after it; stdout drained."""

    ready_timeout_s = SIM_READY_TIMEOUT_S
    child_stop_timeout_s = SIM_STOP_TIMEOUT_S

    def __init__(self) -> None:
        super().__init__()
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def on_line(self, event: dict[str, Any]) -> None:
        """Each JSON line the child prints after its ready line."""

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv(), stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the station only; it stops the child in order
        )
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(self.ready_timeout_s):
                while True:
                    line = await self._process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited before it was ready")
                    with contextlib.suppress(ValueError, AttributeError):
                        event = json.loads(line)
                        self.on_line(event)
                        if event.get("event") == "ready":
                            break
        except BaseException:
            await self.stop()  # never leave a half-started child behind
            raise
        # keep reading so a chatty simulator never blocks on a full pipe
        self._drain = asyncio.create_task(self._drain_output(self._process.stdout))
        self.health.state = ServiceState.RUNNING
        self.health.detail = {"pid": self._process.pid}

    async def _drain_output(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            logger.debug("%s said", self.name, extra={"line": line[:200].decode(errors="replace")})
            with contextlib.suppress(ValueError, AttributeError):
                self.on_line(json.loads(line))

    async def stop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), self.child_stop_timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            self.killed()

    def killed(self) -> None:
        """After the child was SIGKILLed: clean up what it could not."""


class SimulatorProcess(ChildProcess):
    """The radio simulator (started before the mesh service)."""

    name = "radio-sim"

    def __init__(self, port: int, data_dir: Path, extra_args: list[str] | None = None) -> None:
        super().__init__()
        self.port = port
        self._data_dir = data_dir
        self._args = extra_args or ["--nodes", "8", "--chatter", "45", "--position-interval", "20",
                                    "--telemetry-interval", "40"]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "station.mesh.sim", "--tcp", f"127.0.0.1:{self.port}", *self._args]

    async def start(self) -> None:
        await super().start()
        self.health.detail = {"tcp": f"127.0.0.1:{self.port}", **self.health.detail}


class BoardSimProcess(ChildProcess):
    """`firefly board sim --count 2` on TCP (started before the boards service): agents with
    --auth session; each board not yet enrolled gets a one-time code created here, in the
    station's store, before the boards service opens the links, so it enrolls at once."""

    name = "board-sim"
    ready_timeout_s = BOARD_SIM_READY_TIMEOUT_S
    child_stop_timeout_s = BOARD_SIM_STOP_TIMEOUT_S
    stop_timeout_s = BOARD_SIM_STOP_TIMEOUT_S + 5.0

    def __init__(self, config: BoardsConfig, data_dir: Path, base_port: int, count: int = DEMO_BOARDS) -> None:
        super().__init__()
        self._config, self._data_dir, self.base_port, self.count = config, data_dir, base_port, count
        self.state_dir = data_dir.resolve() / "boards-sim-state"
        self._codes: list[str] = []
        self._agents: dict[int, int] = {}  # board index -> agent pid, from the sim's JSON lines

    def unenrolled(self) -> int:
        return sum(not all((self.state_dir / f"board-{i}" / name).exists() for name in ENROLLED_FILES)
                   for i in range(self.count))

    def create_codes(self, count: int) -> list[str]:
        """`count` one-time codes through the same CA, store and Enrollment the boards service uses."""
        if count == 0:
            return []
        database = open_database(self._data_dir / "station.db")
        try:
            enrollment = Enrollment(database, EventBus(), BoardCA.open(self._data_dir), self._config.cert_valid_days)
            return [enrollment.create_code(DEMO_BOARD_PROFILE, self._config.enrollment_code_ttl_s, by="demo").code
                    for _ in range(count)]
        finally:
            database.close()

    def argv(self) -> list[str]:
        codes = [arg for code in self._codes for arg in ("--enroll-code", code)]
        return [sys.executable, "-m", "station.boards.sim", "--count", str(self.count), "--auth", "session",
                "--tcp-base-port", str(self.base_port), "--state-dir", str(self.state_dir), *codes]

    def on_line(self, event: dict[str, Any]) -> None:
        if event.get("event") in ("board_ready", "board_restarted") and isinstance(event.get("pid"), int):
            self._agents[int(event["index"])] = event["pid"]

    async def start(self) -> None:
        self._codes = self.create_codes(self.unenrolled())
        await super().start()
        self.health.detail = {"boards": self.count, "tcp": f"{TCP_HOST}:{self.base_port}",
                              "enrolling": len(self._codes), **self.health.detail}

    def killed(self) -> None:
        for pid in self._agents.values():  # the agents run in their own sessions: not killed with the sim
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
