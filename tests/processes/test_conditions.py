from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.processes.conditions import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_REGEX_INPUT_CHARS,
    MAX_REGEX_LENGTH,
    ConditionError,
    compile_condition,
    evaluate,
    validate_condition,
)
from station.processes.errors import DefinitionError, ProcessError

EXAMPLE: dict[str, Any] = {
    "and": [
        {"field": "event.battery_level", "op": "lt", "value": 20},
        {
            "or": [
                {"field": "event.from_node", "op": "in", "value": ["!a1b2c3d4", "!00000001"]},
                {"field": "event.text", "op": "regex", "value": "^(help|sos)\\b", "flags": "i"},
            ]
        },
        {"not": {"field": "event.channel", "op": "eq", "value": 3}},
        {
            "time_window": {
                "after": "22:00",
                "before": "06:00",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "tz": "Europe/Zurich",
            }
        },
    ]
}
FRIDAY_NIGHT = datetime(2024, 3, 8, 22, 30, tzinfo=UTC)  # Fri 23:30 in Zurich (CET)
SATURDAY_NIGHT = datetime(2024, 3, 9, 22, 30, tzinfo=UTC)  # Sat 23:30 in Zurich
NOON = datetime(2024, 3, 8, 11, 0, tzinfo=UTC)


def sos_event(**changes: Any) -> dict[str, Any]:
    event = {"battery_level": 12, "from_node": "!ffffffff", "text": "SOS need water", "channel": 0}
    event.update(changes)
    return {"event": event}


def check(node: Any, context: Any, now: datetime = NOON) -> bool:
    return compile_condition(node).evaluate(context, now).passed


# -- the example tree -----------------------------------------------------------------


def test_example_tree_passes_and_traces_every_evaluated_node() -> None:
    result = evaluate(EXAMPLE, sos_event(), FRIDAY_NIGHT)
    assert result.passed
    by_path = {record["path"]: record for record in result.trace}
    assert by_path["and.0"] == {"path": "and.0", "kind": "lt", "result": True, "actual": 12}
    assert by_path["and.1.or.0"]["result"] is False
    assert by_path["and.1.or.1"]["actual"] == "SOS need water"
    assert by_path["and.2.not"] == {"path": "and.2.not", "kind": "eq", "result": False, "actual": 0}
    assert by_path["and.2"]["kind"] == "not"
    assert by_path["and.3"] == {
        "path": "and.3",
        "kind": "time_window",
        "result": True,
        "actual": "Fri 23:30 CET",
    }
    assert result.trace[-1] == {"path": "", "kind": "and", "result": True}
    json.dumps(result.trace)  # stores as it is


@pytest.mark.parametrize(
    ("changes", "now"),
    [
        ({"battery_level": 50}, FRIDAY_NIGHT),
        ({"text": "all good"}, FRIDAY_NIGHT),
        ({"channel": 3}, FRIDAY_NIGHT),
        ({}, SATURDAY_NIGHT),
        ({}, NOON),
    ],
)
def test_example_tree_fails_when_any_branch_fails(changes: dict[str, Any], now: datetime) -> None:
    assert not compile_condition(EXAMPLE).evaluate(sos_event(**changes), now).passed


def test_and_or_short_circuit_and_trace_only_evaluated_nodes() -> None:
    tree = {"or": [True, {"field": "x", "op": "eq", "value": 1}]}
    result = evaluate(tree, {}, NOON)
    assert result.passed
    assert [record["path"] for record in result.trace] == ["or.0", ""]


def test_trace_off_allocates_no_trace_and_agrees() -> None:
    compiled = compile_condition(EXAMPLE)
    off = compiled.evaluate(sos_event(), FRIDAY_NIGHT, trace=False)
    on = compiled.evaluate(sos_event(), FRIDAY_NIGHT, trace=True)
    assert off.passed is on.passed is True
    assert off.trace == ()
    assert off is compiled.evaluate(sos_event(channel=1), FRIDAY_NIGHT)  # the shared result object


