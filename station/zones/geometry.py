"""Geofence geometry on a spherical Earth: signed depth of a point in a circle or a polygon,
and conservative bounding boxes for the cheap prefilter.

Depth is in metres, positive inside the boundary and negative outside. Circles use the
haversine distance. Polygons are evaluated in an equirectangular projection centred on the
point: exact for the inside test (edges are straight in latitude/longitude), and within a
fraction of a percent for the distance to nearby edges at geofence scale (up to tens of km),
far below a handheld GPS's error. Pure functions; must not know zones, nodes or storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius; the sphere is within 0.5 % of WGS84 everywhere
METERS_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0
BOX_SLACK = 1.01  # a spherical cap's longitude span exceeds r/(R cos lat) by < 0.5 % up to 1000 km
POLAR_LATITUDE = 89.0  # a box reaching this close to a pole spans every longitude


@dataclass(frozen=True, slots=True)
class Circle:
    latitude: float
    longitude: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Polygon:
    points: tuple[tuple[float, float], ...]  # (latitude, longitude); closed implicitly


Shape = Circle | Polygon


@dataclass(frozen=True, slots=True)
class Box:
    """Latitude/longitude bounds; `west > east` never happens (a box across 180 spans all)."""

    south: float
    north: float
    west: float
    east: float

    def contains(self, latitude: float, longitude: float) -> bool:
        return self.south <= latitude <= self.north and self.west <= longitude <= self.east


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def depth_m(shape: Shape, latitude: float, longitude: float, within_m: float = math.inf) -> float:
    """Signed distance from the boundary, positive inside. Exact while |depth| < `within_m`;
    beyond, only the sign is exact and the magnitude is at least `within_m` (polygon edges
    farther than that are skipped, which is what keeps evaluation cheap)."""
    if isinstance(shape, Circle):
        return shape.radius_m - haversine_m(shape.latitude, shape.longitude, latitude, longitude)
    return PreparedPolygon(shape).depth_m(latitude, longitude, within_m)


class PreparedPolygon:
    """A polygon's edges sorted into latitude bands, built once per zone: the inside test reads
    only the band of the point, the distance only the bands within reach, so a 500-point
    polygon costs tens of edges per report instead of 500."""

    EDGES_PER_BAND = 8  # average edges a band holds; fewer bands cost more edges per lookup

    def __init__(self, polygon: Polygon) -> None:
        points = polygon.points
        edges = [(*points[index - 1], *points[index]) for index in range(len(points))]
        self.south = min(lat for lat, _ in points)
        self.north = max(lat for lat, _ in points)
        self._count = max(1, len(edges) // self.EDGES_PER_BAND)
        self._height = (self.north - self.south) / self._count or 1.0
        self._bands: list[list[tuple[float, float, float, float]]] = [[] for _ in range(self._count)]
        for edge in edges:
            low, high = sorted((edge[0], edge[2]))
            for band in range(self._band(low), self._band(high) + 1):
                self._bands[band].append(edge)

    def _band(self, latitude: float) -> int:
        return min(self._count - 1, max(0, int((latitude - self.south) / self._height)))

    def depth_m(self, latitude: float, longitude: float, within_m: float = math.inf) -> float:
        scale_x = METERS_PER_DEGREE * math.cos(math.radians(latitude))
        inside = False
        if self.south <= latitude <= self.north:
            for lat1, lon1, lat2, lon2 in self._bands[self._band(latitude)]:
                if (lat1 > latitude) != (lat2 > latitude):
                    x1, x2 = _wrap(lon1 - longitude), _wrap(lon2 - longitude)
                    if x1 + (latitude - lat1) * (x2 - x1) / (lat2 - lat1) > 0:
                        inside = not inside  # the ray from the point towards +x crosses this edge
        first, last = 0, self._count - 1
        if math.isfinite(within_m):
            reach = within_m / METERS_PER_DEGREE
            first, last = self._band(latitude - reach), self._band(latitude + reach)
        nearest = within_m
        for band in range(first, last + 1):
            for lat1, lon1, lat2, lon2 in self._bands[band]:
                x1, y1 = _wrap(lon1 - longitude) * scale_x, (lat1 - latitude) * METERS_PER_DEGREE
                x2, y2 = _wrap(lon2 - longitude) * scale_x, (lat2 - latitude) * METERS_PER_DEGREE
                if not _far(x1, y1, x2, y2, nearest):
                    nearest = min(nearest, _segment_distance(x1, y1, x2, y2))
        return nearest if inside else -nearest


def _wrap(degrees: float) -> float:
    """Longitude difference folded into -180..180, so polygons across the antimeridian work."""
    return (degrees + 180.0) % 360.0 - 180.0


def _far(x1: float, y1: float, x2: float, y2: float, limit: float) -> bool:
    return (min(x1, x2) > limit or max(x1, x2) < -limit
            or min(y1, y2) > limit or max(y1, y2) < -limit)


def _segment_distance(x1: float, y1: float, x2: float, y2: float) -> float:
    """Distance from the origin (the evaluated point) to the segment."""
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / length2))
    return math.hypot(x1 + t * dx, y1 + t * dy)


def bounding_box(shape: Shape, margin_m: float) -> Box:
    """A box that holds every point within `margin_m` of the shape (conservatively larger)."""
    if isinstance(shape, Circle):
        reach = (shape.radius_m + margin_m) * BOX_SLACK
        return _box(shape.latitude, shape.latitude, shape.longitude, shape.longitude, reach)
    lats = [lat for lat, _ in shape.points]
    lons = [lon for _, lon in shape.points]
    west, east = min(lons), max(lons)
    if east - west > 180.0:  # the polygon crosses the antimeridian
        west, east = -180.0, 180.0
    return _box(min(lats), max(lats), west, east, margin_m * BOX_SLACK)


def _box(south: float, north: float, west: float, east: float, reach_m: float) -> Box:
    dlat = reach_m / METERS_PER_DEGREE
    south, north = max(-90.0, south - dlat), min(90.0, north + dlat)
    widest = max(abs(south), abs(north))
    if widest >= POLAR_LATITUDE:
        return Box(south, north, -180.0, 180.0)
    dlon = reach_m / (METERS_PER_DEGREE * math.cos(math.radians(widest)))
    west, east = west - dlon, east + dlon
    if west < -180.0 or east > 180.0:
        west, east = -180.0, 180.0
    return Box(south, north, west, east)


def narrowest_m(shape: Shape) -> float:
    """Roughly the shape's smallest width: a zone narrower than twice the hysteresis could
    never be entered, so the evaluator caps the hysteresis from this."""
    if isinstance(shape, Circle):
        return 2 * shape.radius_m
    lats = [lat for lat, _ in shape.points]
    lons = [_wrap(lon - shape.points[0][1]) for _, lon in shape.points]
    middle = math.radians((min(lats) + max(lats)) / 2)
    height = (max(lats) - min(lats)) * METERS_PER_DEGREE
    width = (max(lons) - min(lons)) * METERS_PER_DEGREE * math.cos(middle)
    return min(height, width)
