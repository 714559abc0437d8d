"""`scripts/flash-board`: put MicroPython (optional), the agent, the profile and the
enrollment settings on a board over its USB serial port, and print the board's id.

Every change to the board is an external command (esptool, mpremote) built as a list
first, so `--dry-run` prints exactly what a real run executes. Owns the step list, input
validation and exit codes (0 done, 1 a step failed, 2 bad input); it never talks to the
station and never prints the enrollment code (commands show it as ***).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO / "boards"
AGENT_DIR = REPO / "edge_agent"
ENTRY_DIR = REPO / "micropython"
EXIT_OK, EXIT_STEP_FAILED, EXIT_BAD_INPUT = 0, 1, 2
ESP32_FIRMWARE_OFFSET = "0x1000"  # the ESP32 (not -S2/-S3/-C3) bootloader starts here
ERASE_TIMEOUT_S = 120.0  # a 4 MiB chip erases in ~10 s; slow USB bridges take longer
WRITE_TIMEOUT_S = 300.0  # ~1.5 MiB at 115200-460800 baud, compressed
COPY_TIMEOUT_S = 600.0  # ~170 KB of agent source at mpremote's ~20 KB/s, with margin
CONFIGURE_TIMEOUT_S = 180.0  # first-boot key generation in pure MicroPython is slow on a board
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # station ids and codes: no quoting games
SKIP_NAMES = {"__pycache__", "tests", "test"}
BOARD_ID_MARKER = "FIREFLY_BOARD_ID="


class FlashError(Exception):
    """Root of flash-board failures."""


class BadInput(FlashError):
    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option, self.reason = option, reason


class StepFailed(FlashError):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"step '{step}' failed: {reason}")
        self.step, self.reason = step, reason


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    timeout_s: float
    secret: str = ""  # shown as *** when the command is printed

    def shown(self) -> str:
        text = " ".join(_quote(arg) for arg in self.argv)
        return text.replace(self.secret, "***") if self.secret else text


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[A-Za-z0-9_./:=@+-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class FlashPlan:
    profile_path: Path
    profile: dict[str, Any]
    port: str
    firmware: Path | None
    station_id: str
    enroll_code: str
    root: str  # the board's filesystem root ("/"; a host directory on the unix port)
    resume: bool  # mpremote `resume`: do not soft-reset (the unix port has no reset)

    @property
    def platform(self) -> str:
        return str(self.profile.get("platform", ""))

    def board_path(self, relative: str) -> str:
        return self.root.rstrip("/") + "/" + relative.lstrip("/")

    @property
    def state_dir(self) -> str:
        return self.board_path(str(self.profile.get("flash", {}).get("state_dir", "state")))


def tool(name: str) -> str:
    """The venv's copy of a command (beside this interpreter), else PATH, else the bare name."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name) or name


def resolve_profile(value: str) -> Path:
    candidates = [Path(value), BOARDS_DIR / f"{value}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.toml")))
    raise BadInput("--profile", f"no profile {value!r} (known: {known}, or a path to a .toml file)")


