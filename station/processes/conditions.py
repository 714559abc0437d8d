"""Condition trees: validate, compile and evaluate the JSON conditions of a process.

A condition is a JSON tree: `{"and": [...]}`, `{"or": [...]}`, `{"not": node}`, a
comparison `{"field": "event.text", "op": "regex", "value": "^sos", "flags": "i"}`, a
`{"time_window": {...}}` or the literal `true` / `false`. It is evaluated against a
context mapping (the trigger event and the run's variables) and an aware `now`.

Semantics worth knowing:
- No type coercion: `"3"` never equals `3`, and `true` never equals `1`.
- A field that does not resolve (or resolves to a value of the wrong type for the op)
  makes the comparison false, never an error; `exists` is the only op that looks at
  absence (`exists: true` wants a present, non-null value). So `ne`, `not_in` and
  `not_contains` are false for a missing field as well.
- `and` / `or` short-circuit; the trace holds only the nodes that were evaluated, in
  evaluation order (children before their parent).
- `time_window`: `after` is inclusive, `before` exclusive, both local wall-clock `HH:MM`
  in `tz`. A window with after > before crosses midnight, and `days` then names the day
  the window opens: Friday 22:00-06:00 includes Saturday 03:00.

Regex safety: Python's `re` has no timeout. We bound the pattern's length, reject a
variable quantifier inside an unbounded one (`(a+)+`, `(a?)*`: the exponential
backtracking forms; possessive `a++` and atomic `(?>...)` bodies are allowed), and
search only the first `MAX_REGEX_INPUT_CHARS` of the text, which bounds the quadratic
cases that remain (`[a-z]+[0-9]` on a long run of letters). A heuristic, not a proof.

Owns the condition language only; must not do I/O, log, or know about events or stores.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from station.processes.errors import ConditionError, join_path
from station.processes.operators import (
    BUILDERS,
    MAX_DEPTH,
    MAX_REGEX_INPUT_CHARS,
    MAX_REGEX_LENGTH,
    MISSING,
    NUMERIC,
    Test,
    type_name,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_REGEX_INPUT_CHARS",
    "MAX_REGEX_LENGTH",
    "CompiledCondition",
    "ConditionError",
    "ConditionResult",
    "TraceRecord",
    "compile_condition",
    "evaluate",
    "validate_condition",
]

MAX_NODES = 500  # x 1,000 processes per event keeps one event's evaluation in the milliseconds
MAX_TRACE_VALUE_CHARS = 80  # enough to recognise a value in a trace, small enough to store 1,000s

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_LOGICAL = ("and", "or", "not", "time_window")
_COMPARISON_KEYS = frozenset({"field", "op", "value", "flags"})
_FIELD_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")



class TraceRecord(TypedDict):
    """One evaluated node, a plain dict so a trace stores as JSON as it is.

    `kind` is and/or/not/literal/time_window, or a comparison's op. `actual` (comparisons
    and time windows only) is the value seen, strings and containers shortened, or the
    local time a window saw; `missing: true` appears when the field did not resolve.
    """

    path: str
    kind: str
    result: bool
    actual: NotRequired[str | int | float | bool | None]
    missing: NotRequired[bool]


@dataclass(frozen=True, slots=True)
class ConditionResult:
    passed: bool
    trace: tuple[TraceRecord, ...] = ()


_PASSED: Final = ConditionResult(True)
_FAILED: Final = ConditionResult(False)
_shortener = reprlib.Repr()
_shortener.maxlevel, _shortener.maxlist, _shortener.maxdict = 2, 4, 4
_shortener.maxstring = _shortener.maxother = MAX_TRACE_VALUE_CHARS


class CompiledCondition:
    """A validated tree, ready to evaluate many times without re-parsing."""

    __slots__ = ("_root",)

    def __init__(self, root: _Node) -> None:
        self._root = root

    def evaluate(self, context: Mapping[str, Any], now: datetime, trace: bool = False) -> ConditionResult:
        """Evaluate against `context` at `now` (aware). Without `trace` nothing is allocated."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        if not trace:
            return _PASSED if self._root.check(context, now, None) else _FAILED
        records: list[TraceRecord] = []
        passed = self._root.check(context, now, records)
        return ConditionResult(passed, tuple(records))


