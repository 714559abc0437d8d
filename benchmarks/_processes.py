"""Real processes for benchmarks: the radio simulator and the station daemon on loopback ports,
each with bounded waits, logs in files (never on the benchmark's own stdout) and a `stop()` that
ends the process, and any child it started, by process id.

Owns process life cycles only; must not measure anything (the benchmark scripts do).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
FIREFLY = str(Path(sys.executable).parent / "firefly")
READY_TIMEOUT_S = 20.0  # the simulator is ready in < 1 s, the station's API in ~2 s; 20 s means broken
STOP_TIMEOUT_S = 10.0  # the station stops its services in stages of a few seconds each
POLL_INTERVAL_S = 0.05
HTTP_TIMEOUT_S = 30.0  # a 1000-message batch commit takes well under a second

T = TypeVar("T")


class BenchmarkError(Exception):
    """A process did not start, answer or finish within its bound."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str,
               interval: float = POLL_INTERVAL_S) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise BenchmarkError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _stop_tree(process: subprocess.Popen[Any], graceful: bool) -> None:
    """SIGTERM (if graceful) then SIGKILL the process; then kill its children left behind by pid."""
    if process.poll() is not None:
        return
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if graceful:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)
    if process.poll() is None:
        process.kill()
        process.wait(STOP_TIMEOUT_S)
    for child in children:  # e.g. the demo's simulator, in its own session
        if child.is_running():
            child.kill()


@dataclass
class SimProcess:
    """`python -m station.mesh.sim` with its airtime model off; `record` lists what it delivered."""

    tmp: Path
    nodes: int = 4
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def record_path(self) -> Path:
        return self.tmp / f"sim-{self.port}.record.jsonl"

    @property
    def log_path(self) -> Path:
        return self.tmp / f"sim-{self.port}.log"

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> SimProcess:
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "station.mesh.sim", "--tcp", f"127.0.0.1:{self.port}",
                   "--nodes", str(self.nodes), "--no-airtime",
                   "--record", str(self.record_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        self.ready = self._read_ready_line()
        return self

    def _read_ready_line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()  # the simulator prints it within a second
            if not line:
                raise BenchmarkError(f"simulator exited with {self.process.wait()}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == "ready":
                return dict(message)
        raise BenchmarkError("simulator did not print its ready line")

    def node_ids(self) -> list[str]:
        return [node if isinstance(node, str) else node["id"] for node in self.ready.get("nodes", [])]

    def delivered_texts(self) -> list[str]:
        if not self.record_path.exists():
            return []
        lines = (json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip())
        return [line["text"] for line in lines if "text" in line]

    def stop(self) -> None:
        if self.process is not None:
            _stop_tree(self.process, graceful=False)


@dataclass
class StationProcess:
    """`firefly station run` with a config file, or `--demo` in a scratch working directory."""

    tmp: Path
    config: Path | None = None
    demo: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _client: httpx.Client | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def token_path(self) -> Path:
        if self.demo:
            return self.tmp / "var" / "demo" / "admin.token"
        return self.tmp / "station-data" / "admin.token"

    @property
    def log_path(self) -> Path:
        return self.tmp / "station.log"

    def start(self) -> StationProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("FIREFLY_")}
        env.update(XDG_CONFIG_HOME=str(self.tmp / "xdg"), FIREFLY_API__PORT=str(self.port))
        command = [FIREFLY, "station", "run"]
        command += ["--demo"] if self.demo else ["--config", str(self.config)]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=self.tmp)
        try:
            wait_until(self._token_ready, READY_TIMEOUT_S, "the station's API")
            self._client = httpx.Client(base_url=self.api, timeout=HTTP_TIMEOUT_S,
                                        headers={"Authorization": f"Bearer {self.token()}"})
            wait_until(self._radios_connected, READY_TIMEOUT_S, "the station's radio to connect")
        except BenchmarkError as exc:
            raise BenchmarkError(f"{exc}; station log ends:\n{self.log_tail()}") from exc
        return self

    def _token_ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BenchmarkError(f"station exited with {self.process.returncode}")
        if not self.token_path.exists():
            return False
        try:
            return httpx.get(f"{self.api}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def _radios_connected(self) -> bool:
        radios = self.get("/mesh/status")["radios"]
        return bool(radios) and all(radio["state"] == "connected" for radio in radios)

    def token(self) -> str:
        return self.token_path.read_text().strip()

    def get(self, path: str, **params: Any) -> Any:
        assert self._client is not None
        response = self._client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        assert self._client is not None
        response = self._client.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def child_pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.process is not None:
            _stop_tree(self.process, graceful=True)


# ---- MQTT peers: mosquitto, Node-RED, a station without radios -----------------------------
BROKER_READY_TIMEOUT_S = 10.0  # mosquitto listens within ~50 ms
NODE_RED_INSTALL_TIMEOUT_S = 240.0  # `npm install node-red@4` took 15-32 s here; 240 s means broken
NODE_RED_READY_TIMEOUT_S = 30.0  # Node-RED loads its runtime and connects in ~2-4 s


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class MosquittoProcess:
    """`mosquitto -c FILE` on a loopback port, anonymous, no persistence (RECIPES)."""

    tmp: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> MosquittoProcess:
        config = self.tmp / f"mosquitto-{self.port}.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                          "log_dest stderr\n")
        log = (self.tmp / f"mosquitto-{self.port}.log").open("ab")
        self.process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=log, stderr=log)
        wait_until(lambda: _port_open(self.port), BROKER_READY_TIMEOUT_S, "mosquitto to listen")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_tree(self.process, graceful=False)