def make_plan(ns: argparse.Namespace) -> FlashPlan:
    profile_path = resolve_profile(ns.profile)
    try:
        profile = tomllib.loads(profile_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadInput("--profile", f"{profile_path} is not a readable TOML profile: {exc}") from exc
    if not Path(ns.port).exists():
        raise BadInput("--port", f"{ns.port} does not exist (is the board plugged in? see docs/flashing.md)")
    for option, value in (("--station-id", ns.station_id), ("--enroll-code", ns.enroll_code)):
        if not TOKEN_PATTERN.match(value):
            raise BadInput(option, "must be 1-64 characters of letters, digits and . _ : -")
    firmware = Path(ns.firmware) if ns.firmware else None
    plan = FlashPlan(profile_path, profile, ns.port, firmware, ns.station_id, ns.enroll_code,
                     ns.root, ns.resume or profile.get("platform") == "unix")
    if firmware is not None:
        if not firmware.is_file():
            raise BadInput("--firmware", f"{firmware} does not exist")
        expected = {"esp32": ".bin", "rp2": ".uf2"}.get(plan.platform)
        if expected is None:
            raise BadInput("--firmware", f"profile {profile_path.stem} ({plan.platform}) is not flashed with firmware")
        if firmware.suffix != expected:
            raise BadInput("--firmware", f"a {plan.platform} board takes a {expected} image, not {firmware.name}")
    return plan


def stage_files(plan: FlashPlan, stage: Path) -> None:
    """The board's files, laid out under `stage` as they will be under the board's root."""
    shutil.copytree(AGENT_DIR, stage / "lib" / "edge_agent",
                    ignore=lambda _dir, names: [n for n in names if n in SKIP_NAMES or n.endswith(".pyc")])
    shutil.copy2(ENTRY_DIR / "boot.py", stage / "boot.py")
    shutil.copy2(ENTRY_DIR / "main.py", stage / "main.py")
    shutil.copy2(plan.profile_path, stage / "board.toml")


def configure_script(plan: FlashPlan) -> str:
    """MicroPython run on the board: store the station id and enrollment code in the agent's
    config.json, then create the identity with the agent's own code and print its id."""
    values = {"lib": plan.board_path("lib"), "state": plan.state_dir, "profile": str(plan.profile.get("name", "")),
              "code": plan.enroll_code, "station": plan.station_id}
    return "\n".join([
        "import sys",
        f"v = {json.dumps(values)}",
        'sys.path.insert(0, v["lib"])',
        "from edge_agent.agent.storage import Storage, StorageError",
        "from edge_agent.agent.enrollment import ensure_identity",
        's = Storage(v["state"])',
        "s.ensure()",
        "try:\n    c = s.load_config()\nexcept StorageError:\n    c = {}",
        'c["enroll_token"] = v["code"]',
        'c["station_id"] = v["station"]',
        "s.save_config(c)",
        f'print("{BOARD_ID_MARKER}" + ensure_identity(s, v["profile"]).board_id)',
    ])


def mpremote(plan: FlashPlan, *args: str) -> list[str]:
    return [tool("mpremote"), "connect", plan.port, *(["resume"] if plan.resume else []), *args]


def firmware_steps(plan: FlashPlan) -> list[Step]:
    if plan.firmware is None or plan.platform != "esp32":
        return []
    esptool = [tool("esptool"), "--chip", "esp32", "--port", plan.port]
    return [Step("erase flash", [*esptool, "erase_flash"], ERASE_TIMEOUT_S),
            Step("write firmware", [*esptool, "write_flash", "-z", ESP32_FIRMWARE_OFFSET, str(plan.firmware)],
                 WRITE_TIMEOUT_S)]


def board_steps(plan: FlashPlan, stage: Path) -> list[Step]:
    return [
        Step("copy agent", mpremote(plan, "fs", "cp", "-r", f"{stage}/.", f":{plan.root}"), COPY_TIMEOUT_S),
        Step("configure", mpremote(plan, "exec", configure_script(plan)), CONFIGURE_TIMEOUT_S, plan.enroll_code),
    ]


def run_step(step: Step) -> str:
    print(f"== {step.name}", flush=True)
    try:
        done = subprocess.run(step.argv, capture_output=True, text=True, timeout=step.timeout_s, check=False)
    except FileNotFoundError as exc:
        raise StepFailed(step.name, f"{step.argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(step.name, f"no result within {step.timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise StepFailed(step.name, f"exit {done.returncode}: " + " | ".join(tail).replace(step.secret or "\0", "***"))
    return done.stdout


def parse_board_id(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(BOARD_ID_MARKER):
            return line[len(BOARD_ID_MARKER):].strip()
    raise StepFailed("configure", "the board did not report its id")


def rp2040_instruction(plan: FlashPlan) -> str:
    return (f"RP2040: hold BOOTSEL while plugging the board in, copy {plan.firmware} to the RPI-RP2 drive "
            "that appears (e.g. `cp FILE /media/$USER/RPI-RP2/`); the board reboots into MicroPython. "
            "Then run this command again without --firmware.")


def execute(plan: FlashPlan, dry_run: bool) -> int:
    if plan.firmware is not None and plan.platform == "rp2":
        print(rp2040_instruction(plan))
        return EXIT_OK
    with tempfile.TemporaryDirectory(prefix="flash-board-") as tmp:
        stage = Path(tmp)
        stage_files(plan, stage)
        steps = [*firmware_steps(plan), *board_steps(plan, stage)]
        if dry_run:
            for step in steps:
                print(f"[dry-run] {step.name}: {step.shown()}")
            return EXIT_OK
        output = ""
        for step in steps:
            output = run_step(step)
    print(f"board id: {parse_board_id(output)}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flash-board", description="Put the Firefly agent on a board.")
    add = parser.add_argument
    add("--profile", required=True, help="board profile: esp32, rp2040, ... or a .toml path")
    add("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0 or /dev/ttyACM0")
    add("--firmware", help="MicroPython image: .bin (esp32, written with esptool) or .uf2 (rp2040)")
    add("--station-id", required=True, help="the id of the station the board will enroll with")
    add("--enroll-code", required=True, help="one-time code from `firefly board code`")
    add("--root", default="/", help="the board's filesystem root (a host directory for the unix port)")
    add("--resume", action="store_true", help="no soft reset on connect (implied by the unix profile)")
    add("--dry-run", action="store_true", help="print every command and change nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        return execute(make_plan(ns), ns.dry_run)
    except BadInput as exc:
        print(f"flash-board: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StepFailed as exc:
        print(f"flash-board: {exc}", file=sys.stderr)
        return EXIT_STEP_FAILED
