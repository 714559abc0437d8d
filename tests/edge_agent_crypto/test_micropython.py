"""Runs micropython_vectors.py on the real MicroPython unix port and checks every
value against CPython's hashlib/hmac and cryptography's Ed25519."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.edge_agent_crypto import micropython_vectors as vectors

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("micropython_vectors.py")
MICROPYTHON = Path(sys.executable).with_name("micropython")
MICROPYTHON_TIMEOUT_S = 120.0  # the unix port needs ~0.2 s; a loaded CI box gets a wide margin


def _run_micropython() -> tuple[dict[str, str], float]:
    env = {**os.environ, "MICROPYPATH": f"{REPO_ROOT}:.frozen"}
    started = time.monotonic()
    result = subprocess.run(
        [str(MICROPYTHON), str(SCRIPT)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=MICROPYTHON_TIMEOUT_S,
        check=False,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    values = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    return values, took


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no micropython unix port in this venv")
def test_micropython_port_agrees_with_cpython() -> None:
    values, took = _run_micropython()
    theirs = Ed25519PrivateKey.from_private_bytes(vectors.SEED)
    public = theirs.public_key().public_bytes_raw()

    assert values["public"] == public.hex()
    assert values["signature"] == theirs.sign(vectors.MESSAGE).hex()
    theirs.public_key().verify(bytes.fromhex(values["signature"]), vectors.MESSAGE)
    assert values["verify_ok"] == "True"
    assert values["verify_tampered"] == "False"
    assert values["verify_other_message"] == "False"
    assert values["sha512"] == hashlib.sha512(vectors.HASH_INPUT).hexdigest()
    assert values["hmac"] == hmac.new(vectors.MAC_KEY, vectors.MAC_INPUT, "sha256").hexdigest()
    for length in vectors.EDGE_LENGTHS:
        message = bytes(i % 251 for i in range(length))
        seed = bytes([length % 256]) * 32
        assert values[f"signature_{length}"] == Ed25519PrivateKey.from_private_bytes(seed).sign(message).hex()
        assert values[f"sha512_{length}"] == hashlib.sha512(message).hexdigest()
        assert values[f"hmac_{length}"] == hmac.new(message, vectors.MESSAGE, "sha256").hexdigest()
    timings = {name: int(value) for name, value in values.items() if name.startswith("time_")}
    print(f"micropython run {took:.2f} s; timings (us): {timings}")
