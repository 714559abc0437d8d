from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.processes.errors import DefinitionError
from station.processes.schedule import (
    MAX_INTERVAL,
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    parse_schedule,
)

ZURICH = "Europe/Zurich"
NEW_YORK = "America/New_York"
MINUTE = timedelta(minutes=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local(tz: str, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz), fold=fold)  # type: ignore[misc]


def fires(config: dict[str, Any], start: datetime, end: datetime, **kwargs: Any) -> list[datetime]:
    return parse_schedule(config, **kwargs).fire_times_between(start, end, limit=10_000)


def as_local(times: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M %Z") for t in times]


# -- daylight saving: the rule in the module docstring ---------------------------------


def test_a_fixed_time_in_the_spring_forward_gap_fires_once_after_the_gap() -> None:
    # 2024-03-31 in Zurich: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    times = fires({"cron": "30 2 * * *", "tz": ZURICH}, utc(2024, 3, 29, 12), utc(2024, 4, 1, 12))
    assert as_local(times, ZURICH) == ["03-30 02:30 CET", "03-31 03:00 CEST", "04-01 02:30 CEST"]


def test_several_times_in_the_gap_collapse_into_one_firing() -> None:
    times = fires({"cron": "0,15,45 2,3 * * *", "tz": ZURICH}, utc(2024, 3, 30, 12), utc(2024, 3, 31, 12))
    assert as_local(times, ZURICH) == ["03-31 03:00 CEST", "03-31 03:15 CEST", "03-31 03:45 CEST"]


def test_a_fixed_time_that_occurs_twice_fires_once_at_its_first_occurrence() -> None:
    # 2024-11-03 in New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    schedule = parse_schedule({"cron": "30 1 * * *", "tz": NEW_YORK})
    times = schedule.fire_times_between(utc(2024, 11, 2, 12), utc(2024, 11, 4, 12), limit=10)
    assert as_local(times, NEW_YORK) == ["11-03 01:30 EDT", "11-04 01:30 EST"]
    assert times[0] == local(NEW_YORK, 2024, 11, 3, 1, 30, fold=0).astimezone(UTC)
    # Asked from inside the second pass (01:15 EST), the first 01:30 is already past.
    second_pass = local(NEW_YORK, 2024, 11, 3, 1, 15, fold=1).astimezone(UTC)
    assert schedule.next_after(second_pass) == local(NEW_YORK, 2024, 11, 4, 1, 30).astimezone(UTC)


def test_zurich_fall_back_fires_the_repeated_time_once() -> None:
    # 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    times = fires({"cron": "30 2 * * *", "tz": ZURICH}, utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    assert as_local(times, ZURICH) == ["10-27 02:30 CEST", "10-28 02:30 CET"]


def test_every_15_minutes_keeps_real_time_spacing_across_fall_back() -> None:
    times = fires({"cron": "*/15 * * * *", "tz": NEW_YORK}, utc(2024, 11, 3, 4, 50), utc(2024, 11, 3, 7, 10))
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=15)] * (len(times) - 1)
    assert as_local(times, NEW_YORK) == [
        "11-03 01:00 EDT",
        "11-03 01:15 EDT",
        "11-03 01:30 EDT",
        "11-03 01:45 EDT",
        "11-03 01:00 EST",  # the repeated hour runs again: wall-clock semantics
        "11-03 01:15 EST",
        "11-03 01:30 EST",
        "11-03 01:45 EST",
        "11-03 02:00 EST",
    ]


def test_every_15_minutes_skips_nothing_across_spring_forward() -> None:
    times = fires({"cron": "*/15 * * * *", "tz": NEW_YORK}, utc(2024, 3, 10, 6, 20), utc(2024, 3, 10, 7, 20))
    assert as_local(times, NEW_YORK) == [
        "03-10 01:30 EST",
        "03-10 01:45 EST",
        "03-10 03:00 EDT",
        "03-10 03:15 EDT",
    ]
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=15)] * 3


def test_hourly_jobs_run_every_real_hour_on_fall_back_day() -> None:
    times = fires({"cron": "0 * * * *", "tz": NEW_YORK}, utc(2024, 11, 3, 3, 30), utc(2024, 11, 3, 7, 30))
    assert as_local(times, NEW_YORK) == [
        "11-03 00:00 EDT",
        "11-03 01:00 EDT",
        "11-03 01:00 EST",
        "11-03 02:00 EST",
    ]


