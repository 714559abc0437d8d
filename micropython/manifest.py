# ruff: noqa: F821 - include() and package() are defined by MicroPython's makemanifest, which runs this file
"""Freeze manifest: the Firefly agent (edge_agent: agent, protocol, crypto) frozen as
bytecode into a board's firmware, so its code runs from flash instead of the heap
(compiled from source it takes about 127 KB of RAM; frozen, a few KB).

    make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=$PWD/micropython/manifest.py
    make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$PWD/micropython/manifest.py

boot.py and main.py stay on the board's filesystem (mpremote cp), with the profile
(boards/<board>.toml copied to /board.toml), so they can be changed without a rebuild.
"""

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules: asyncio and friends
package("edge_agent", base_path="..", opt=3)  # opt=3: no asserts, no line numbers: smaller and faster
