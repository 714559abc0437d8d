"""Station alerts: raised by operators, processes and the mesh; acknowledged and resolved by
operators or processes; deduplicated by key so a flapping condition cannot flood the station."""

from station.alerts.errors import AlertError, AlertNotFound, InvalidAlert, InvalidTransition
from station.alerts.events import AlertAcknowledged, AlertCreated, AlertEvent, AlertResolved
from station.alerts.service import AlertService

__all__ = [
    "AlertAcknowledged",
    "AlertCreated",
    "AlertError",
    "AlertEvent",
    "AlertNotFound",
    "AlertResolved",
    "AlertService",
    "InvalidAlert",
    "InvalidTransition",
]
