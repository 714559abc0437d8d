"""The mesh subsystem's exception tree."""

from __future__ import annotations


class MeshError(Exception):
    """Root of every mesh failure."""


class InvalidMessage(MeshError):
    """A message was refused at the door; nothing was queued."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        super().__init__(f"{field} = {shown!r}: {allowed}")
        self.field, self.value, self.allowed = field, value, allowed


class UnknownRadio(MeshError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no radio named {name!r} is configured")
        self.name = name


class RadioUnavailable(MeshError):
    """The link to a radio is down (it will be rebuilt by the reconnect loop)."""

    def __init__(self, radio: str, reason: str) -> None:
        super().__init__(f"radio {radio}: {reason}")
        self.radio, self.reason = radio, reason
