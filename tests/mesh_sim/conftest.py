"""The radio simulator as a real subprocess for tests, plus a raw stream-protocol client.

Ports: the simulator listens on 127.0.0.1:0 and reports the port it got in its ready
line, so parallel workers (pytest-xdist) never race for a port picked in advance.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2

from station.mesh.sim.framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0  # a cold interpreter importing protobufs on a busy 2-core runner
STOP_TIMEOUT_S = 10.0


@dataclass
class RunningSim:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    record: Path
    stderr_path: Path

    @property
    def port(self) -> int:
        return int(str(self.ready["tcp"]).rsplit(":", 1)[1])

    @property
    def node_num(self) -> int:
        return int(self.ready["node_num"])

    def node(self, index: int) -> dict[str, Any]:
        return dict(self.ready["nodes"][index])

    def delivered(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
                raise AssertionError("simulator ignored SIGTERM") from None
        return int(self.process.returncode)


def read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffered = b""
    while b"\n" not in buffered:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no ready line within {timeout} s")
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"simulator exited with {process.wait(STOP_TIMEOUT_S)}")
            buffered += chunk
    event = json.loads(buffered.split(b"\n", 1)[0])
    assert event["event"] == "ready", event
    return dict(event)


StartSim = Callable[..., RunningSim]


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[StartSim]:
    started: list[RunningSim] = []

    def start(*args: str, tcp: str | None = "127.0.0.1:0") -> RunningSim:
        index = len(started)
        record = tmp_path / f"record-{index}.jsonl"
        stderr_path = tmp_path / f"sim-{index}.log"
        command = [sys.executable, "-m", "station.mesh.sim", "--record", str(record), *args]
        command += ["--no-tcp"] if tcp is None else ["--tcp", tcp]
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT)
        sim = RunningSim(process, {}, record, stderr_path)
        started.append(sim)
        sim.ready = read_ready_line(process, READY_TIMEOUT_S)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            if sim.process.poll() is None:
                sim.process.kill()
                sim.process.wait(STOP_TIMEOUT_S)
            if sim.process.stdout is not None:
                sim.process.stdout.close()


@dataclass
class RawClient:
    """Speaks the stream protocol with bare frames, to check what the library hides."""

    sock: socket.socket
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    inbox: list[Any] = field(default_factory=list)

    @classmethod
    def connect(cls, port: int) -> RawClient:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        return cls(sock)

    def send(self, message: Any) -> None:
        self.sock.sendall(encode_frame(message.SerializeToString()))

    def receive_until(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.inbox):
                if predicate(message):
                    return self.inbox.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("expected FromRadio did not arrive")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("simulator closed the connection")
            for payload in self.decoder.feed(data):
                message = mesh_pb2.FromRadio()
                message.ParseFromString(payload)
                self.inbox.append(message)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_client() -> Iterator[Callable[[int], RawClient]]:
    clients: list[RawClient] = []

    def connect(port: int) -> RawClient:
        client = RawClient.connect(port)
        clients.append(client)
        return client

    try:
        yield connect
    finally:
        for client in clients:
            client.close()
