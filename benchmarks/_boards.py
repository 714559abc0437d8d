"""Board processes for the board link benchmark: `firefly board sim` in TCP mode, a station with
board links and no radio, and the station's board API (codes, links, deploys, commands).

Owns process life cycles and API calls; measures nothing (board_link.py does).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from benchmarks._processes import ROOT, STOP_TIMEOUT_S, BenchmarkError, RadiolessStationProcess, wait_until

SIM_READY_TIMEOUT_S = 60.0  # 20 cold agents start in ~1 s here; a loaded 2-core machine takes longer
CONNECT_TIMEOUT_S = 60.0  # every link of a wave enrolled and authenticated (~1 s for 20 here)
CODES_PER_WAVE = 20  # the station keeps at most 20 unused codes live (station/boards/enrollment.py)
PORT_RANGE = (10000, 32000)  # below Linux's ephemeral ports (32768-60999): no client socket takes one


@dataclass
class BoardSimProcess:
    """`python -m station.boards.sim --tcp-base-port P`: board i listens on 127.0.0.1:P+i."""

    state_dir: Path
    count: int
    base_port: int
    codes: list[str] = field(default_factory=list)
    agent_config: dict[str, Any] = field(default_factory=dict)  # pre-written into each board's config.json
    process: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    def ports(self) -> list[int]:
        return [self.base_port + index for index in range(self.count)]

    def start(self) -> BoardSimProcess:
        for index in range(self.count):
            config = self.state_dir / f"board-{index}" / "config.json"
            config.parent.mkdir(parents=True, exist_ok=True)
            old = json.loads(config.read_text()) if config.exists() else {}
            config.write_text(json.dumps({**old, **self.agent_config}))
        command = [sys.executable, "-m", "station.boards.sim", "--count", str(self.count),
                   "--state-dir", str(self.state_dir), "--tcp-base-port", str(self.base_port), "--auth", "session"]
        for code in self.codes:
            command += ["--enroll-code", code]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                        stderr=(self.state_dir / "sim.log").open("ab"))
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_drain, args=(self.process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + SIM_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise BenchmarkError(f"board sim exited with {self.process.returncode}") from None
                continue
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "error":
                raise BenchmarkError(f"board sim failed: {event}")
            if event.get("event") == "ready":
                self.ready = event
                return self
        raise BenchmarkError("board sim did not print its ready line")

    def agent_pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        agents = self.agent_pids()
        process.send_signal(signal.SIGTERM)  # it stops its agents (5 s each at most, in parallel)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
        for pid in agents:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _drain(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def free_port_block(count: int) -> int:
    """A base port with `count` free ports above it (checked by binding each)."""
    for _ in range(50):
        base = random.randrange(*PORT_RANGE)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise BenchmarkError(f"no block of {count} free ports")


def write_station_config(tmp: Path, api_port: int, links: list[tuple[str, str]], **boards: float) -> Path:
    lines = [f'data_dir = "{tmp / "station-data"}"', 'log_level = "WARNING"', "[api]", f"port = {api_port}",
             "[boards]", "backoff_initial_s = 0.2", "backoff_max_s = 1.0"]
    lines += [f"{key} = {value}" for key, value in boards.items()]
    for name, url in links:
        lines += ["[[boards.links]]", f'name = "{name}"', f'url = "{url}"']
    path = tmp / "station.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class BoardStation(RadiolessStationProcess):
    """A station whose board API the benchmark drives."""

    def code(self) -> str:
        return str(self.post("/boards/enrollment-codes", {"profile": "unix-sim"})["code"])

    def links(self) -> list[dict[str, Any]]:
        return list(self.get("/boards", limit=1)["links"])

    def wait_connected(self, count: int, timeout: float = CONNECT_TIMEOUT_S) -> list[dict[str, Any]]:
        def connected() -> list[dict[str, Any]] | None:
            links = self.links()
            return links if sum(link["state"] == "connected" for link in links) >= count else None

        try:
            return wait_until(connected, timeout, f"{count} board links connected", interval=0.2)
        except BenchmarkError as exc:
            states = [link["state"] for link in self.links()]
            raise BenchmarkError(f"{exc}; link states {states}; log ends:\n{self.log_tail()}") from exc

    def post_bytes(self, endpoint: str, data: bytes, **params: Any) -> Any:
        assert self._client is not None
        response = self._client.post(endpoint, params=params, content=data,
                                     headers={"Content-Type": "application/octet-stream"})
        if response.status_code == 404 and "files" in endpoint:
            raise BenchmarkError("the station has no file deploy endpoint (POST /boards/{id}/files) yet")
        response.raise_for_status()
        return response.json()


def start_sims(station: BoardStation, sims: list[BoardSimProcess], already: int = 0) -> None:
    """Start each sim in turn; a sim whose boards are not enrolled yet gets fresh codes, and its
    boards must be connected before the next sim's codes are made (CODES_PER_WAVE live at most)."""
    total = already
    for sim in sims:
        sim.codes = []
        if not (sim.state_dir / "board-0" / "cert.bin").exists():
            if sim.count > CODES_PER_WAVE:
                raise BenchmarkError(f"a sim enrolls at most {CODES_PER_WAVE} boards at once")
            sim.codes = [station.code() for _ in range(sim.count)]
        sim.start()
        total += sim.count
        station.wait_connected(total)
