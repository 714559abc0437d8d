"""The alerts subsystem's exception tree. Each error carries its data, not just a string."""

from __future__ import annotations


class AlertError(Exception):
    """Root of every alerts failure."""


class AlertNotFound(AlertError):
    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


class InvalidAlert(AlertError):
    """Input was refused at the door; nothing was stored."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        super().__init__(f"{field} = {shown!r}: {allowed}")
        self.field, self.value, self.allowed = field, value, allowed


class InvalidTransition(AlertError):
    """The alert's status does not allow the action (resolving a resolved alert)."""

    def __init__(self, alert_id: str, status: str, action: str) -> None:
        super().__init__(f"alert {alert_id} is {status}; it cannot be {_PAST.get(action, action)}")
        self.alert_id, self.status, self.action = alert_id, status, action


_PAST = {"acknowledge": "acknowledged", "resolve": "resolved"}
