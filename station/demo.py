"""The demo station: embedded defaults (data in ./var/demo, API on 127.0.0.1:8080) and the
radio simulator started as a child process and connected as the station's radio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from station.config import StationConfig, validate_config
from station.services import Service, ServiceState

logger = logging.getLogger(__name__)

DEMO_DATA_DIR = Path("var/demo")
DEMO_SIM_PORT = 4403  # Meshtastic's stream port, so `meshtastic --host 127.0.0.1` works too
SIM_READY_TIMEOUT_S = 15.0  # the simulator prints its ready line within a second
SIM_STOP_TIMEOUT_S = 5.0


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(base: dict[str, Any], sim_port: int) -> StationConfig:
    raw: dict[str, Any] = {"data_dir": str(DEMO_DATA_DIR), **base}
    mesh = raw.setdefault("mesh", {})
    mesh["radios"] = [{"name": "sim", "url": f"tcp://127.0.0.1:{sim_port}"}]
    return validate_config(raw)


class SimulatorProcess(Service):
    """The radio simulator as a supervised child process (started before the mesh service)."""

    name = "radio-sim"

    def __init__(self, port: int, data_dir: Path, extra_args: list[str] | None = None) -> None:
        super().__init__()
        self.port = port
        self._data_dir = data_dir
        self._args = extra_args or ["--nodes", "8", "--chatter", "45", "--position-interval", "20",
                                    "--telemetry-interval", "40"]
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "station.mesh.sim", "--tcp", f"127.0.0.1:{self.port}", *self._args,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the station only; it stops the sim in order
        )
        assert self._process.stdout is not None
        async with asyncio.timeout(SIM_READY_TIMEOUT_S):
            while True:
                line = await self._process.stdout.readline()
                if not line:
                    raise RuntimeError("radio simulator exited before it was ready")
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("event") == "ready":
                        break
        # keep reading so a chatty simulator never blocks on a full pipe
        self._drain = asyncio.create_task(self._drain_output(self._process.stdout))
        self.health.state = ServiceState.RUNNING
        self.health.detail = {"tcp": f"127.0.0.1:{self.port}", "pid": self._process.pid}

    async def _drain_output(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            logger.debug("radio simulator said", extra={"line": line[:200].decode(errors="replace")})

    async def stop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), SIM_STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
