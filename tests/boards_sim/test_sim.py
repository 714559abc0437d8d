"""`firefly board sim`: real MicroPython agents on ptys, supervised and stopped cleanly."""

from __future__ import annotations

import os
import select
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from edge_agent.protocol import FrameDecoder, decode_message

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_three_boards_say_hello_and_stop_on_sigterm(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("--count", "3", "--state-dir", str(tmp_path / "state"), "--link-dir", str(tmp_path / "dev"))
    boards = [sim.expect("board_ready") for _ in range(3)]
    ready = sim.expect("ready")

    assert sorted(b["index"] for b in boards) == [0, 1, 2]
    assert ready["count"] == 3
    assert len({b["board_id"] for b in boards}) == 3  # decoded from each agent's hello
    for board in boards:
        link = Path(board["path"])
        assert link == tmp_path / "dev" / f"board-sim-{board['index']}"
        assert os.readlink(link) == board["tty"]
        assert board["board_id"].startswith("unix-sim-")
        assert 1000 < board["rss_kb"] < 64_000  # a unix-port agent is about 13 MB
        assert alive(board["pid"])
    seeds = {(tmp_path / "state" / f"board-{i}" / "config.json").read_text() for i in range(3)}
    assert len(seeds) == 3  # distinct sensor seeds

    assert sim.terminate() == 0
    assert sim.expect("stopped")["restarts"] == 0
    assert not any(alive(board["pid"]) for board in boards)
    assert not any((tmp_path / "dev" / f"board-sim-{i}").is_symlink() for i in range(3))


def test_a_killed_agent_is_restarted(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("--count", "2", "--state-dir", str(tmp_path))
    first = [sim.expect("board_ready") for _ in range(2)]
    sim.expect("ready")
    victim = first[0]

    os.kill(victim["pid"], signal.SIGKILL)
    exited = sim.expect("board_exited", index=victim["index"])
    restarted = sim.expect("board_restarted", index=victim["index"])

    assert exited["code"] == -signal.SIGKILL
    assert exited["restarts"] == restarted["restarts"] == 1
    assert restarted["pid"] != victim["pid"] and alive(restarted["pid"])
    assert alive(first[1]["pid"])  # the other board was left alone
    assert sim.terminate() == 0
    assert sim.expect("stopped")["restarts"] == 1
    assert not alive(restarted["pid"]) and not alive(first[1]["pid"])


def test_bad_count_is_a_usage_error(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("--count", "0", "--state-dir", str(tmp_path))
    assert sim.process.wait(30) == 2


def read_messages(recv: Callable[[int], bytes], count: int) -> list[dict[str, Any]]:
    """The next `count` decoded messages; `recv` must be bounded (a socket timeout, select)."""
    decoder, messages = FrameDecoder(), []
    while len(messages) < count:
        data = recv(4096)
        assert data, "the board's end closed"
        messages.extend(decode_message(body) for body in decoder.feed(data))
    return messages


def test_a_station_opening_the_pty_after_ready_reads_the_hello(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("--count", "1", "--state-dir", str(tmp_path))
    board = sim.expect("board_ready")
    sim.expect("ready")
    fd = os.open(board["path"], os.O_RDWR | os.O_NOCTTY)
    try:
        def recv(size: int) -> bytes:
            assert select.select([fd], [], [], 30)[0], "nothing from the board within 30 s"
            return os.read(fd, size)

        first = read_messages(recv, 1)[0]
    finally:
        os.close(fd)
    assert first["t"] == "hello" and first["board_id"] == board["board_id"]
    assert sim.terminate() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_mode_bridges_the_pty_to_one_client(start_sim: Any, tmp_path: Path) -> None:
    port = free_port()
    sim = start_sim("--count", "1", "--state-dir", str(tmp_path), "--tcp-base-port", str(port))
    board = sim.expect("board_ready")
    sim.expect("ready")
    assert board["path"] == f"tcp://127.0.0.1:{port}"
    assert not (tmp_path / "board-sim-0").exists()

    with socket.create_connection(("127.0.0.1", port), timeout=30) as station:
        first = read_messages(station.recv, 1)[0]
        assert first["t"] == "hello" and first["board_id"] == board["board_id"]
        os.kill(board["pid"], signal.SIGKILL)  # the restarted agent says hello to whoever holds the cable
        sim.expect("board_restarted", index=0)
        hello = next(m for m in read_messages(station.recv, 3) if m["t"] == "hello")
    assert hello["board_id"] == board["board_id"]
    assert sim.terminate() == 0


def test_no_hello_in_time_fails_the_start_and_stops_every_agent(start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("--count", "2", "--state-dir", str(tmp_path), "--hello-timeout", "0.001")
    error = sim.expect("error")
    assert "no hello within" in error["reason"]
    assert sim.process.wait(30) == 1
    assert not list(tmp_path.glob("board-sim-*"))
