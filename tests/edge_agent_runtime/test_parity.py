"""parity.py under MicroPython and CPython must print the same lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("parity.py")
MICROPYTHON = Path(sys.executable).with_name("micropython")
RUN_TIMEOUT_S = 60.0  # well under a second normally


def run(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(argv, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr or done.stdout
    return done.stdout.splitlines()


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no micropython unix port in this venv")
def test_agent_pieces_agree_on_both_interpreters(tmp_path: Path) -> None:
    args = [str(SCRIPT), str(REPO / "boards"), str(tmp_path / "scratch.bin")]
    on_micropython = run([str(MICROPYTHON), *args], {"MICROPYPATH": f"{REPO}:.frozen"})
    on_cpython = run([sys.executable, *args], {"PYTHONPATH": str(REPO)})
    assert len(on_cpython) == 8 + 6 + 1 + 5 + 1
    assert on_micropython == on_cpython
