"""Geofence geometry: distances, signed depth in circles and polygons, the prefilter box."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.zones.geometry import (
    METERS_PER_DEGREE,
    Circle,
    Polygon,
    bounding_box,
    depth_m,
    haversine_m,
)

LAT, LON = 46.5588, 6.7812


def north_of(lat: float, metres: float) -> float:
    return lat + metres / METERS_PER_DEGREE


def east_of(lat: float, lon: float, metres: float) -> float:
    return lon + metres / (METERS_PER_DEGREE * math.cos(math.radians(lat)))


def test_haversine_matches_known_distances() -> None:
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-4)  # one degree on the equator
    assert haversine_m(LAT, LON, LAT, LON) == 0
    # Paris -> London, about 343.5 km on the sphere
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_500, rel=5e-3)


def test_circle_depth_is_radius_minus_distance() -> None:
    circle = Circle(LAT, LON, 100.0)
    assert depth_m(circle, LAT, LON) == pytest.approx(100.0)
    assert depth_m(circle, north_of(LAT, 70), LON) == pytest.approx(30.0, abs=0.01)
    assert depth_m(circle, north_of(LAT, 150), LON) == pytest.approx(-50.0, abs=0.01)
    assert depth_m(circle, LAT, east_of(LAT, LON, 130)) == pytest.approx(-30.0, abs=0.05)


def square(side_m: float) -> Polygon:
    """A square of the given side, south-west corner at (LAT, LON)."""
    north, east = north_of(LAT, side_m), east_of(LAT, LON, side_m)
    return Polygon(((LAT, LON), (north, LON), (north, east), (LAT, east)))


def test_polygon_inside_outside_and_distance_to_the_nearest_edge() -> None:
    field = square(200)
    centre_lat, centre_lon = north_of(LAT, 100), east_of(LAT, LON, 100)
    assert depth_m(field, centre_lat, centre_lon) == pytest.approx(100, abs=0.5)
    assert depth_m(field, north_of(LAT, 10), centre_lon) == pytest.approx(10, abs=0.1)
    assert depth_m(field, north_of(LAT, -40), centre_lon) == pytest.approx(-40, abs=0.1)
    # beyond a corner the nearest boundary point is the corner itself
    corner = depth_m(field, north_of(LAT, -30), east_of(LAT, LON, -40))
    assert corner == pytest.approx(-50, abs=0.2)


def test_concave_polygon_notch_is_outside() -> None:
    # a U shape: 300 m wide, with a 100 m wide notch cut 200 m deep from the north
    def at(x: float, y: float) -> tuple[float, float]:
        return north_of(LAT, y), east_of(LAT, LON, x)

    u_shape = Polygon((at(0, 0), at(0, 300), at(100, 300), at(100, 100), at(200, 100), at(200, 300),
                       at(300, 300), at(300, 0)))
    assert depth_m(u_shape, *at(150, 250)) == pytest.approx(-50, abs=0.5)  # in the notch
    assert depth_m(u_shape, *at(50, 250)) == pytest.approx(50, abs=0.5)  # in the left arm
    assert depth_m(u_shape, *at(150, 50)) == pytest.approx(50, abs=0.5)  # in the base


def test_within_limit_keeps_the_sign_and_skips_far_edges() -> None:
    field = square(2000)
    centre = (north_of(LAT, 1000), east_of(LAT, LON, 1000))
    assert depth_m(field, *centre, within_m=26) >= 26
    outside = (north_of(LAT, -500), east_of(LAT, LON, 1000))
    assert depth_m(field, *outside, within_m=26) <= -26
    near = (north_of(LAT, 10), east_of(LAT, LON, 1000))
    assert depth_m(field, *near, within_m=26) == pytest.approx(10, abs=0.1)


def test_polygon_across_the_antimeridian() -> None:
    island = Polygon(((-17.0, 179.9), (-17.0, -179.9), (-16.8, -179.9), (-16.8, 179.9)))
    assert depth_m(island, -16.9, 179.99) > 0
    assert depth_m(island, -16.9, -179.95) > 0
    assert depth_m(island, -16.9, 179.5) < 0
    box = bounding_box(island, 25)
    assert box.contains(-16.9, 179.99) and box.contains(-16.9, -179.99)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-80, 80), lon=st.floats(-179, 179), radius=st.floats(1, 1_000_000),
    margin=st.floats(0, 10_000), bearing=st.floats(0, 2 * math.pi), beyond=st.floats(0, 1),
)
def test_points_outside_the_box_are_outside_by_more_than_the_margin(
    lat: float, lon: float, radius: float, margin: float, bearing: float, beyond: float,
) -> None:
    circle = Circle(lat, lon, radius)
    box = bounding_box(circle, margin)
    # a point exactly radius + margin (or a little less) away along some bearing must be in the box
    distance = (radius + margin) * (1 - 1e-9) * (1 - beyond * 0.5)
    d = distance / 6_371_008.8
    phi1, lambda1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(d) + math.cos(phi1) * math.sin(d) * math.cos(bearing))
    lambda2 = lambda1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(phi1),
                                   math.cos(d) - math.sin(phi1) * math.sin(phi2))
    point_lat = math.degrees(phi2)
    point_lon = (math.degrees(lambda2) + 180) % 360 - 180
    assert box.contains(point_lat, point_lon), (box, point_lat, point_lon)


def brute_force_depth(points: list[tuple[float, float]], lat: float, lon: float) -> float:
    """Every edge, no bands: the reference the banded polygon must agree with."""
    scale = METERS_PER_DEGREE * math.cos(math.radians(lat))
    xy = [((p_lon - lon) * scale, (p_lat - lat) * METERS_PER_DEGREE) for p_lat, p_lon in points]
    inside, nearest = False, math.inf
    for (x1, y1), (x2, y2) in zip(xy[-1:] + xy[:-1], xy, strict=True):
        if (y1 > 0) != (y2 > 0) and x1 - y1 * (x2 - x1) / (y2 - y1) > 0:
            inside = not inside
        dx, dy = x2 - x1, y2 - y1
        t = max(0.0, min(1.0, -(x1 * dx + y1 * dy) / (dx * dx + dy * dy)))
        nearest = min(nearest, math.hypot(x1 + t * dx, y1 + t * dy))
    return nearest if inside else -nearest


@settings(max_examples=200, deadline=None)
@given(
    radii=st.lists(st.floats(50, 2000), min_size=3, max_size=120),
    east=st.floats(-3000, 3000), north=st.floats(-3000, 3000), within=st.floats(1, 500),
)
def test_banded_polygon_agrees_with_every_edge(radii: list[float], east: float, north: float,
                                              within: float) -> None:
    # a star-shaped (so simple) polygon with many vertices around (LAT, LON)
    step = 2 * math.pi / len(radii)
    points = [(north_of(LAT, r * math.sin(i * step)), east_of(LAT, LON, r * math.cos(i * step)))
              for i, r in enumerate(radii)]
    lat, lon = north_of(LAT, north), east_of(LAT, LON, east)
    expected = brute_force_depth(points, lat, lon)
    polygon = Polygon(tuple(points))
    assert depth_m(polygon, lat, lon) == pytest.approx(expected, abs=1e-6)
    limited = depth_m(polygon, lat, lon, within_m=within)
    if abs(expected) < within:
        assert limited == pytest.approx(expected, abs=1e-6)
    else:
        assert math.copysign(1, limited) == math.copysign(1, expected) and abs(limited) >= within
