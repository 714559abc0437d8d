"""`micropython -m edge_agent.agent` / `python -m edge_agent.agent`: see cli.py."""

import sys

from edge_agent.agent.cli import run

sys.exit(run(sys.argv[1:]))