def compile_condition(tree: object, path: str = "") -> CompiledCondition:
    """Validate `tree` and compile it; `path` prefixes error paths (e.g. `conditions.0`)."""
    return CompiledCondition(_compile(tree, path, 1, [MAX_NODES]))


def validate_condition(tree: object, path: str = "") -> None:
    """Raise `ConditionError` naming the first bad part of `tree`."""
    compile_condition(tree, path)


def evaluate(tree: object, context: Mapping[str, Any], now: datetime) -> ConditionResult:
    """Validate, compile and evaluate once, with a trace. Compile once to evaluate often."""
    return compile_condition(tree).evaluate(context, now, trace=True)


# -- compiled nodes -------------------------------------------------------------------


class _Node:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        raise NotImplementedError


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, path: str, value: bool) -> None:
        super().__init__(path)
        self.value = value

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        if trace is not None:
            trace.append({"path": self.path, "kind": "literal", "result": self.value})
        return self.value


class _All(_Node):
    """`and` (every child true) or `or` (any child true), stopping at the first decider."""

    __slots__ = ("children", "kind", "want_all")

    def __init__(self, path: str, kind: str, children: tuple[_Node, ...]) -> None:
        super().__init__(path)
        self.kind, self.children, self.want_all = kind, children, kind == "and"

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        want_all = self.want_all
        result = want_all
        for child in self.children:
            if child.check(ctx, now, trace) != want_all:
                result = not want_all
                break
        if trace is not None:
            trace.append({"path": self.path, "kind": self.kind, "result": result})
        return result


class _Not(_Node):
    __slots__ = ("child",)

    def __init__(self, path: str, child: _Node) -> None:
        super().__init__(path)
        self.child = child

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        result = not self.child.check(ctx, now, trace)
        if trace is not None:
            trace.append({"path": self.path, "kind": "not", "result": result})
        return result


class _Comparison(_Node):
    __slots__ = ("op", "segments", "test")

    def __init__(self, path: str, op: str, segments: tuple[tuple[str, int | None], ...], test: Test) -> None:
        super().__init__(path)
        self.op, self.segments, self.test = op, segments, test

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        actual = _resolve(ctx, self.segments)
        result = self.test(actual)
        if trace is not None:
            record: TraceRecord = {"path": self.path, "kind": self.op, "result": result}
            if actual is MISSING:
                record["missing"] = True
            else:
                record["actual"] = _shorten(actual)
            trace.append(record)
        return result


class _TimeWindow(_Node):
    __slots__ = ("after", "before", "days", "tz")

    def __init__(self, path: str, after: int | None, before: int | None, days: int, tz: ZoneInfo) -> None:
        super().__init__(path)
        self.after, self.before, self.days, self.tz = after, before, days, tz

    def check(self, ctx: Any, now: datetime, trace: list[TraceRecord] | None) -> bool:
        local = now.astimezone(self.tz)
        minute, weekday = local.hour * 60 + local.minute, local.weekday()
        after, before = self.after, self.before
        if after is not None and before is not None and after > before:
            inside = minute >= after or minute < before
            if minute < before:
                weekday = (weekday - 1) % 7  # the early-morning part belongs to yesterday's window
        else:
            inside = (after is None or minute >= after) and (before is None or minute < before)
        result = inside and bool(self.days & (1 << weekday))
        if trace is not None:
            shown = local.strftime("%a %H:%M %Z")
            trace.append({"path": self.path, "kind": "time_window", "result": result, "actual": shown})
        return result


def _resolve(ctx: Any, segments: tuple[tuple[str, int | None], ...]) -> Any:
    current = ctx
    for key, index in segments:
        if type(current) is dict or isinstance(current, Mapping):
            current = current.get(key, MISSING)
            if current is MISSING:
                return MISSING
        elif index is not None and isinstance(current, list | tuple):
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def _shorten(value: Any) -> str | int | float | bool | None:
    if value is None or type(value) in NUMERIC or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return value if len(value) <= MAX_TRACE_VALUE_CHARS else value[: MAX_TRACE_VALUE_CHARS - 1] + "…"
    return _shortener.repr(value)[:MAX_TRACE_VALUE_CHARS]


# -- compilation (validation happens here, in one pass) ------------------------------


