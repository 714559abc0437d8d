"""Presence and group errors: one root; bad input names the field, the value and the rule."""

from __future__ import annotations


class PresenceError(Exception):
    """Root of every presence and node group failure."""


class InvalidNodeInput(PresenceError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {value!r} {reason}")
        self.field, self.value, self.reason = field, value, reason


class GroupNotFound(PresenceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no node is in group {name!r}")
        self.name = name