def test_a_half_hour_dst_shift_skips_no_wildcard_runs() -> None:
    # Lord Howe falls back 30 minutes on 2024-04-07 at 02:00; cronsim 2.x missed 00:00-00:20 the next night.
    tz = "Australia/Lord_Howe"
    times = fires({"cron": "*/10 0 * * *", "tz": tz}, utc(2024, 4, 6, 15), utc(2024, 4, 7, 14))
    assert as_local(times, tz) == [
        "04-08 00:00 +1030",
        "04-08 00:10 +1030",
        "04-08 00:20 +1030",
        "04-08 00:30 +1030",
    ]
    once = fires({"cron": "45 1 * * *", "tz": tz}, utc(2024, 4, 6, 12), utc(2024, 4, 7, 12))
    assert as_local(once, tz) == ["04-07 01:45 +11"]  # 01:30-02:00 happens twice: first one


def test_transitions_at_midnight() -> None:
    # Santiago falls back from 2024-04-07 00:00 to 04-06 23:00, and springs 2024-09-08 00:00 to 01:00.
    tz = "America/Santiago"
    repeated = fires({"cron": "30 23 * * *", "tz": tz}, utc(2024, 4, 6, 12), utc(2024, 4, 7, 12))
    assert as_local(repeated, tz) == ["04-06 23:30 -03"]
    both = fires({"cron": "*/30 23 * * *", "tz": tz}, utc(2024, 4, 6, 12), utc(2024, 4, 7, 12))
    assert as_local(both, tz) == ["04-06 23:00 -03", "04-06 23:30 -03", "04-06 23:00 -04", "04-06 23:30 -04"]
    skipped = fires({"cron": "30 0 * * *", "tz": tz}, utc(2024, 9, 7, 12), utc(2024, 9, 8, 12))
    assert as_local(skipped, tz) == ["09-08 01:00 -03"]


def test_a_leap_day_eight_years_away_is_found() -> None:
    schedule = parse_schedule({"cron": "0 9 29 2 *", "tz": "UTC"})
    assert schedule.next_after(utc(2096, 3, 1)) == utc(2104, 2, 29, 9)


def test_intervals_are_absolute_durations_across_dst() -> None:
    anchor = local(ZURICH, 2024, 3, 30, 7, 0)
    times = fires({"every": "1d", "tz": ZURICH}, utc(2024, 3, 30, 0), utc(2024, 4, 1, 12), anchor=anchor)
    assert as_local(times, ZURICH) == ["03-30 07:00 CET", "03-31 08:00 CEST", "04-01 08:00 CEST"]


# -- cron syntax -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 7 * * *", utc(2024, 1, 10, 5, 0), "01-10 07:00"),  # Zurich is UTC+1 in winter
        ("0 7 * * *", utc(2024, 1, 10, 6, 0), "01-11 07:00"),  # strictly after
        ("0 7 * * MON-FRI", utc(2024, 1, 12, 7, 0), "01-15 07:00"),  # Fri after 07:00 -> Mon
        ("0 7 * * sat,sun", utc(2024, 1, 10, 0, 0), "01-13 07:00"),
        ("0 0 1 JAN-MAR/2 *", utc(2024, 1, 2, 0, 0), "03-01 00:00"),
        ("*/20 9-10 * * *", utc(2024, 1, 10, 9, 0), "01-10 10:20"),  # CET: 09:00Z is 10:00
        ("5,35 * * * *", utc(2024, 1, 10, 9, 10), "01-10 10:35"),
        ("0 12 13 * FRI", utc(2024, 1, 10, 0, 0), "01-12 12:00"),  # day-of-month OR day-of-week
        ("0 12 29 2 *", utc(2024, 3, 1, 0, 0), "02-29 12:00"),  # 2028: the next leap day
        ("0 9 * * FRI-SUN", utc(2024, 1, 8, 0, 0), "01-12 09:00"),
        ("0 9 * * 7", utc(2024, 1, 8, 0, 0), "01-14 09:00"),  # 7 is Sunday too
        ("0 9 * * 5-0", utc(2024, 1, 13, 9, 0), "01-14 09:00"),
        ("0 22/1 * * *", utc(2024, 1, 10, 21, 0), "01-10 23:00"),  # 22-23
        ("0 0 1,15 * *", utc(2024, 1, 2, 0, 0), "01-15 00:00"),
    ],
)
def test_cron_fields(expression: str, start: datetime, expected: str) -> None:
    schedule = parse_schedule({"cron": expression, "tz": ZURICH})
    assert schedule.next_after(start).astimezone(ZoneInfo(ZURICH)).strftime("%m-%d %H:%M") == expected