def _compile(node: object, path: str, depth: int, budget: list[int]) -> _Node:
    if depth > MAX_DEPTH:
        raise ConditionError(path, f"nested deeper than {MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise ConditionError(path, f"more than {MAX_NODES} nodes in one condition")
    if isinstance(node, bool):
        return _Literal(path, node)
    if not isinstance(node, dict):
        raise ConditionError(path, f"a condition is an object or true/false, not {type_name(node)}")
    if "field" in node or "op" in node:
        return _compile_comparison(node, path)
    for key in node:
        if key not in _LOGICAL:
            raise ConditionError(
                join_path(path, key), "unknown node kind (and, or, not, time_window, or field/op/value)"
            )
    if len(node) != 1:
        raise ConditionError(path, f"one kind per node, found {', '.join(node)}")
    kind, body = next(iter(node.items()))
    body_path = join_path(path, kind)
    if kind == "not":
        return _Not(path, _compile(body, body_path, depth + 1, budget))
    if kind == "time_window":
        return _compile_time_window(body, path)
    if not isinstance(body, list) or not body:
        raise ConditionError(body_path, f"{kind} takes a non-empty list of conditions")
    children = tuple(
        _compile(child, join_path(body_path, i), depth + 1, budget) for i, child in enumerate(body)
    )
    return _All(path, kind, children)


def _compile_comparison(node: dict[Any, Any], path: str) -> _Node:
    for key in node:
        if key not in _COMPARISON_KEYS:
            raise ConditionError(
                join_path(path, key), "unknown key (a comparison has field, op, value, flags)"
            )
    for key in ("field", "op", "value"):
        if key not in node:
            raise ConditionError(join_path(path, key), "missing")
    field, op = node["field"], node["op"]
    if not isinstance(field, str) or not _FIELD_RE.fullmatch(field):
        raise ConditionError(join_path(path, "field"), "a dotted path of letters, digits, _ and -")
    if op not in BUILDERS:
        raise ConditionError(join_path(path, "op"), f"unknown op {op!r}; one of {', '.join(BUILDERS)}")
    if "flags" in node and op != "regex":
        raise ConditionError(join_path(path, "flags"), "flags apply to op regex only")
    test = BUILDERS[op](node["value"], join_path(path, "value"), node, path)
    segments = tuple((part, int(part) if part.isdigit() else None) for part in field.split("."))
    return _Comparison(path, op, segments, test)


def _compile_time_window(body: object, node_path: str) -> _Node:
    path = join_path(node_path, "time_window")
    if not isinstance(body, dict):
        raise ConditionError(path, "an object with after, before, days and tz")
    for key in body:
        if key not in ("after", "before", "days", "tz"):
            raise ConditionError(join_path(path, key), "unknown key (after, before, days, tz)")
    if "tz" not in body:
        raise ConditionError(join_path(path, "tz"), "missing (an IANA time zone like Europe/Zurich)")
    tz = _zone(body["tz"], join_path(path, "tz"))
    after = _minutes(body["after"], join_path(path, "after")) if "after" in body else None
    before = _minutes(body["before"], join_path(path, "before")) if "before" in body else None
    if after is None and before is None and "days" not in body:
        raise ConditionError(path, "needs after, before or days")
    if after is not None and after == before:
        raise ConditionError(path, "after and before are equal: the window would be empty")
    days = _days(body["days"], join_path(path, "days")) if "days" in body else 0b111_1111
    return _TimeWindow(node_path, after, before, days, tz)


def _zone(name: object, path: str) -> ZoneInfo:
    if not isinstance(name, str):
        raise ConditionError(path, "an IANA time zone name like Europe/Zurich")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConditionError(path, f"unknown time zone {name!r}") from None


def _minutes(value: object, path: str) -> int:
    match = _HHMM_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ConditionError(path, "a 24-hour time HH:MM, like 06:30")
    return int(match[1]) * 60 + int(match[2])


def _days(value: object, path: str) -> int:
    if not isinstance(value, list) or not value:
        raise ConditionError(path, "a non-empty list of days (mon, tue, ...)")
    mask = 0
    for i, day in enumerate(value):
        if not isinstance(day, str) or day.lower() not in DAYS:
            raise ConditionError(join_path(path, i), f"unknown day {day!r}; one of {', '.join(DAYS)}")
        mask |= 1 << DAYS.index(day.lower())
    return mask

