from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.processes import _sandbox, templating
from station.processes.errors import DefinitionError
from station.processes.templating import (
    MAX_NESTING,
    MAX_OUTPUT_CHARS,
    MissingVariable,
    TemplateError,
    render,
    render_reporting,
    validate_template,
)

VARIABLES: dict[str, Any] = {
    "event": {
        "from_node": "!a1b2c3d4",
        "battery_level": 17,
        "voltage": 3.61,
        "position": {"latitude": 46.95, "longitude": 7.44},
        "parts": ["a", "b"],
        "online": True,
        "distance_m": 12345,
        "age_s": 300,
    },
    "vars": {"team": "north"},
}


def test_renders_every_string_and_keeps_the_shape() -> None:
    config = {
        "text": "Low battery on {{ event.from_node }}: {{ event.battery_level }} %",
        "to": ["{{ vars.team }}", "ops"],
        "retries": 3,
        "flag": False,
        "nothing": None,
        "nested": {"deep": [{"x": "{{ event.parts[1] }}"}]},
    }
    assert render(config, VARIABLES) == {
        "text": "Low battery on !a1b2c3d4: 17 %",
        "to": ["north", "ops"],
        "retries": 3,
        "flag": False,
        "nothing": None,
        "nested": {"deep": [{"x": "b"}]},
    }


def test_keys_and_plain_strings_are_left_alone() -> None:
    config = {"{{ event.from_node }}": "plain text, no markers: {x}"}
    assert render(config, VARIABLES) == config


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.battery_level }}", 17),
        ("{{ event.voltage }}", 3.61),
        ("{{ event.position }}", {"latitude": 46.95, "longitude": 7.44}),
        ("{{ event.parts }}", ["a", "b"]),
        ("{{ event.online }}", True),
        ("{{ event.battery_level + 1 }}", 18),
        ("{{ 20 }}", 20),
        ("{{ [1, 2] }}", [1, 2]),
        ("{{ none }}", None),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{- event.battery_level -}}", 17),
        ("{{ event.from_node }}", "!a1b2c3d4"),
        # Anything around the expression makes it text.
        (" {{ event.battery_level }}", " 17"),
        ("{{ event.battery_level }} %", "17 %"),
        ("{{ event.battery_level }}{{ event.battery_level }}", "1717"),
        ("{% if event.online %}{{ event.battery_level }}{% endif %}", "17"),
    ],
)
def test_a_single_expression_renders_its_native_value(source: str, expected: Any) -> None:
    assert render(source, VARIABLES) == expected


def test_constant_containers_are_not_shared_between_renders() -> None:
    first = render("{{ [1, 2] }}", {})
    first.append(3)
    assert render("{{ [1, 2] }}", {}) == [1, 2]


def test_missing_variables_render_empty_and_are_reported_with_their_path() -> None:
    config = {
        "text": "node {{ event.nope }} in {{ nobody }}",
        "list": ["{{ event.position.altitude.metres }}", "{{ gone }}"],
        "fine": "{{ gone | default('n/a') }}",
        "loop": "{% for x in missing_list %}{{ x }}{% endfor %}",
    }
    result = render_reporting(config, VARIABLES, path="config")
    assert result.value == {"text": "node  in ", "list": ["", ""], "fine": "n/a", "loop": ""}
    assert result.missing == (
        MissingVariable("config.text", "'dict object' has no attribute 'nope'"),
        MissingVariable("config.text", "'nobody' is undefined"),
        MissingVariable("config.list.0", "'dict object' has no attribute 'altitude'"),
        MissingVariable("config.list.1", "'gone' is undefined"),
        MissingVariable("config.loop", "'missing_list' is undefined"),
    )


def test_using_a_missing_variable_in_arithmetic_is_an_error() -> None:
    with pytest.raises(TemplateError, match="undefined value used") as caught:
        render({"n": "{{ gone + 1 }}"}, {})
    assert caught.value.path == "n"


