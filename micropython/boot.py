"""Runs first at every boot. Kept minimal on purpose: if anything here failed the board
would never reach main.py or a usable REPL. The agent starts from main.py."""

import gc

gc.collect()