def test_next_after_is_strictly_after_and_utc() -> None:
    schedule = parse_schedule({"cron": "0 7 * * *", "tz": "UTC"})
    at = utc(2024, 1, 10, 7, 0)
    assert schedule.next_after(at) == utc(2024, 1, 11, 7, 0)
    assert schedule.next_after(at - timedelta(microseconds=1)) == at
    assert schedule.next_after(at).tzinfo is UTC


def test_fire_times_between_limits_and_orders() -> None:
    schedule = parse_schedule({"cron": "0 * * * *", "tz": "UTC"})
    start, end = utc(2024, 1, 1, 0), utc(2024, 1, 1, 10)
    assert schedule.fire_times_between(start, end, 3) == [utc(2024, 1, 1, h) for h in (1, 2, 3)]
    assert len(schedule.fire_times_between(start, end, 100)) == 10  # start excluded, end included
    assert schedule.fire_times_between(start, end, 0) == []
    assert schedule.fire_times_between(end, start, 5) == []
    with pytest.raises(ValueError, match="limit"):
        schedule.fire_times_between(start, end, -1)


def test_naive_datetimes_are_refused() -> None:
    for config in ({"cron": "* * * * *", "tz": "UTC"}, {"every": "1m", "tz": "UTC"}):
        with pytest.raises(ValueError, match="naive"):
            parse_schedule(config).next_after(datetime(2024, 1, 1))


# -- intervals -------------------------------------------------------------------------


def test_interval_phase_comes_from_the_anchor_not_the_restart() -> None:
    anchor = utc(2024, 1, 1, 10, 7, 30)
    schedule = parse_schedule({"every": "15m", "tz": ZURICH}, anchor=anchor)
    assert isinstance(schedule, IntervalSchedule)
    for restart in (utc(2024, 1, 1, 10, 8), utc(2024, 1, 1, 10, 21, 59), utc(2024, 6, 1, 3, 3, 3)):
        assert (schedule.next_after(restart) - anchor) % timedelta(minutes=15) == timedelta(0)
    assert schedule.next_after(utc(2024, 1, 1, 10, 8)) == utc(2024, 1, 1, 10, 22, 30)
    assert schedule.next_after(anchor) == anchor + timedelta(minutes=15)
    assert schedule.next_after(utc(2023, 12, 31, 23, 59)) == utc(2024, 1, 1, 0, 7, 30)  # before the anchor


