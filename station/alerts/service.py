"""The alerts service: validates, stores and moves alerts through their states, and publishes an
event for each change once it is committed. The Python API that the REST routes, the CLI (through
the API) and process actions use. Must not know who listens to its events.

States: active -> acknowledged -> resolved, or active -> resolved. Acknowledging an acknowledged
alert changes nothing; anything out of a resolved alert is refused.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any

from station.alerts.errors import AlertNotFound, InvalidAlert, InvalidTransition
from station.alerts.events import AlertAcknowledged, AlertCreated, AlertEvent, AlertResolved
from station.bus import EventBus
from station.mesh import addresses
from station.mesh.errors import InvalidMessage
from station.services import Service
from station.store import Database
from station.store import alerts as store

logger = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
STATUSES = ("active", "acknowledged", "resolved")
TITLE_MAX_CHARS = 200  # one line of `firefly alert list` or a dashboard row; details go in the message
MESSAGE_MAX_CHARS = 2000  # a screenful: enough for a diagnosis, small enough to sync over a thin link
SOURCE_MAX_CHARS = 100  # 'process:' and an id, with room to spare
DEDUP_KEY_MAX_CHARS = 200  # room for a process id, a node id and a condition name
ACTOR_MAX_CHARS = 100  # an operator's name or 'process:<id>'
MAX_LIST_LIMIT = 1000  # alerts per listing: bounds one query's memory and one response
DEFAULT_LIST_LIMIT = 100

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("active",), "acknowledged"),
    "resolve": (("active", "acknowledged"), "resolved"),
}


class AlertService(Service):
    name = "alerts"

    def __init__(self, database: Database, bus: EventBus) -> None:
        super().__init__()
        self._database = database
        self._bus = bus

    async def start(self) -> None:
        self._refresh_health()

    def create(self, severity: str, title: str, message: str = "", source: str = "operator",
               node_id: str | None = None, dedup_key: str | None = None) -> dict[str, Any]:
        """Raise an alert; committed before it returns. A dedup_key equal to an unresolved
        alert's folds into that alert (occurrences + 1) and returns it with deduplicated=True."""
        new = store.NewAlert(
            severity=_choice("severity", severity, SEVERITIES),
            title=_line("title", title, TITLE_MAX_CHARS),
            message=_text("message", message, 0, MESSAGE_MAX_CHARS),
            source=_line("source", source, SOURCE_MAX_CHARS),
            node_id=None if node_id is None else _node_id(node_id),
            dedup_key=None if dedup_key is None else _line("dedup_key", dedup_key, DEDUP_KEY_MAX_CHARS),
        )
        alert, folded = store.insert_or_fold(self._database, new)
        if folded:
            logger.info("alert folded", extra={"alert_id": alert["id"], "occurrences": alert["occurrences"]})
        else:
            logger.info("alert created", extra={"alert_id": alert["id"], "severity": alert["severity"],
                                                "source": alert["source"]})
            self._changed(AlertCreated.from_alert(alert))
        return {**alert, "deduplicated": folded}

    def acknowledge(self, alert_id: str, by: str) -> dict[str, Any]:
        """active -> acknowledged. An acknowledged alert is returned unchanged (no event)."""
        alert, changed = self._transition(alert_id, "acknowledge", by)
        if changed:
            self._changed(AlertAcknowledged.from_alert(alert))
        return alert

    def resolve(self, alert_id: str, by: str) -> dict[str, Any]:
        """active or acknowledged -> resolved; its dedup key is free again."""
        alert, _changed = self._transition(alert_id, "resolve", by)
        self._changed(AlertResolved.from_alert(alert))
        return alert

    def get(self, alert_id: str) -> dict[str, Any]:
        alert = store.get_alert(self._database, alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return alert

    def counts(self) -> dict[str, int]:
        """Alerts per status, every status present."""
        found = store.counts(self._database)
        return {status: found.get(status, 0) for status in STATUSES}

    def list(self, status: str | None = None, severity: str | None = None,
             limit: int = DEFAULT_LIST_LIMIT) -> builtins.list[dict[str, Any]]:
        """Newest first."""
        if status is not None:
            _choice("status", status, STATUSES)
        if severity is not None:
            _choice("severity", severity, SEVERITIES)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidAlert("limit", limit, f"must be an integer from 1 to {MAX_LIST_LIMIT}")
        return store.list_alerts(self._database, status, severity, limit)

    def _transition(self, alert_id: str, action: str, by: str) -> tuple[dict[str, Any], bool]:
        actor = _line("by", by, ACTOR_MAX_CHARS)
        from_statuses, to_status = TRANSITIONS[action]
        alert, changed = store.set_status(self._database, alert_id, to_status, from_statuses, actor)
        if alert is None:
            raise AlertNotFound(alert_id)
        if not changed and not (action == "acknowledge" and alert["status"] == "acknowledged"):
            raise InvalidTransition(alert_id, alert["status"], action)
        if changed:
            logger.info("alert %s", to_status, extra={"alert_id": alert_id, "by": actor})
        return alert, changed

    def _changed(self, event: AlertEvent) -> None:
        self._refresh_health()
        self._bus.publish(event)

    def _refresh_health(self) -> None:
        counts = self.counts()
        self.health.detail = {"active": counts["active"], "acknowledged": counts["acknowledged"]}


def _choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidAlert(field, value, f"must be one of {', '.join(allowed)}")
    return value


def _text(field: str, value: object, shortest: int, longest: int) -> str:
    if not isinstance(value, str):
        raise InvalidAlert(field, value, "must be text")
    if not shortest <= len(value) <= longest:
        raise InvalidAlert(field, value, f"must be {shortest} to {longest} characters (is {len(value)})")
    return value


def _line(field: str, value: object, longest: int) -> str:
    """One line of 1..longest characters, surrounding blanks removed."""
    text = _text(field, value.strip() if isinstance(value, str) else value, 1, longest)
    if "\n" in text or "\r" in text:
        raise InvalidAlert(field, value, "must be a single line")
    return text


def _node_id(value: object) -> str:
    """Canonical '!a1b2c3d4' (lower case); broadcast is not a node an alert can be about."""
    allowed = "must be a mesh node id like '!a1b2c3d4'"
    if not isinstance(value, str):
        raise InvalidAlert("node_id", value, allowed)
    try:
        number = addresses.node_num(value.strip())
    except InvalidMessage:
        raise InvalidAlert("node_id", value, allowed) from None
    if number == addresses.BROADCAST_NUM:
        raise InvalidAlert("node_id", value, allowed)
    return addresses.node_id(number)