def test_trace_shortens_values_and_flags_missing_fields() -> None:
    tree = {
        "and": [
            {"field": "event.text", "op": "contains", "value": "x"},
            {"field": "event.parts", "op": "contains", "value": 1},
            {"field": "event.nope", "op": "exists", "value": False},
        ]
    }
    result = evaluate(tree, {"event": {"text": "x" * 500, "parts": list(range(100))}}, NOON)
    text, parts, missing = result.trace[:3]
    assert isinstance(text["actual"], str) and len(text["actual"]) == 80 and text["actual"].endswith("…")
    assert isinstance(parts["actual"], str) and len(parts["actual"]) <= 80
    assert missing["missing"] is True and "actual" not in missing


def test_evaluate_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        compile_condition(True).evaluate({}, datetime(2024, 1, 1))


def test_literals() -> None:
    assert check(True, {})
    assert not check(False, {})
    assert check({"not": False}, {})


# -- comparisons ----------------------------------------------------------------------

CONTEXT = {
    "event": {
        "n": 5,
        "f": 2.5,
        "s": "Hello World",
        "b": True,
        "z": None,
        "parts": ["a", "b", 3],
        "position": {"latitude": 46.9, "longitude": 7.4},
        "nested": [{"id": "x"}, {"id": "y"}],
    }
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("event.n", "eq", 5, True),
        ("event.n", "eq", 5.0, True),
        ("event.n", "eq", "5", False),  # no coercion
        ("event.b", "eq", 1, False),  # booleans are not numbers
        ("event.b", "eq", True, True),
        ("event.z", "eq", None, True),
        ("event.parts", "eq", ["a", "b", 3], True),
        ("event.position", "eq", {"latitude": 46.9, "longitude": 7.4}, True),
        ("event.n", "ne", 4, True),
        ("event.n", "ne", 5, False),
        ("event.n", "lt", 6, True),
        ("event.n", "lte", 5, True),
        ("event.n", "gt", 5, False),
        ("event.f", "gte", 2.5, True),
        ("event.s", "lt", "Z", True),  # strings order lexicographically
        ("event.s", "lt", 10, False),  # a string is never below a number
        ("event.b", "lt", 2, False),
        ("event.n", "between", [5, 10], True),
        ("event.f", "between", [3, 10], False),
        ("event.n", "in", [1, 5], True),
        ("event.s", "in", ["Hello World"], True),
        ("event.b", "in", [1], False),
        ("event.n", "not_in", [1, 2], True),
        ("event.s", "not_in", ["Hello World"], False),
        ("event.s", "contains", "World", True),
        ("event.s", "contains", 3, False),
        ("event.parts", "contains", 3, True),
        ("event.parts", "contains", "c", False),
        ("event.n", "contains", 5, False),  # contains applies to strings and lists only
        ("event.s", "not_contains", "xyz", True),
        ("event.parts", "not_contains", "a", False),
        ("event.n", "not_contains", 1, False),
        ("event.s", "startswith", "Hell", True),
        ("event.s", "endswith", "World", True),
        ("event.s", "endswith", "Hell", False),
        ("event.n", "startswith", "5", False),
        ("event.s", "regex", "^hello", False),
        ("event.n", "regex", "5", False),
        ("event.position.latitude", "gt", 46.5, True),
        ("event.parts.0", "eq", "a", True),
        ("event.parts.2", "eq", 3, True),
        ("event.nested.1.id", "eq", "y", True),
        ("event.position.0", "eq", 46.9, False),  # indices apply to lists only
    ],
)
def test_comparison_ops(field: str, op: str, value: Any, expected: bool) -> None:
    assert check({"field": field, "op": op, "value": value}, CONTEXT) is expected


