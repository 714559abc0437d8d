"""Zone errors: one root, subclasses that carry the zone name or the offending field."""

from __future__ import annotations


class ZoneError(Exception):
    """Root of every zone failure."""


class ZoneNotFound(ZoneError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no zone named {name!r}")
        self.name = name


class ZoneExists(ZoneError):
    def __init__(self, name: str, source: str) -> None:
        super().__init__(f"a zone named {name!r} already exists (from the {source})")
        self.name, self.source = name, source


class ZoneReadOnly(ZoneError):
    def __init__(self, name: str) -> None:
        super().__init__(f"zone {name!r} comes from the config file; change it there and restart")
        self.name = name


class InvalidZone(ZoneError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason
