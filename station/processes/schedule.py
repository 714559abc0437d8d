"""time_schedule triggers: parse `{"cron": ..., "tz": ...}` / `{"every": ..., "tz": ...}`
and compute fire times, including catch-up after the station was off.

Cron: five fields (minute hour day-of-month month day-of-week) with `*`, lists, ranges,
steps and names (`MON`, `jan`; Sunday is 0 or 7). When both day fields are restricted a
day matching either fires; when one starts with `*` both must match (classic cron).

Daylight-saving rule (Debian cron's):
- Fixed-time jobs (neither the minute nor the hour field starts with `*`, e.g. `30 2 * * *`
  or `0,30 1-3 * * *`) follow the local calendar: each matching local time fires once. A
  local time that does not exist (spring-forward: 02:30 in Zurich on the last Sunday of
  March) fires once at the first instant after the gap (03:00 CEST); several skipped
  times collapse into that one firing. A local time that occurs twice (fall-back: 01:30
  in New York on the first Sunday of November) fires once, at its first occurrence (EDT).
- Jobs whose minute or hour starts with `*` (`*/15 * * * *`, `0 * * * *`) fire at every
  real instant whose local wall-clock time matches. `*/15` thus keeps a 15-minute spacing
  across both transitions: 01:45 EST is followed by 03:00 EDT, and in the repeated hour it
  runs in both passes (01:45 EDT, then 01:00 EST); an hourly job runs twice at 01:00.

Library: none. `cronsim` (small, typed, Debian-cron DST rule) was evaluated and passed
our DST tests in whole-hour zones, but it steps whole hours in UTC while searching, so in
Australia/Lord_Howe (30-minute DST shift) `*/10 0 * * *` fires only at 00:30 the night
after fall-back (00:00-00:20 are skipped). `croniter` has a record of DST bugs. Cron
parsing is small, and the DST part is exactly what we must own, so it is ours: each local
day's wall times are mapped to instants with PEP 495 folds, which is exact in every zone.

Intervals (`every`: `30s`, `15m`, `2h`, `1d`) are absolute durations on a grid anchored
at a caller-given instant (the process's creation time), so restarts do not shift the
phase; DST does not affect them (`1d` is 24 hours, not "same wall time tomorrow"); `tz`
is still required and validated, for one rule across schedules.

Owns schedule parsing and fire-time arithmetic; must not sleep, keep state between
calls, read the clock, or start runs (the engine's scheduler does).
"""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from station.processes.errors import ScheduleError, join_path

__all__ = [
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "parse_schedule",
]

MIN_INTERVAL = timedelta(seconds=1)  # the scheduler's resolution; finer is a busy loop, not a schedule
MAX_INTERVAL = timedelta(days=366)  # anything rarer is a calendar date: use cron (`0 9 1 1 *`)
DEFAULT_ANCHOR = datetime(1970, 1, 1, tzinfo=UTC)  # `every: 15m` then fires on :00/:15/:30/:45 UTC
SEARCH_DAYS = 366 * 8 + 31  # a 29 February can be 8 years away (2096 -> 2104); beyond: never
_EVERY_RE = re.compile(r"([0-9]{1,9})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYS = ("cron", "every", "tz")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# name, lowest, highest, names (index + lowest = value)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)


class Schedule(ABC):
    """When a time_schedule trigger fires. Every datetime in and out is aware; out is UTC."""

    tz: ZoneInfo

    @abstractmethod
    def fires_after(self, t: datetime) -> Iterator[datetime]:
        """Fire times strictly after `t`, ascending, without end."""

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after `t`."""
        return next(self.fires_after(t))

    def fire_times_between(
        self, start_exclusive: datetime, end_inclusive: datetime, limit: int
    ) -> list[datetime]:
        """Fire times in (start, end], oldest first, at most `limit` of them (for catch-up)."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        _require_aware(end_inclusive)
        times: list[datetime] = []
        if limit == 0:
            return times
        for fire in self.fires_after(start_exclusive):
            if fire > end_inclusive:
                break
            times.append(fire)
            if len(times) == limit:
                break
        return times


class CronSchedule(Schedule):
    def __init__(self, expression: str, tz: ZoneInfo, path: str = "") -> None:
        self.expression, self.tz, self.path = expression, tz, path
        fields = expression.split()
        minutes, hours, self.days, self.months, weekdays = (
            _parse_field(text, spec, join_path(path, "cron"))
            for text, spec in zip(fields, _FIELDS, strict=True)
        )
        self.weekdays = frozenset(day % 7 for day in weekdays)
        self.either_day = not fields[2].startswith("*") and not fields[4].startswith("*")
        self.wall_times = tuple(time(hour, minute) for hour in sorted(hours) for minute in sorted(minutes))
        self.once_per_wall_time = not fields[0].startswith("*") and not fields[1].startswith("*")
        if not self.either_day and not any(
            day <= _LONGEST_MONTH[month - 1] for month in self.months for day in self.days
        ):
            raise ScheduleError(join_path(path, "cron"), "never fires: no month has that day")

    def fires_after(self, t: datetime) -> Iterator[datetime]:
        _require_aware(t)
        # A transition day's instants can interleave with the next day's (a fall-back across
        # midnight), so they wait in `pending` until the next matching day's first is known.
        # A steady day (one offset all day) cannot interleave with the next: it streams.
        pending: list[datetime] = []
        day = t.astimezone(self.tz).date() - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            if not self._matches(day):
                yield from pending
                pending = []
            elif (offset := self._steady_offset(day)) is None:
                pending = sorted({*pending, *(fire for fire in self._transition_day(day) if fire > t)})
            else:
                steady: Iterable[datetime] = self._steady_day(day, offset, t)
                if pending:
                    steady = sorted({*pending, *steady})
                    pending = []
                yield from steady
            day += timedelta(days=1)
        yield from pending
        raise ScheduleError(join_path(self.path, "cron"), f"does not fire within {SEARCH_DAYS} days")

    def _matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date, by_weekday = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        return (by_date or by_weekday) if self.either_day else (by_date and by_weekday)

    def _steady_day(self, day: date, offset: timedelta, after: datetime) -> Iterator[datetime]:
        """Instants after `after` of a day without transition: wall time minus offset, in order."""
        local_after = after.astimezone(UTC).replace(tzinfo=None) + offset
        if local_after.date() > day:
            return iter(())
        skip = bisect.bisect_right(self.wall_times, local_after.time()) if local_after.date() == day else 0
        return ((datetime.combine(day, wall) - offset).replace(tzinfo=UTC) for wall in self.wall_times[skip:])

    def _steady_offset(self, day: date) -> timedelta | None:
        """The day's one UTC offset, or None on a transition day (tzdb never has two a day)."""
        start, end = datetime.combine(day, time(0, 0), self.tz), datetime.combine(day, time(23, 59), self.tz)
        offset = _offset(start)
        same = offset == _offset(start.replace(fold=1)) == _offset(end) == _offset(end.replace(fold=1))
        return offset if same else None

    def _transition_day(self, day: date) -> set[datetime]:
        """The instants of a day with a DST transition, by the rule in the module docstring."""
        fires: set[datetime] = set()
        for wall_time in self.wall_times:
            wall = datetime.combine(day, wall_time)
            first = _offset(wall.replace(tzinfo=self.tz))
            second = _offset(wall.replace(tzinfo=self.tz, fold=1))
            if first == second:
                fires.add((wall - first).replace(tzinfo=UTC))
            elif first > second:  # fall-back: the wall time happens twice
                fires.add((wall - first).replace(tzinfo=UTC))
                if not self.once_per_wall_time:
                    fires.add((wall - second).replace(tzinfo=UTC))
            elif self.once_per_wall_time:  # spring-forward: the wall time does not exist
                fires.add(self._gap_end(wall - second, wall - first, second))
        return fires

    def _gap_end(self, before: datetime, after: datetime, new_offset: timedelta) -> datetime:
        """The transition instant in (before, after] (naive UTC): first one with `new_offset`."""
        low, high = before, after
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) // 2
            middle -= timedelta(microseconds=middle.microsecond)
            if _offset(middle.replace(tzinfo=UTC).astimezone(self.tz)) == new_offset:
                high = middle
            else:
                low = middle
        return high.replace(tzinfo=UTC)

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.tz.key!r})"


class IntervalSchedule(Schedule):
    def __init__(self, period: timedelta, tz: ZoneInfo, anchor: datetime = DEFAULT_ANCHOR) -> None:
        _require_aware(anchor)
        self.period, self.tz, self.anchor = period, tz, anchor.astimezone(UTC)

    def next_after(self, t: datetime) -> datetime:
        _require_aware(t)
        periods = (t - self.anchor) // self.period + 1  # floor division: works before the anchor too
        return self.anchor + periods * self.period

    def fires_after(self, t: datetime) -> Iterator[datetime]:
        fire = self.next_after(t)
        while True:
            yield fire
            fire += self.period

    def __repr__(self) -> str:
        return f"IntervalSchedule({self.period}, {self.tz.key!r}, anchor={self.anchor.isoformat()})"


def parse_schedule(config: Any, path: str = "", *, anchor: datetime = DEFAULT_ANCHOR) -> Schedule:
    """Validate a time_schedule config; `anchor` sets the phase of `every` intervals."""
    if not isinstance(config, Mapping):
        raise ScheduleError(path, 'an object like {"cron": "0 7 * * *", "tz": "Europe/Zurich"}')
    for key in config:
        if key not in _KEYS:
            raise ScheduleError(join_path(path, key), "unknown key (cron, every, tz)")
    if ("cron" in config) == ("every" in config):
        raise ScheduleError(path, "needs exactly one of cron or every")
    if "tz" not in config:
        raise ScheduleError(join_path(path, "tz"), "missing (an IANA time zone like Europe/Zurich)")
    tz = _zone(config["tz"], join_path(path, "tz"))
    if "cron" in config:
        expression = config["cron"]
        if not isinstance(expression, str) or len(expression.split()) != len(_FIELDS):
            raise ScheduleError(
                join_path(path, "cron"), "five fields: minute hour day-of-month month day-of-week"
            )
        return CronSchedule(" ".join(expression.split()), tz, path)
    return IntervalSchedule(_interval(config["every"], join_path(path, "every")), tz, anchor)


def _parse_field(text: str, spec: tuple[str, int, int, tuple[str, ...]], path: str) -> frozenset[int]:
    name, lowest, highest, _names = spec
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and 0 < int(step_text) <= highest):
            raise ScheduleError(path, f"{name}: bad step {step_text!r} in {part!r}")
        if body == "*":
            first, last = lowest, highest
        elif "-" in body:
            first_text, _, last_text = body.partition("-")
            first, last = _value(first_text, spec, path), _value(last_text, spec, path)
            if name == "day-of-week" and last == 0 < first:
                last = 7  # `FRI-SUN` ends on Sunday as day 7
            if first > last:
                raise ScheduleError(path, f"{name}: range {body!r} runs backwards")
        else:
            first = _value(body, spec, path)
            last = highest if slash else first  # `5/15`: from 5 to the end, every 15
        values.update(range(first, last + 1, int(step_text) if slash else 1))
    return frozenset(values)


def _value(text: str, spec: tuple[str, int, int, tuple[str, ...]], path: str) -> int:
    name, lowest, highest, names = spec
    if text.lower() in names:
        return names.index(text.lower()) + lowest
    if not text.isdigit() or not lowest <= int(text) <= highest:
        raise ScheduleError(
            path, f"{name}: {text!r} is not {lowest}-{highest}" + (" or a name" if names else "")
        )
    return int(text)


def _interval(text: object, path: str) -> timedelta:
    match = _EVERY_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(path, "a number and a unit: 30s, 15m, 2h or 1d")
    period = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if period < MIN_INTERVAL:
        raise ScheduleError(path, f"below the minimum interval of {MIN_INTERVAL.total_seconds():g} s")
    if period > MAX_INTERVAL:
        raise ScheduleError(path, f"above the maximum interval of {MAX_INTERVAL.days} days; use cron")
    return period


def _zone(name: object, path: str) -> ZoneInfo:
    if not isinstance(name, str):
        raise ScheduleError(path, "an IANA time zone name like Europe/Zurich")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(path, f"unknown time zone {name!r}") from None


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{moment!r} is naive")
    return offset


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is naive; schedules take aware datetimes")