@pytest.mark.parametrize(
    ("flags", "text", "expected"),
    [
        ("", "SOS", False),
        ("i", "SOS now", True),
        ("m", "ok\nsos", True),
        ("s", "sos\nhelp", True),
    ],
)
def test_regex_flags(flags: str, text: str, expected: bool) -> None:
    pattern = "^sos.help" if flags == "s" else "^sos"
    node = {"field": "t", "op": "regex", "value": pattern, "flags": flags}
    assert check(node, {"t": text}) is expected


def test_regex_searches_only_the_capped_prefix() -> None:
    node = {"field": "t", "op": "regex", "value": "needle"}
    assert check(node, {"t": "x" * (MAX_REGEX_INPUT_CHARS - 6) + "needle"})
    assert not check(node, {"t": "x" * MAX_REGEX_INPUT_CHARS + "needle"})


def test_regex_with_possessive_or_atomic_repeats_is_accepted_and_fast() -> None:
    for pattern in [r"(a++)+b", r"(?>a+)+b", r"^(\w+)\s(\d+)$", r"(ab)+c", r"(a{2})+b"]:
        compiled = compile_condition({"field": "t", "op": "regex", "value": pattern})
        started = time.monotonic()
        compiled.evaluate({"t": "a" * 100_000}, NOON)
        assert time.monotonic() - started < 0.1, pattern


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "in", "not_in", "contains", "not_contains", "regex"])
def test_a_missing_field_makes_every_comparison_false(op: str) -> None:
    value: Any = {"in": ["x"], "not_in": ["x"], "regex": "x"}.get(op, "x")
    for context in [{}, {"event": {}}, {"event": "flat"}, {"event": [1]}, None]:
        assert not check({"field": "event.gone", "op": op, "value": value}, context)


def test_exists() -> None:
    assert check({"field": "event.n", "op": "exists", "value": True}, CONTEXT)
    assert check({"field": "event.gone", "op": "exists", "value": False}, CONTEXT)
    assert not check({"field": "event.z", "op": "exists", "value": True}, CONTEXT)  # null is absent
    assert check({"field": "event.parts.5", "op": "exists", "value": False}, CONTEXT)


# -- time windows ---------------------------------------------------------------------


def window(**spec: Any) -> dict[str, Any]:
    return {"time_window": {"tz": "Europe/Zurich", **spec}}


def zurich(day: int, hour: int, minute: int) -> datetime:
    """Local Zurich time in the week of Monday 2024-03-04, as the UTC instant the engine passes."""
    return datetime(2024, 3, day, hour, minute, tzinfo=ZoneInfo("Europe/Zurich")).astimezone(UTC)


@pytest.mark.parametrize(
    ("spec", "local", "expected"),
    [
        ({"after": "08:00", "before": "17:00"}, (4, 8, 0), True),  # after is inclusive
        ({"after": "08:00", "before": "17:00"}, (4, 16, 59), True),
        ({"after": "08:00", "before": "17:00"}, (4, 17, 0), False),  # before is exclusive
        ({"after": "22:00", "before": "06:00"}, (4, 23, 0), True),
        ({"after": "22:00", "before": "06:00"}, (5, 5, 59), True),
        ({"after": "22:00", "before": "06:00"}, (5, 12, 0), False),
        ({"after": "20:00"}, (4, 23, 59), True),
        ({"after": "20:00"}, (4, 19, 59), False),
        ({"before": "06:00"}, (4, 0, 0), True),
        ({"before": "06:00"}, (4, 6, 0), False),
        ({"days": ["sat", "sun"]}, (9, 12, 0), True),
        ({"days": ["Sat"]}, (4, 12, 0), False),
        # A window crossing midnight belongs to the day it opens: Fri 22:00 - Sat 06:00.
        ({"after": "22:00", "before": "06:00", "days": ["fri"]}, (9, 3, 0), True),
        ({"after": "22:00", "before": "06:00", "days": ["fri"]}, (8, 3, 0), False),
        ({"after": "22:00", "before": "06:00", "days": ["fri"]}, (8, 23, 0), True),
    ],
)
def test_time_window(spec: dict[str, Any], local: tuple[int, int, int], expected: bool) -> None:
    assert check(window(**spec), {}, zurich(*local)) is expected


