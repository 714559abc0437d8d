"""Comparison operators of condition trees: each op's builder checks its `value` when a
process is created and returns the test run on every event; and regex safety (a bounded
pattern length, no nested quantifiers, a bounded searched text).

Owns operator semantics; conditions.py owns the tree around them.
"""

from __future__ import annotations

import importlib
import math
import operator
import re
from collections.abc import Callable
from typing import Any, Final

from station.processes.errors import ConditionError, join_path

MAX_REGEX_LENGTH = 256  # rule patterns are keywords; long patterns are where backtracking hides
MAX_REGEX_INPUT_CHARS = 1024  # mesh texts are <= 233 B; quadratic patterns cost ~10 ms here, 150 at 4 KiB
REGEX_FLAGS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
NUMERIC = frozenset({int, float})  # type() membership: excludes bool, which JSON keeps apart
MAX_DEPTH = 32  # hand-written rules nest a few levels; bounds recursion far below Python's limit
MISSING: Final = object()  # what a field path that does not resolve gives

Test = Callable[[Any], bool]
Builder = Callable[[Any, str, dict[Any, Any], str], Test]


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if type(value) in NUMERIC:
        return "a number"
    names: dict[type, str] = {list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


# -- op builders: validate `value`, return the test for an actual value ---------------

def _is_json(value: object, depth: int = 0) -> bool:
    if value is None or isinstance(value, str | bool) or type(value) in NUMERIC:
        return True
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    return actual is not MISSING and bool(actual == expected)


def _number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _build_eq(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not _is_json(value):
        raise ConditionError(path, "a JSON value")
    if isinstance(value, str):
        return lambda a: a == value  # str == anything else is simply False
    return lambda a: _equal(a, value)


def _build_ne(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    equal = _build_eq(value, path, node, node_path)
    return lambda a: a is not MISSING and not equal(a)


def _build_order(compare: Callable[[Any, Any], bool]) -> Builder:
    def build(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
        if _number(value):
            return lambda a: type(a) in NUMERIC and compare(a, value)
        if isinstance(value, str):
            return lambda a: isinstance(a, str) and compare(a, value)
        raise ConditionError(path, f"{node['op']} needs a finite number or a string")

    return build


def _build_between(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not (isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value)):
        raise ConditionError(path, "between needs [low, high], two numbers")
    low, high = value
    if low > high:
        raise ConditionError(path, f"low {low} is above high {high}")
    return lambda a: type(a) in NUMERIC and low <= a <= high


def _build_in(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not isinstance(value, list) or not _is_json(value):
        raise ConditionError(path, f"{node['op']} needs a list of values")
    if all(isinstance(v, str) for v in value):
        strings = frozenset(value)
        return lambda a: isinstance(a, str) and a in strings
    return lambda a: any(_equal(a, v) for v in value)


def _build_not_in(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    inside = _build_in(value, path, node, node_path)
    return lambda a: a is not MISSING and not inside(a)


def _contains(actual: Any, value: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(value, str) and value in actual
    return any(_equal(item, value) for item in actual)


def _build_contains(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not (value is None or isinstance(value, str | bool) or _number(value)):
        raise ConditionError(path, f"{node['op']} needs a string, number, boolean or null")
    if node["op"] == "contains":
        return lambda a: isinstance(a, str | list) and _contains(a, value)
    return lambda a: isinstance(a, str | list) and not _contains(a, value)


def _build_affix(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not isinstance(value, str):
        raise ConditionError(path, f"{node['op']} needs a string")
    if node["op"] == "startswith":
        return lambda a: isinstance(a, str) and a.startswith(value)
    return lambda a: isinstance(a, str) and a.endswith(value)


def _build_exists(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not isinstance(value, bool):
        raise ConditionError(path, "exists needs true or false")
    return lambda a: (a is not MISSING and a is not None) is value


def _build_regex(value: Any, path: str, node: dict[Any, Any], node_path: str) -> Test:
    if not isinstance(value, str):
        raise ConditionError(path, "regex needs a pattern string")
    if len(value) > MAX_REGEX_LENGTH:
        raise ConditionError(path, f"pattern of {len(value)} characters exceeds the {MAX_REGEX_LENGTH} limit")
    flags_text = node.get("flags", "")
    if not isinstance(flags_text, str) or not set(flags_text) <= set(REGEX_FLAGS):
        raise ConditionError(join_path(node_path, "flags"), "a string of flags from i, m, s")
    flags = 0
    for letter in flags_text:
        flags |= REGEX_FLAGS[letter]
    try:
        pattern = re.compile(value, flags)
    except re.error as exc:
        raise ConditionError(path, f"does not compile: {exc}") from None
    if _nested_repeat(_sre_parser.parse(value, flags), inside_repeat=False):
        raise ConditionError(
            path, "nested quantifiers like (a+)+ can take exponential time; use a++ or (?>...) inside"
        )
    search = pattern.search
    return lambda a: isinstance(a, str) and search(a[:MAX_REGEX_INPUT_CHARS]) is not None


# The parser behind `re`; `re._parser` is private but stable since 3.11 (sre_parse warns).
_sre_parser: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("re._constants")
_BACKTRACKING_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)
_NO_BACKTRACK = (_sre.POSSESSIVE_REPEAT, _sre.ATOMIC_GROUP)


def _nested_repeat(pattern: Any, *, inside_repeat: bool) -> bool:
    """True if a backtracking repeat of variable count sits inside an unbounded repeat."""
    for op, arg in pattern:
        if op in _BACKTRACKING_REPEATS:
            low, high, body = arg
            if inside_repeat and high != low:
                return True
            if _nested_repeat(body, inside_repeat=inside_repeat or high == _sre.MAXREPEAT):
                return True
        elif op in _NO_BACKTRACK:
            body = arg[2] if op == _sre.POSSESSIVE_REPEAT else arg
            if _nested_repeat(body, inside_repeat=False):  # its body cannot be re-entered by backtracking
                return True
        elif any(_nested_repeat(sub, inside_repeat=inside_repeat) for sub in _subpatterns(arg)):
            return True
    return False


def _subpatterns(arg: Any) -> list[Any]:
    if isinstance(arg, _sre_parser.SubPattern):
        return [arg]
    if isinstance(arg, list | tuple):
        return [sub for item in arg for sub in _subpatterns(item)]
    return []


BUILDERS: dict[str, Builder] = {
    "eq": _build_eq,
    "ne": _build_ne,
    "lt": _build_order(operator.lt),
    "lte": _build_order(operator.le),
    "gt": _build_order(operator.gt),
    "gte": _build_order(operator.ge),
    "between": _build_between,
    "in": _build_in,
    "not_in": _build_not_in,
    "contains": _build_contains,
    "not_contains": _build_contains,
    "startswith": _build_affix,
    "endswith": _build_affix,
    "regex": _build_regex,
    "exists": _build_exists,
}