def ensure_node_red(prefix: Path) -> float | None:
    """`npm install --prefix PREFIX node-red@4` unless already there; seconds taken, None if reused."""
    if (prefix / "node_modules" / "node-red" / "red.js").exists():
        return None
    prefix.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (prefix / "npm-install.log").open("ab") as log:
        try:
            subprocess.run(["npm", "install", "--prefix", str(prefix), "node-red@4", "--no-audit", "--no-fund"],
                           stdout=log, stderr=log, check=True, timeout=NODE_RED_INSTALL_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise BenchmarkError(f"npm install node-red failed ({exc}); see {prefix / 'npm-install.log'}") from exc
    return time.monotonic() - started


@dataclass
class NodeRedProcess:
    """Node-RED headless (no editor, no telemetry) running `flow`; ready once its MQTT broker
    node logs `Connected to broker`."""

    tmp: Path
    prefix: Path  # where node_modules/node-red is installed
    flow: list[dict[str, Any]]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def user_dir(self) -> Path:
        return self.tmp / "node-red"

    @property
    def log_path(self) -> Path:
        return self.tmp / "node-red.log"

    def start(self) -> NodeRedProcess:
        self.user_dir.mkdir(exist_ok=True)
        settings = self.user_dir / "settings.js"
        settings.write_text(
            'module.exports = {uiHost: "127.0.0.1", flowFile: "flows.json", credentialSecret: false, '
            "httpAdminRoot: false, telemetry: {enabled: false}, externalModules: {autoInstall: false}};\n")
        (self.user_dir / "flows.json").write_text(json.dumps(self.flow))
        red = self.prefix / "node_modules" / "node-red" / "red.js"
        command = ["node", str(red), "--userDir", str(self.user_dir), "--settings", str(settings),
                   "-p", str(self.port), "flows.json"]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, cwd=self.user_dir)
        try:
            wait_until(self._connected, NODE_RED_READY_TIMEOUT_S, "Node-RED to connect to the broker")
        except BenchmarkError as exc:
            raise BenchmarkError(f"{exc}; Node-RED log ends:\n{self.log_tail()}") from exc
        return self

    def _connected(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BenchmarkError(f"Node-RED exited with {self.process.returncode}")
        return "Connected to broker" in self.log_tail(100_000)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            _stop_tree(self.process, graceful=False)


@dataclass
class RadiolessStationProcess(StationProcess):
    """A station with no radio (driven over MQTT or its API): ready once its API answers."""

    def _radios_connected(self) -> bool:
        return True

    def wait_service(self, name: str, key: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until `/health` shows `services[name][key]` truthy (e.g. mqtt / connected)."""

        def ready() -> bool:
            return bool(self.get("/health")["services"].get(name, {}).get(key))

        wait_until(ready, timeout, f"the station's {name} {key}")

    def put(self, path: str, body: Any) -> Any:
        assert self._client is not None
        response = self._client.put(path, json=body)
        response.raise_for_status()
        return response.json()