def test_time_window_uses_local_time_across_daylight_saving() -> None:
    tree = window(after="07:00", before="08:00")
    assert check(tree, {}, datetime(2024, 1, 15, 6, 30, tzinfo=UTC))  # 07:30 CET
    assert not check(tree, {}, datetime(2024, 7, 15, 6, 30, tzinfo=UTC))  # 08:30 CEST
    assert check(tree, {}, datetime(2024, 7, 15, 5, 30, tzinfo=UTC))  # 07:30 CEST


# -- validation -----------------------------------------------------------------------


def cmp(op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"field": "event.x", "op": op, "value": value, **extra}


def nested_not(depth: int) -> Any:
    tree: Any = True
    for _ in range(depth - 1):
        tree = {"not": tree}
    return tree


@pytest.mark.parametrize(
    ("tree", "path", "words"),
    [
        ("yes", "", "object or true/false"),
        ({}, "", "one kind per node"),
        ({"and": [True], "or": [True]}, "", "one kind per node"),
        ({"xor": [True]}, "xor", "unknown node kind"),
        ({"and": []}, "and", "non-empty list"),
        ({"or": True}, "or", "non-empty list"),
        ({"and": [True, {"or": [cmp("bogus", 1)]}]}, "and.1.or.0.op", "unknown op"),
        ({"and": [cmp("eq", 1, extra=1)]}, "and.0.extra", "unknown key"),
        ({"field": "x", "op": "eq"}, "value", "missing"),
        ({"op": "eq", "value": 1}, "field", "missing"),
        ({"field": "a..b", "op": "eq", "value": 1}, "field", "dotted path"),
        ({"field": 3, "op": "eq", "value": 1}, "field", "dotted path"),
        ({"not": [True]}, "not", "object or true/false"),
        (cmp("eq", {1, 2}), "value", "JSON value"),
        (cmp("lt", [1]), "value", "number or a string"),
        (cmp("lt", float("nan")), "value", "number or a string"),
        (cmp("gte", None), "value", "number or a string"),
        (cmp("between", [1]), "value", "two numbers"),
        (cmp("between", [1, "2"]), "value", "two numbers"),
        (cmp("between", [True, 2]), "value", "two numbers"),
        (cmp("between", [5, 1]), "value", "above high"),
        (cmp("in", "abc"), "value", "list"),
        (cmp("not_in", 3), "value", "list"),
        (cmp("contains", [1]), "value", "string, number"),
        (cmp("startswith", 1), "value", "string"),
        (cmp("exists", "yes"), "value", "true or false"),
        (cmp("regex", "(unclosed"), "value", "does not compile"),
        (cmp("regex", "a" * (MAX_REGEX_LENGTH + 1)), "value", "limit"),
        (cmp("regex", r"(a+)+$"), "value", "nested quantifiers"),
        (cmp("regex", r"(\w+\s?)*$"), "value", "nested quantifiers"),
        (cmp("regex", r"(?:x|(?:a*b)+)c"), "value", "nested quantifiers"),
        (cmp("regex", r"(a?)+b"), "value", "nested quantifiers"),
        (cmp("regex", 5), "value", "pattern string"),
        (cmp("regex", "a", flags="ix"), "flags", "i, m, s"),
        (cmp("regex", "a", flags=1), "flags", "i, m, s"),
        (cmp("eq", "a", flags="i"), "flags", "regex only"),
        ({"time_window": []}, "time_window", "an object"),
        ({"time_window": {"after": "22:00"}}, "time_window.tz", "missing"),
        ({"and": [True, True, window(after="7:00")]}, "and.2.time_window.after", "HH:MM"),
        (window(before="24:00"), "time_window.before", "HH:MM"),
        (window(after=2200), "time_window.after", "HH:MM"),
        ({"and": [True, True, window(after="22:00", tz="Mars/Olympus")]}, "and.2.time_window.tz", "unknown"),
        (window(after="22:00", tz="../../etc/passwd"), "time_window.tz", "unknown"),
        (window(after="22:00", tz=1), "time_window.tz", "IANA"),
        (window(days=["mon", "funday"]), "time_window.days.1", "unknown day"),
        (window(days=[]), "time_window.days", "non-empty"),
        (window(), "time_window", "needs after, before or days"),
        (window(after="10:00", before="10:00"), "time_window", "empty"),
        (window(after="10:00", at="now"), "time_window.at", "unknown key"),
        (nested_not(MAX_DEPTH + 1), ".".join(["not"] * MAX_DEPTH), f"deeper than {MAX_DEPTH}"),
        ({"or": [True] * MAX_NODES}, f"or.{MAX_NODES - 1}", f"more than {MAX_NODES} nodes"),
    ],
)
def test_validation_names_the_bad_part(tree: Any, path: str, words: str) -> None:
    with pytest.raises(ConditionError) as caught:
        validate_condition(tree)
    assert caught.value.path == path
    assert words in caught.value.message


