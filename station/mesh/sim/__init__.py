"""Radio simulator: a Meshtastic device and the mesh around it, speaking the stream API over
TCP and a pseudo-terminal so the unmodified `meshtastic` library (and the station) connect
to it. Run `python -m station.mesh.sim --help`; `firefly radio sim` calls `run()`.

Public surface: `run(argv) -> int`, `serve(options)`, `SimOptions`, `parse_options`.
"""

from __future__ import annotations

from station.mesh.sim.errors import SimError
from station.mesh.sim.options import SimOptions, parse_options
from station.mesh.sim.simulator import run, serve

__all__ = ["SimError", "SimOptions", "parse_options", "run", "serve"]
