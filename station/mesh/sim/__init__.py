"""Radio simulator: a Meshtastic device and the mesh around it, speaking the stream API over
TCP and a pseudo-terminal so the unmodified `meshtastic` library (and the station) connect
to it. Run `python -m station.mesh.sim --help`; `firefly radio sim` calls `run()`.

Public surface: `run(argv) -> int` (the command line), `serve(options)` (runs until
cancelled), `serve_until_signal(options)` (until SIGTERM/SIGINT), `SimOptions`,
`parse_options`, `build_parser`.
"""

from __future__ import annotations

from station.mesh.sim.errors import SimError
from station.mesh.sim.options import SimOptions, build_parser, parse_options
from station.mesh.sim.simulator import run, serve, serve_until_signal

__all__ = ["SimError", "SimOptions", "build_parser", "parse_options", "run", "serve", "serve_until_signal"]
