"""Agent pieces that must behave the same on MicroPython and CPython: profile reading,
option merging, simulated sensors, path checks, file hashing. test_parity.py runs this
under both interpreters and compares the lines. MicroPython-safe syntax only."""

import json
import os
import sys

from edge_agent.agent import config
from edge_agent.agent.files import PathRefused, safe_relative_path, sha256_file
from edge_agent.agent.profile import ProfileError, load_profile, loads
from edge_agent.agent.sensors import SimulatedSensors

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass


def canonical(value: Any) -> str:
    """JSON with sorted keys (MicroPython's json.dumps has no sort_keys)."""
    if isinstance(value, dict):
        return "{" + ", ".join(json.dumps(k) + ": " + canonical(value[k]) for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(canonical(item) for item in value) + "]"
    return json.dumps(value)


boards = sys.argv[1]
for name in sorted(os.listdir(boards)):
    profile = load_profile(boards + "/" + name)
    print("profile", name, canonical(profile.link), canonical(profile.flash), canonical(profile.agent))
    print("options", name, canonical(config.merge(profile.agent, {"heartbeat_s": 1, "watchdog_s": 2.0, "x": 1})))

for text in ("a = [1, 2.5, 'x', true]", "a = 0x1F_FF", "a = 1e-3", "a = 'x' # c", "a.b = 1", "a = 01"):
    try:
        print("toml", canonical(loads(text)))
    except ProfileError as exc:
        print("toml refused", exc.line)

sensors = SimulatedSensors(7)
print("sensors", canonical([[sensors.read("temperature"), sensors.read("battery")] for _ in range(50)]))

for path in ("/lib/a.py", "a//b", "../x", ".git/x", "a/./b"):
    try:
        print("path", safe_relative_path(path))
    except PathRefused:
        print("path refused", path)

scratch = sys.argv[2]
with open(scratch, "wb") as handle:
    handle.write(bytes(i % 251 for i in range(5000)))
print("sha256", sha256_file(scratch).hex())