@pytest.mark.parametrize(
    ("every", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1s", 1)]
)
def test_interval_units(every: str, seconds: int) -> None:
    schedule = parse_schedule({"every": every, "tz": "UTC"})
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.period == timedelta(seconds=seconds)
    assert schedule.next_after(utc(2024, 1, 1)) == utc(2024, 1, 1) + timedelta(
        seconds=seconds
    )  # epoch-aligned


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path", "words"),
    [
        ("0 7 * * *", "t", "an object"),
        ({"tz": ZURICH}, "t", "exactly one of cron or every"),
        ({"cron": "0 7 * * *", "every": "1h", "tz": ZURICH}, "t", "exactly one"),
        ({"cron": "0 7 * * *"}, "t.tz", "missing"),
        ({"cron": "0 7 * * *", "tz": "Mars/Base"}, "t.tz", "unknown time zone"),
        ({"cron": "0 7 * * *", "tz": "utc"}, "t.tz", "unknown time zone"),
        ({"cron": "0 7 * * *", "tz": None}, "t.tz", "IANA"),
        ({"cron": "0 7 * * *", "tz": ZURICH, "at": 1}, "t.at", "unknown key"),
        ({"cron": "0 7 * *", "tz": ZURICH}, "t.cron", "five fields"),
        ({"cron": "0 0 7 * * *", "tz": ZURICH}, "t.cron", "five fields"),
        ({"cron": 7, "tz": ZURICH}, "t.cron", "five fields"),
        ({"cron": "60 7 * * *", "tz": ZURICH}, "t.cron", "minute: '60' is not 0-59"),
        ({"cron": "0 24 * * *", "tz": ZURICH}, "t.cron", "hour: '24' is not 0-23"),
        ({"cron": "0 7 32 * *", "tz": ZURICH}, "t.cron", "day-of-month: '32'"),
        ({"cron": "0 7 30 2 *", "tz": ZURICH}, "t.cron", "never fires"),
        ({"cron": "0 7 31 4,6,9,11 *", "tz": ZURICH}, "t.cron", "never fires"),
        ({"cron": "0 7 * 13 *", "tz": ZURICH}, "t.cron", "month: '13' is not 1-12 or a name"),
        ({"cron": "0 7 * * FUN", "tz": ZURICH}, "t.cron", "day-of-week: 'FUN'"),
        ({"cron": "0 7 * JAN-FUN *", "tz": ZURICH}, "t.cron", "month: 'FUN'"),
        ({"cron": "0 MON * * *", "tz": ZURICH}, "t.cron", "hour: 'MON'"),
        ({"cron": "9-1 7 * * *", "tz": ZURICH}, "t.cron", "runs backwards"),
        ({"cron": "*/0 7 * * *", "tz": ZURICH}, "t.cron", "bad step"),
        ({"cron": "*/x 7 * * *", "tz": ZURICH}, "t.cron", "bad step"),
        ({"cron": "*/99 7 * * *", "tz": ZURICH}, "t.cron", "bad step"),
        ({"cron": "1,,2 7 * * *", "tz": ZURICH}, "t.cron", "minute: ''"),
        ({"cron": "-5 7 * * *", "tz": ZURICH}, "t.cron", "minute: ''"),
        ({"cron": "? 7 * * *", "tz": ZURICH}, "t.cron", "minute: '?'"),
        ({"cron": "0 7 L * *", "tz": ZURICH}, "t.cron", "day-of-month: 'L'"),
        ({"every": "0s", "tz": ZURICH}, "t.every", "below the minimum"),
        ({"every": "15", "tz": ZURICH}, "t.every", "a number and a unit"),
        ({"every": "1.5h", "tz": ZURICH}, "t.every", "a number and a unit"),
        ({"every": "-5m", "tz": ZURICH}, "t.every", "a number and a unit"),
        ({"every": 900, "tz": ZURICH}, "t.every", "a number and a unit"),
        ({"every": f"{MAX_INTERVAL.days + 1}d", "tz": ZURICH}, "t.every", "above the maximum"),
    ],
)
def test_validation_names_the_bad_part(config: Any, path: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(config, "t")
    assert caught.value.path == path
    assert words in caught.value.message
    assert isinstance(caught.value, DefinitionError)
    assert str(caught.value) == f"{path}: {caught.value.message}"


# -- properties: fire times equal a brute-force model of the documented rule -----------


def matches(moment: datetime, minutes: set[int], hours: set[int], weekdays: set[int]) -> bool:
    return moment.minute in minutes and moment.hour in hours and (moment.isoweekday() % 7) in weekdays


def resolve_wall_time(naive: datetime, tz: ZoneInfo) -> datetime:
    """The documented rule for fixed times: first occurrence, or the first instant after a gap."""
    while naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        naive += MINUTE
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def model(
    fields: tuple[set[int], set[int], set[int]], fixed: bool, tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    minutes, hours, weekdays = fields
    found: set[datetime] = set()
    if fixed:
        day: date = start.astimezone(tz).date() - timedelta(days=1)
        while day <= end.astimezone(tz).date() + timedelta(days=1):
            for hour in hours:
                for minute in minutes:
                    naive = datetime.combine(day, time(hour, minute))
                    if (naive.isoweekday() % 7) in weekdays:
                        found.add(resolve_wall_time(naive, tz))
            day += timedelta(days=1)
    else:
        at = start.replace(second=0, microsecond=0) + MINUTE
        while at <= end:
            if matches(at.astimezone(tz), minutes, hours, weekdays):
                found.add(at)
            at += MINUTE
    return sorted(t for t in found if start < t <= end)


def field(values: list[int], every: int | None, top: int) -> tuple[str, set[int]]:
    if every is not None:
        return f"*/{every}", set(range(0, top, every))
    return ",".join(str(v) for v in sorted(set(values))), set(values)


TRANSITIONS = [
    (NEW_YORK, utc(2024, 3, 10, 7)),
    (NEW_YORK, utc(2024, 11, 3, 6)),
    (ZURICH, utc(2024, 3, 31, 1)),
    (ZURICH, utc(2024, 10, 27, 1)),
    ("Australia/Lord_Howe", utc(2024, 4, 6, 15)),  # a 30-minute DST shift
    ("Australia/Lord_Howe", utc(2024, 10, 5, 15, 30)),
    ("America/Santiago", utc(2024, 4, 7, 3)),  # falls back from 00:00 to 23:00 the day before
    ("America/Santiago", utc(2024, 9, 8, 4)),  # springs forward over midnight
    ("Antarctica/Troll", utc(2024, 3, 31, 1)),  # a 2-hour DST shift
    ("Antarctica/Troll", utc(2024, 10, 27, 1)),
]


@st.composite
def cron_cases(
    draw: st.DrawFn,
) -> tuple[str, tuple[set[int], set[int], set[int]], bool, str, datetime, datetime]:
    minute_text, minutes = field(
        draw(st.lists(st.integers(0, 59), min_size=1, max_size=3)),
        draw(st.none() | st.sampled_from([10, 15, 20, 30])),
        60,
    )
    hour_text, hours = field(
        draw(st.lists(st.integers(0, 4) | st.integers(21, 23), min_size=1, max_size=3)),  # near transitions
        draw(st.none() | st.sampled_from([1, 2, 3])),
        24,
    )
    weekdays = draw(st.sets(st.integers(0, 6), min_size=1))
    dow_text = "*" if len(weekdays) == 7 else ",".join(map(str, sorted(weekdays)))
    tz, transition = draw(st.sampled_from(TRANSITIONS))
    start = transition + timedelta(
        minutes=draw(st.integers(-36 * 60, 12 * 60)), seconds=draw(st.integers(0, 59))
    )
    end = start + timedelta(hours=draw(st.integers(1, 48)))
    fixed = not minute_text.startswith("*") and not hour_text.startswith("*")
    expression = f"{minute_text} {hour_text} * * {dow_text}"
    return expression, (minutes, hours, weekdays), fixed, tz, start, end


@settings(max_examples=60, deadline=None)
@given(cron_cases())
def test_cron_fire_times_match_the_documented_rule(
    case: tuple[str, tuple[set[int], set[int], set[int]], bool, str, datetime, datetime],
) -> None:
    expression, fields, fixed, tz, start, end = case
    schedule = parse_schedule({"cron": expression, "tz": tz})
    assert isinstance(schedule, CronSchedule)
    got = schedule.fire_times_between(start, end, limit=10_000)
    assert got == model(fields, fixed, ZoneInfo(tz), start, end)
    assert len(set(got)) == len(got)


@settings(max_examples=60, deadline=None)
@given(cron_cases(), st.integers(0, 48 * 3600))
def test_next_after_is_monotonic(
    case: tuple[str, tuple[set[int], set[int], set[int]], bool, str, datetime, datetime], shift: int
) -> None:
    expression, _fields, _fixed, tz, start, _end = case
    schedule = parse_schedule({"cron": expression, "tz": tz})
    later = start + timedelta(seconds=shift)
    first, second = schedule.next_after(start), schedule.next_after(later)
    assert first > start and second > later
    assert first <= second
    assert schedule.next_after(first - timedelta(microseconds=1)) == first


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 10**6),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
)
def test_interval_next_after_is_the_next_grid_point(seconds: int, anchor: datetime, t: datetime) -> None:
    period = timedelta(seconds=seconds)
    schedule = IntervalSchedule(period, ZoneInfo("UTC"), anchor)
    fire = schedule.next_after(t)
    assert t < fire <= t + period
    assert (fire - anchor) % period == timedelta(0)
