"""Real processes for integration tests: the radio simulator, the station daemon and the CLI,
on loopback ports, each with bounded waits and killed in `finally`/teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._processes import free_port
from benchmarks._processes import wait_until as wait_for

ROOT = Path(__file__).resolve().parent.parent
FIREFLY = str(Path(sys.executable).parent / "firefly")
READY_TIMEOUT_S = 45.0  # a cold start imports fastapi and meshtastic; slow on a loaded 2-core runner


@dataclass
class Sim:
    """`firefly radio sim` as a subprocess; `record` lists what it delivered into the mesh."""

    tmp: Path
    args: list[str] = field(default_factory=list)
    port: int = 0  # 0: the simulator picks a free port and reports it in its ready line
    pty_link: Path | None = None
    process: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def record_path(self) -> Path:
        return self.tmp / f"sim-record-{id(self)}.jsonl"

    @property
    def url(self) -> str:
        if self.pty_link is not None:
            return f"serial://{self.pty_link}"
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> Sim:
        command = [sys.executable, "-m", "station.mesh.sim", "--tcp", f"127.0.0.1:{self.port}",
                   "--record", str(self.record_path), *self.args]
        if self.pty_link is not None:
            command += ["--pty", "--pty-link", str(self.pty_link)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"simulator exited with {self.process.wait()}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == "ready":
                self.ready = message
                self.port = int(str(message["tcp"]).rsplit(":", 1)[1])
                return self
        raise AssertionError("simulator did not get ready")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def node_ids(self) -> list[str]:
        return [n if isinstance(n, str) else n["id"] for n in self.ready.get("nodes", [])]

    def delivered(self) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


FAST_OUTBOX = {
    "min_text_interval_s": 0.0, "ack_timeout_s": 5.0, "retry_delay_s": 0.2, "max_attempts": 3,
}
FAST_LINK = {
    "connect_timeout_s": 5.0, "health_interval_s": 0.5, "health_timeout_s": 3.0,
    "backoff_initial_s": 0.2, "backoff_max_s": 1.0,
}


@dataclass
class Station:
    """`firefly station run --config` as a subprocess, with a CLI runner bound to it."""

    tmp: Path
    radios: list[tuple[str, str]]
    outbox: dict[str, Any] = field(default_factory=lambda: dict(FAST_OUTBOX))
    link: dict[str, Any] = field(default_factory=lambda: dict(FAST_LINK))
    port: int = field(default_factory=free_port)
    extra_toml: str = ""  # more config sections, appended as they are
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp / "station-data"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        lines = [f'data_dir = "{self.data_dir}"', 'log_level = "INFO"', "[api]", f"port = {self.port}"]
        lines += ["[mesh.outbox]", *(f"{k} = {json.dumps(v)}" for k, v in self.outbox.items())]
        lines += ["[mesh.link]", *(f"{k} = {json.dumps(v)}" for k, v in self.link.items())]
        for name, url in self.radios:
            lines += ["[[mesh.radios]]", f'name = "{name}"', f'url = "{url}"']
        path = self.tmp / "station.toml"
        path.write_text("\n".join(lines) + "\n" + self.extra_toml)
        return path

    def env(self) -> dict[str, str]:
        return {**os.environ, "XDG_CONFIG_HOME": str(self.tmp / "xdg"), "FIREFLY_API_URL": self.api,
                "FIREFLY_TOKEN_FILE": str(self.data_dir / "admin.token")}

    def start(self, wait_connected: bool = True) -> Station:
        config = self.write_config()
        log = (self.tmp / "station.log").open("ab")
        self.process = subprocess.Popen([FIREFLY, "station", "run", "--config", str(config)],
                                        stdout=log, stderr=log, env=self.env(), cwd=self.tmp)
        wait_for(self._healthy, READY_TIMEOUT_S, "the station API")
        if wait_connected:
            self.wait_radios_connected()
        return self

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"station exited with {self.process.returncode}: {self.log()[-2000:]}")
        try:
            return httpx.get(f"{self.api}/api/v1/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def wait_radios_connected(self, timeout: float = 20.0) -> None:
        def connected() -> bool:
            radios = self.get("/mesh/status")["radios"]
            return all(r["state"] == "connected" for r in radios)

        wait_for(connected, timeout, "radios connected")

    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.api}/api/v1{path}", params=params, timeout=10.0,
                             headers={"Authorization": f"Bearer {self.token()}"})
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.api}/api/v1{path}", json=body, timeout=10.0,
                          headers={"Authorization": f"Bearer {self.token()}"})

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FIREFLY, *args], capture_output=True, text=True, env=self.env(),
                              timeout=timeout, check=False)

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError("station did not stop on SIGTERM") from None
        return self.process.returncode

    def log(self) -> str:
        path = self.tmp / "station.log"
        return path.read_text(errors="replace") if path.exists() else ""


