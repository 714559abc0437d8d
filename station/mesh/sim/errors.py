"""The radio simulator's exception tree. Every failure the simulator reports derives from
SimError and carries its data as attributes, not only in the message."""

from __future__ import annotations

from pathlib import Path


class SimError(Exception):
    """Root of every radio simulator failure."""


class OptionsError(SimError):
    """Command-line input the simulator cannot run with (exit code 2)."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}" if option else reason)
        self.option, self.reason = option, reason


class FrameTooLarge(SimError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit")
        self.size, self.limit = size, limit


class ScriptError(SimError):
    """A scenario script that cannot be replayed; `step` is its 1-based index, 0 = whole file."""

    def __init__(self, path: Path, step: int, reason: str) -> None:
        where = f"{path}" if step == 0 else f"{path} step {step}"
        super().__init__(f"script {where}: {reason}")
        self.path, self.step, self.reason = path, step, reason


class TransportError(SimError):
    """A transport (TCP listener or pseudo-terminal) could not be opened."""

    def __init__(self, transport: str, address: str, reason: str) -> None:
        super().__init__(f"cannot open {transport} {address}: {reason}")
        self.transport, self.address, self.reason = transport, address, reason
