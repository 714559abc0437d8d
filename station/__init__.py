"""Firefly station: the runtime of off-grid field stations."""

__version__ = "0.1.0"
