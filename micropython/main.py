"""Board entry: runs the agent frozen into the firmware (micropython/manifest.py) with
the profile copied to flash as /board.toml; its [flash] state_dir and [link] transport
(a UART on esp32 and rp2040) apply. Put the files on a board with:

    mpremote cp micropython/boot.py :boot.py + cp micropython/main.py :main.py \\
        + cp boards/rp2040.toml :board.toml
"""

import machine

from edge_agent.agent import _port
from edge_agent.agent.cli import EXIT_CONFIG, run

PROFILE = "/board.toml"

code = run(["--profile", PROFILE])
if code == EXIT_CONFIG:
    # A bad profile or state dir: resetting would only fail again, in a loop. Stay at
    # the REPL so a person can look (the reason is on the console).
    _port.log("stopped: fix " + PROFILE + " or the state directory, then reset")
else:
    machine.reset()  # the link ended or the agent stopped: start clean