@pytest.mark.parametrize(
    "source",
    [
        "{{ event.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ event.parts.append(3) }}",
        "{{ event.update({'x': 1}) }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ event | attr('__class__') }}",
        "{{ '{0.__class__}'.format(event) }}",
    ],
)
def test_sandbox_escapes_fail_with_template_error(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render({"body": source}, VARIABLES)
    assert caught.value.path == "body"
    assert VARIABLES["event"]["parts"] == ["a", "b"]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{% for i in range(100000) %}{{ i }}{% endfor %}", "output exceeds"),
        ("{{ 'x' * 100000 }}", "repetition"),
        ("{{ [0] * 10 ** 6 }}", "repetition"),
        ("{{ 10 ** 100000 }}", "bits"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("{{ range(10 ** 9) | list }}", "range"),
        ("{{ event.from_node | km }}", "ValueError"),
    ],
)
def test_runaway_or_failing_templates_raise_template_error(source: str, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        render(source, VARIABLES)


def test_output_at_the_limit_is_fine() -> None:
    source = "{% for i in range(" + str(MAX_OUTPUT_CHARS) + ") %}x{% endfor %}"
    assert len(render(source, {})) == MAX_OUTPUT_CHARS


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"text": "{{ unclosed"}, "config.text", "does not parse"),
        ({"a": ["ok", {"b": "{% if %}"}]}, "config.a.1.b", "does not parse"),
        ({"text": "{{ x | nosuchfilter }}"}, "config.text", "No filter named"),
        ({"text": "line\n{{ x ) }}"}, "config.text", "line 2"),
        ({"text": "{% include 'secrets' %}"}, "config.text", "not available"),
        ({"text": "{% extends 'base' %}"}, "config.text", "not available"),
        ({"text": "{% import 'm' as m %}"}, "config.text", "not available"),
    ],
)
def test_validate_names_the_bad_string(value: Any, path: str, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(value, "config")
    assert caught.value.path == path
    assert words in caught.value.message
    assert isinstance(caught.value, DefinitionError)
    assert str(caught.value).startswith(f"{path}: ")


def test_validate_accepts_good_templates_and_non_strings() -> None:
    validate_template({"a": "{{ x | round(1) }} {{ y | default('-') | upper }}", "b": [1, None, True]}, "c")


def test_nesting_is_bounded() -> None:
    value: Any = "{{ x }}"
    for _ in range(MAX_NESTING + 1):
        value = [value]
    with pytest.raises(TemplateError, match="nested deeper"):
        validate_template(value, "config")


def test_filters_km_and_ago() -> None:
    assert render("{{ event.distance_m | km }}", VARIABLES) == 12.3
    assert render("{{ event.distance_m | km }} km", VARIABLES) == "12.3 km"
    assert render("{{ event.age_s | ago }}", VARIABLES) == "5 min ago"
    assert [render("{{ s | ago }}", {"s": s}) for s in (0, 59, 3600, 2 * 86400, -90)] == [
        "0 s ago",
        "59 s ago",
        "1 h ago",
        "2 d ago",
        "in 1 min",
    ]
    assert render("{{ v | round(1) }} V, {{ t | upper }}", {"v": 3.649, "t": "ok"}) == "3.6 V, OK"


def test_filters_pass_missing_values_through_as_missing() -> None:
    result = render_reporting({"d": "{{ event.gone | km }}", "a": "{{ gone | ago }}"}, VARIABLES)
    assert result.value == {"d": "", "a": ""}
    assert len(result.missing) == 2


def test_compiled_templates_are_cached() -> None:
    source = "cache probe {{ event.battery_level }}"
    render(source, VARIABLES)
    before = _sandbox._compile.cache_info().hits
    for _ in range(5):
        render(source, VARIABLES)
    assert _sandbox._compile.cache_info().hits == before + 5


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("{}%#()|.x 1+-*'\"_"), max_size=30))
def test_arbitrary_text_renders_or_raises_template_error(source: str) -> None:
    with contextlib.suppress(TemplateError):
        render(source, {"x": 1})


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=50).filter(lambda s: not any(m in s for m in ("{{", "{%", "{#"))))
def test_text_without_markers_is_returned_unchanged(source: str) -> None:
    assert render(source, {}) is source


def test_a_dict_key_wins_over_the_dict_method_of_that_name() -> None:
    variables = {"event": {"board_id": "ws-1", "values": {"temperature": 21.5}, "data": {"a": 1}}}
    assert render("{{ event.values.temperature }}", variables) == 21.5
    assert render("{{ event.board_id }} at {{ event.values.temperature }}", variables) == "ws-1 at 21.5"
    assert render("{% for k, v in event.data.items() %}{{ k }}={{ v }}{% endfor %}", variables) == "a=1"
    with pytest.raises(TemplateError):  # the sandbox still guards what is not a key
        render("{{ event.data.__class__ }}", variables)


_NAMES = ("a", "b", "items", "values", "_x")
_LEAVES = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5) | st.lists(st.integers(0, 3), max_size=2)
_TREES = st.recursive(_LEAVES, lambda inner: st.dictionaries(st.sampled_from(_NAMES), inner, max_size=4), max_leaves=12)


def _through_jinja(source: str, variables: dict[str, Any]) -> Any:
    """What the template itself renders to, without the renderer's dotted-lookup shortcut."""
    compiled = _sandbox.compiled(source, "x")
    with _sandbox.rendering_errors("x"):
        return templating._native(next(iter(compiled.template.generate(variables)), ""), "x")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(("event", *_NAMES)), _TREES, max_size=4),
       st.lists(st.sampled_from(("event", *_NAMES)), min_size=1, max_size=4))
def test_a_dotted_variable_renders_as_jinja_renders_it(variables: dict[str, Any], names: list[str]) -> None:
    source = "{{ " + ".".join(names) + " }}"
    try:
        expected: Any = _through_jinja(source, variables)
    except TemplateError as exc:
        with pytest.raises(TemplateError) as raised:
            render(source, variables)
        assert raised.value.message == exc.message
        return
    result = render_reporting(source, variables)
    assert result.value == expected
    assert type(result.value) is type(expected)
    assert bool(result.missing) == (expected == "" and not _resolves_to_empty_text(variables, names))


def _resolves_to_empty_text(variables: dict[str, Any], names: list[str]) -> bool:
    value: Any = variables
    for name in names:
        if not isinstance(value, dict) or name not in value:
            return False
        value = value[name]
    return value == ""