def test_limits_are_inclusive() -> None:
    validate_condition(nested_not(MAX_DEPTH))
    validate_condition({"or": [True] * (MAX_NODES - 1)})


def test_errors_carry_path_and_message_and_share_the_root() -> None:
    with pytest.raises(ConditionError) as caught:
        validate_condition({"and": [cmp("bogus", 1)]}, path="conditions")
    error = caught.value
    assert isinstance(error, DefinitionError) and isinstance(error, ProcessError)
    assert error.path == "conditions.and.0.op"
    assert str(error) == f"conditions.and.0.op: {error.message}"
    with pytest.raises(ConditionError, match=r"^\(root\): "):
        validate_condition([])


# -- properties -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["x", "y", "0", "1"]), inner),
    max_leaves=20,
)
fields = st.sampled_from(["x", "y", "x.y", "x.0", "y.1.x", "x.x.x"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5)
comparisons = st.one_of(
    st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["eq", "ne"]),
        json_values,
    ),
    st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["lt", "lte", "gt", "gte"]),
        st.integers() | st.text(max_size=5),
    ),
    st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["in", "not_in"]),
        st.lists(scalars, max_size=4),
    ),
    st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["contains", "not_contains"]),
        scalars,
    ),
    st.builds(lambda f, v: {"field": f, "op": "startswith", "value": v}, fields, st.text(max_size=3)),
    st.builds(
        lambda f, v: {"field": f, "op": "regex", "value": v}, fields, st.sampled_from(["^a", "b$", "x|y"])
    ),
    st.builds(lambda f, v: {"field": f, "op": "exists", "value": v}, fields, st.booleans()),
    st.builds(lambda f: {"field": f, "op": "between", "value": [-1, 1.5]}, fields),
    st.just(
        {"time_window": {"after": "22:00", "before": "06:00", "days": ["fri"], "tz": "America/New_York"}}
    ),
)
trees = st.recursive(
    st.booleans() | comparisons,
    lambda inner: (
        st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda x: {"not": x}, inner)
    ),
    max_leaves=10,
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=100, deadline=None)
@given(tree=trees, context=json_values, now=instants)
def test_evaluation_never_raises_and_trace_agrees(tree: Any, context: Any, now: datetime) -> None:
    compiled = compile_condition(tree)
    on = compiled.evaluate(context, now, trace=True)
    assert compiled.evaluate(context, now, trace=False).passed is on.passed
    assert on.trace[-1]["path"] == "" and on.trace[-1]["result"] is on.passed
    json.dumps(on.trace)


@settings(max_examples=100, deadline=None)
@given(tree=json_values)
def test_validation_of_arbitrary_json_raises_only_condition_error(tree: Any) -> None:
    with contextlib.suppress(ConditionError):
        validate_condition(tree)
