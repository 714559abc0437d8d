"""The modules meshtastic imports but the station never calls stay unimported in a running
station's process until something uses them, and then work as the real modules."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import station.daemon, station.mesh.service, station.cli.main
loaded = sorted(name for name in ("urllib3", "charset_normalizer", "idna", "certifi")
                if name in sys.modules)
assert not loaded, loaded
assert type(sys.modules["requests"]).__name__ == "DeferredModule"
assert type(sys.modules["tabulate"]).__name__ == "DeferredModule"

from meshtastic import mesh_interface  # took `tabulate` by name at its import
table = mesh_interface.tabulate([{"node": "!a1b2c3d4"}], headers="keys")
assert "!a1b2c3d4" in table, table
assert type(sys.modules["tabulate"]).__name__ == "module"

import requests
assert requests.codes.ok == 200 and "urllib3" in sys.modules
import meshtastic.util
assert meshtastic.util.requests.get is sys.modules["requests"].get
print("ok")
"""


def test_unused_meshtastic_imports_are_deferred_until_used() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
