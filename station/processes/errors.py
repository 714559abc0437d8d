"""The process engine's exception tree.

Every error a process definition can cause carries the JSON path of the offending
part (`and.1.or.0.op`, `actions.0.config.text`, `triggers.0.config.cron`) so the API can
point the operator at it. Must not import the engine's other modules (they import this one).
"""

from __future__ import annotations


class ProcessError(Exception):
    """Root of every process engine failure."""


class DefinitionError(ProcessError):
    """A part of a process definition is unusable; `path` says which part, `message` why.

    The root of a tree has the empty path; it reads as `(root)` in the message.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '(root)'}: {message}")
        self.path, self.message = path, message


class ConditionError(DefinitionError):
    """A condition tree is invalid; `path` is the JSON path of the bad part inside the tree."""


class TemplateError(DefinitionError):
    """A template does not parse, or failed while rendering (unsafe access, too large, ...)."""


class ScheduleError(DefinitionError):
    """A time_schedule trigger's config is invalid (cron, interval or time zone)."""


def join_path(base: str, key: str | int) -> str:
    """`join_path("and", 1)` -> `and.1`; the root (empty base) adds no leading dot."""
    return f"{base}.{key}" if base else str(key)
