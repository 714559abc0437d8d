"""`python -m station.mesh.sim ...`: the simulator's command line."""

from __future__ import annotations

from station.mesh.sim.simulator import run

raise SystemExit(run())
