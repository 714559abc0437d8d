"""The board agent: runs unchanged on MicroPython (boards, the unix port) and CPython.

An asyncio loop that links a board to the station over stdio, TCP or a UART, speaks
edge_agent.protocol, enrolls on first boot, sends heartbeats, telemetry and log lines,
answers commands, receives files and reboots a stalled loop. Entry point: cli.run(argv)
(`micropython -m edge_agent.agent --profile boards/unix-sim.toml ...`). This module stays
import-light: a board imports only what its profile uses.
"""

AGENT_VERSION = "0.1.0"
