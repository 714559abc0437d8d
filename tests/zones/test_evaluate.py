"""Entry/exit decisions with hysteresis: a node on the border does not flap."""

from __future__ import annotations

import math
import random
import time

from station.zones.evaluate import Evaluator, Transition, effective_hysteresis
from station.zones.geometry import METERS_PER_DEGREE, Circle, Polygon
from station.zones.model import Zone

LAT, LON = 46.5588, 6.7812
NODE = "!0000abcd"


def north(metres: float) -> float:
    return LAT + metres / METERS_PER_DEGREE


def circle_zone(radius: float = 200.0, name: str = "camp", active: bool = True) -> Zone:
    return Zone(name, Circle(LAT, LON, radius), active=active)


def walk(evaluator: Evaluator, metres_from_centre: list[float]) -> list[Transition]:
    """Report positions due north of the centre; apply what is decided, as the service does."""
    seen: list[Transition] = []
    for distance in metres_from_centre:
        found = evaluator.evaluate(NODE, north(distance), LON)
        evaluator.apply(found)
        seen += found
    return seen


def test_entry_needs_the_hysteresis_inside_and_exit_the_hysteresis_outside() -> None:
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(circle_zone(200))
    assert walk(evaluator, [400, 250, 190, 180]) == []  # 10 m and 20 m inside: not yet
    entered = walk(evaluator, [175])  # 25 m inside
    assert [(t.zone, t.entered) for t in entered] == [("camp", True)]
    assert walk(evaluator, [190, 210, 220]) == []  # 10 m in, 10 m and 20 m out: kept
    exited = walk(evaluator, [226])
    assert [(t.zone, t.entered) for t in exited] == [("camp", False)]


def test_jitter_of_10_m_around_the_border_gives_exactly_one_entry() -> None:
    rng = random.Random(7)
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(circle_zone(200))
    approach = [600, 400, 300, 230, 170]  # walks in to 30 m inside
    jitter = [200 + rng.uniform(-10, 10) for _ in range(500)]
    seen = walk(evaluator, approach + jitter)
    assert [t.entered for t in seen] == [True]


def test_jitter_on_the_border_without_entering_gives_nothing() -> None:
    rng = random.Random(8)
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(circle_zone(200))
    assert walk(evaluator, [200 + rng.uniform(-10, 10) for _ in range(500)]) == []


def test_without_hysteresis_the_same_jitter_flaps() -> None:
    rng = random.Random(7)
    evaluator = Evaluator(hysteresis_m=0)
    evaluator.set_zone(circle_zone(200))
    seen = walk(evaluator, [200 + rng.uniform(-10, 10) for _ in range(200)])
    assert len(seen) > 20


def test_polygon_zone_hysteresis() -> None:
    side = 400 / METERS_PER_DEGREE
    field = Zone("field", Polygon(((LAT, LON - side), (LAT + side, LON - side), (LAT + side, LON + side),
                                   (LAT, LON + side))))
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(field)
    rng = random.Random(3)
    seen = walk(evaluator, [-100, -20, 20, 30] + [rng.uniform(-10, 10) for _ in range(300)] + [-30])
    assert [t.entered for t in seen] == [True, False]


def test_small_zone_caps_the_hysteresis_so_it_can_be_entered() -> None:
    tiny = circle_zone(radius=20)
    assert effective_hysteresis(tiny, 25) == 10
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(tiny)
    assert [t.entered for t in walk(evaluator, [100, 0, 100])] == [True, False]


def test_inactive_zones_are_not_evaluated_and_removal_forgets_members() -> None:
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(circle_zone(200, active=False))
    assert walk(evaluator, [0]) == []
    evaluator.set_zone(circle_zone(200))
    assert len(walk(evaluator, [0])) == 1
    evaluator.remove_zone("camp")
    assert evaluator.member_count() == 0
    evaluator.load_members([("camp", NODE)])
    evaluator.set_zone(circle_zone(200))
    assert walk(evaluator, [0]) == []  # loaded as inside: no second entry


def test_one_report_can_cross_several_zones() -> None:
    evaluator = Evaluator(hysteresis_m=25)
    evaluator.set_zone(circle_zone(200, "inner"))
    evaluator.set_zone(circle_zone(2000, "outer"))
    assert sorted(t.zone for t in walk(evaluator, [0])) == ["inner", "outer"]
    assert sorted(t.zone for t in walk(evaluator, [5000])) == ["inner", "outer"]


def test_thousand_reports_a_second_with_fifty_zones_is_cheap() -> None:
    rng = random.Random(1)
    evaluator = Evaluator(hysteresis_m=25)
    for index in range(50):
        lat = LAT + rng.uniform(-0.2, 0.2)
        lon = LON + rng.uniform(-0.2, 0.2)
        if index % 2:
            evaluator.set_zone(Zone(f"c{index}", Circle(lat, lon, rng.uniform(100, 3000))))
        else:
            step = rng.uniform(0.002, 0.02)
            ring = tuple((lat + step * math.sin(a / 50 * 6.283),
                          lon + step * math.cos(a / 50 * 6.283)) for a in range(50))
            evaluator.set_zone(Zone(f"p{index}", Polygon(ring)))
    reports = [(f"!{n:08x}", LAT + rng.uniform(-0.25, 0.25), LON + rng.uniform(-0.25, 0.25))
               for n in range(5000)]
    started = time.perf_counter()
    for node, lat, lon in reports:
        evaluator.apply(evaluator.evaluate(node, lat, lon))
    rate = len(reports) / (time.perf_counter() - started)
    assert rate > 1000, f"{rate:.0f} reports/s"
