"""scripts/flash-board against a MicroPython unix port behind a pty (its filesystem is the
host's, so --root puts the board's files in a temp directory), plus dry runs and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.boards_sim.conftest import REPO

SCRIPT = REPO / "scripts" / "flash-board"
RUN_TIMEOUT_S = 120.0  # copying ~170 KB through mpremote takes about 10 s


def flash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)


def agent_sources() -> list[Path]:
    return [p.relative_to(REPO) for p in (REPO / "edge_agent").rglob("*.py") if "__pycache__" not in p.parts]


@pytest.mark.integration
def test_flashes_the_agent_onto_a_unix_port_board(unix_board: Path, tmp_path: Path) -> None:
    root = tmp_path / "board"
    done = flash("--profile", "unix-sim", "--port", str(unix_board), "--root", str(root),
                 "--station-id", "st-field-1", "--enroll-code", "K7Q2-9XWP")

    assert done.returncode == 0, done.stderr
    for source in agent_sources():
        assert (root / "lib" / source).read_bytes() == (REPO / source).read_bytes(), source
    assert (root / "boot.py").read_bytes() == (REPO / "micropython" / "boot.py").read_bytes()
    assert (root / "main.py").read_bytes() == (REPO / "micropython" / "main.py").read_bytes()
    assert (root / "board.toml").read_bytes() == (REPO / "boards" / "unix-sim.toml").read_bytes()
    assert not list(root.rglob("__pycache__"))
    config = json.loads((root / "state" / "config.json").read_text())
    assert config == {"enroll_token": "K7Q2-9XWP", "station_id": "st-field-1"}
    identity = json.loads((root / "state" / "identity.json").read_text())
    assert done.stdout.splitlines()[-1] == f"board id: {identity['board_id']}"
    assert identity["board_id"].startswith("unix-sim-")
    assert "K7Q2-9XWP" not in done.stdout + done.stderr


def test_dry_run_prints_every_command_and_changes_nothing(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB0"
    port.write_bytes(b"")
    firmware = tmp_path / "ESP32_GENERIC-v1.24.bin"
    firmware.write_bytes(b"\xe9" * 64)
    done = flash("--profile", "esp32", "--port", str(port), "--firmware", str(firmware),
                 "--station-id", "st-1", "--enroll-code", "SECRET-1", "--dry-run")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    steps = [line.split(":")[0] for line in lines if line.startswith("[dry-run]")]
    assert steps == ["[dry-run] erase flash", "[dry-run] write firmware", "[dry-run] copy agent",
                     "[dry-run] configure"]
    assert f"--chip esp32 --port {port} erase_flash" in lines[0]
    assert f"write_flash -z 0x1000 {firmware}" in lines[1]
    assert f"mpremote connect {port} fs cp -r" in lines[2] and lines[2].endswith(":/")
    assert "SECRET-1" not in done.stdout and '"code": "***"' in done.stdout
    assert port.read_bytes() == b"" and sorted(tmp_path.iterdir()) == sorted([port, firmware])


def test_rp2040_firmware_is_an_instruction(tmp_path: Path) -> None:
    port, firmware = tmp_path / "ttyACM0", tmp_path / "RPI_PICO.uf2"
    port.write_bytes(b"")
    firmware.write_bytes(b"UF2\n")
    done = flash("--profile", "rp2040", "--port", str(port), "--firmware", str(firmware),
                 "--station-id", "st-1", "--enroll-code", "C1")
    assert done.returncode == 0
    assert "BOOTSEL" in done.stdout and "RPI-RP2" in done.stdout


@pytest.mark.parametrize(("args", "option"), [
    (["--profile", "no-such-board"], "--profile"),
    (["--profile", "esp32", "--port-missing"], "--port"),
    (["--profile", "esp32", "--enroll-code-bad"], "--enroll-code"),
    (["--profile", "unix-sim", "--firmware-wrong"], "--firmware"),
])
def test_bad_input_exits_2_naming_the_option(tmp_path: Path, args: list[str], option: str) -> None:
    port = tmp_path / "tty"
    port.write_bytes(b"")
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(b"x")
    argv = [args[0], args[1], "--port", str(port), "--station-id", "st-1", "--enroll-code", "C1"]
    if "--port-missing" in args:
        argv[3] = str(tmp_path / "ttyUSB9")
    if "--enroll-code-bad" in args:
        argv[-1] = "code with spaces; rm -rf /"
    if "--firmware-wrong" in args:
        argv += ["--firmware", str(firmware)]
    done = flash(*argv)
    assert done.returncode == 2
    assert f"flash-board: {option}:" in done.stderr


def test_a_port_that_is_not_a_board_fails_the_copy_step(tmp_path: Path) -> None:
    port = tmp_path / "not-a-tty"
    port.write_bytes(b"")
    done = flash("--profile", "unix-sim", "--port", str(port), "--root", str(tmp_path / "board"),
                 "--station-id", "st-1", "--enroll-code", "C1")
    assert done.returncode == 1
    assert "step 'copy agent' failed" in done.stderr
