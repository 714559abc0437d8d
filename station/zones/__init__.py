"""Zones (geofences): named circles and polygons, entry/exit detection with hysteresis from
mesh position reports, and the zone events and Python API the process engine uses."""

from station.zones.errors import InvalidZone, ZoneError, ZoneExists, ZoneNotFound, ZoneReadOnly
from station.zones.events import ZoneCrossed, ZoneEntered, ZoneExited
from station.zones.geometry import Circle, Polygon
from station.zones.model import Zone
from station.zones.service import ZoneService

__all__ = [
    "Circle", "InvalidZone", "Polygon", "Zone", "ZoneCrossed", "ZoneEntered", "ZoneError", "ZoneExists",
    "ZoneExited", "ZoneNotFound", "ZoneReadOnly", "ZoneService",
]
