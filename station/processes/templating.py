"""Template variables in action configs: `"Low battery on {{ event.from_node }}"`.

Every string in an action config (nested dicts and lists, keys excepted) is a Jinja
template rendered in an immutable sandbox against the run's variables. Rules:

- Native values: a string that is exactly one expression, `"{{ event.position }}"`
  (no text around it, whitespace included), renders to the expression's own value
  (number, list, dict, bool, null) instead of its text, like Home Assistant's native
  types. Anything else renders to a string.
- `a.b` on a dict is its key `b` whenever it has one (`event.values` is a board's
  readings, not the dict method), then Jinja's usual attribute-then-item lookup.
- Missing variables render as the empty string (also a native `{{ x }}`); each one is
  recorded with the path of its string, see `render_reporting`.
- Sandboxed: attributes starting with `_` (`__class__`, ...) and mutating methods fail
  with `TemplateError`; there is no loader, so `include`/`extends`/`import` are refused.
- Bounded: each rendered string stops at `MAX_OUTPUT_CHARS`, `*` cannot build a
  longer string or list, and `**` / `*` cannot build integers beyond `MAX_INT_BITS`.
  Jinja's sandbox caps `range()` at 100,000 items. CPU time is not bounded otherwise: a
  template with nested loops can still run long (definitions come from the operators).
- Compiled templates are cached (LRU, `TEMPLATE_CACHE_SIZE`): the same config renders
  for every event.

Owns template syntax, rendering and our filters (`km`, `ago`). Must not do I/O, log,
or know which action a config belongs to.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from station.processes.errors import TemplateError, join_path

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MissingVariable",
    "Rendered",
    "TemplateError",
    "render",
    "render_reporting",
    "validate_template",
]

MAX_OUTPUT_CHARS = 64 * 1024  # a mesh text is 233 bytes, a webhook body a few KiB; 64 Ki is ample
MAX_INT_BITS = 4096  # station data never needs bigger integers; bounds big-number arithmetic
MAX_NESTING = 32  # depth of dicts/lists walked in one config; real configs nest a few levels
TEMPLATE_CACHE_SIZE = 2048  # ~1,000 processes x a couple of templated strings stay compiled
_MARKERS = ("{{", "{%", "{#")
_REFUSED_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)

_missing: ContextVar[list[str] | None] = ContextVar("firefly_template_missing", default=None)


@dataclass(frozen=True, slots=True)
class MissingVariable:
    """A variable a template used but the run did not have; it rendered as ""."""

    path: str  # JSON path of the string in the config, e.g. `text` or `headers.0`
    detail: str  # Jinja's words: "'event' is undefined", "'dict object' has no attribute 'x'"


@dataclass(frozen=True, slots=True)
class Rendered:
    value: Any
    missing: tuple[MissingVariable, ...]


def validate_template(value: Any, path: str = "") -> None:
    """Raise `TemplateError` with the JSON path of the first string that does not compile."""

    def check(source: str, where: str) -> str:
        _compiled(source, where)
        return source

    _walk(value, path, 0, check)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string in `value`; same shape back. Missing variables render as ""."""
    return render_reporting(value, variables).value


def render_reporting(value: Any, variables: Mapping[str, Any], path: str = "") -> Rendered:
    """Like `render`, and say which variables were missing (and where)."""
    missing: list[MissingVariable] = []

    def render_one(source: str, where: str) -> Any:
        found: list[str] = []
        token = _missing.set(found)
        try:
            return _render_string(source, where, variables)
        finally:
            _missing.reset(token)
            missing.extend(MissingVariable(where, detail) for detail in found)

    rendered = _walk(value, path, 0, render_one)
    return Rendered(rendered, tuple(missing))


def _walk(value: Any, path: str, depth: int, on_string: Callable[[str, str], Any]) -> Any:
    if depth > MAX_NESTING:
        raise TemplateError(path, f"nested deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        return on_string(value, path) if any(marker in value for marker in _MARKERS) else value
    if isinstance(value, Mapping):
        return {key: _walk(item, join_path(path, key), depth + 1, on_string) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, join_path(path, i), depth + 1, on_string) for i, item in enumerate(value)]
    return value


# -- rendering ------------------------------------------------------------------------


def _render_string(source: str, path: str, variables: Mapping[str, Any]) -> Any:
    template, native, constant = _compiled(source, path)
    if constant is not _NOT_CONSTANT:
        return _native(copy.deepcopy(constant), path)  # a copy: callers may mutate what we return
    try:
        if native:
            return _native(next(iter(template.generate(variables)), ""), path)
        return _joined(template.generate(variables), path)
    except TemplateError:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateError(path, f"undefined value used in an expression: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(path, f"not allowed: {exc}") from None
    except Exception as exc:  # any failure of a user expression (1/0, "a" + 1, ...) is the template's
        raise TemplateError(path, f"{type(exc).__name__}: {exc}") from None


def _joined(chunks: Any, path: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        text = chunk if isinstance(chunk, str) else str(chunk)
        size += len(text)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(path, f"output exceeds {MAX_OUTPUT_CHARS} characters")
        parts.append(text)
    return "".join(parts)


def _native(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | float | list | dict):
        return value
    if isinstance(value, tuple):
        return list(value)
    text = str(value)  # str subclasses (Markup), Undefined (records it) and other objects
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateError(path, f"output exceeds {MAX_OUTPUT_CHARS} characters")
    return text


# -- compilation ----------------------------------------------------------------------

_NOT_CONSTANT: Any = object()


def _compiled(source: str, path: str) -> tuple[jinja2.Template, bool, Any]:
    """(template, is one native expression, its value if constant); errors carry `path`."""
    try:
        return _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if "\n" in source else ""
        raise TemplateError(path, f"does not parse: {exc.message}{where}") from None
    except _Refused as exc:
        raise TemplateError(path, str(exc)) from None


class _Refused(Exception):
    pass


@functools.lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _compile(source: str) -> tuple[jinja2.Template, bool, Any]:
    ast = _ENV.parse(source)
    for refused in _REFUSED_NODES:
        if ast.find(refused) is not None:
            raise _Refused("include, extends and import are not available in action templates")
    template = _ENV.from_string(ast)
    body = ast.body
    native = (
        len(body) == 1
        and isinstance(body[0], nodes.Output)
        and len(body[0].nodes) == 1
        and not isinstance(body[0].nodes[0], nodes.TemplateData)
    )
    constant = _NOT_CONSTANT
    if native:
        # Jinja folds constant output to text at compile time; keep `{{ 20 }}` a number.
        with contextlib.suppress(nodes.Impossible):
            constant = body[0].nodes[0].as_const(nodes.EvalContext(_ENV))  # type: ignore[attr-defined]
    return template, native, constant


class _RecordingUndefined(jinja2.ChainableUndefined):
    """Renders as "" like Jinja's default, and notes that it was rendered."""

    __slots__ = ()

    def _note(self) -> None:
        found = _missing.get()
        if found is not None:
            found.append(self._undefined_message)

    def __str__(self) -> str:
        self._note()
        return ""

    def __iter__(self) -> Any:
        self._note()
        return iter(())


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator  # chunks keep their type: native single values
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data before methods, as conditions resolve fields: `event.values` is a board's
        # readings, not dict.values; `.items()` still works on a dict without an "items" key.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        if _is_int(left) and _is_int(right):
            bits = left.bit_length() * right if operator == "**" else left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise SecurityError(f"result would exceed {MAX_INT_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(sequence: Any, count: Any) -> None:
    if (
        isinstance(sequence, str | list | tuple)
        and _is_int(count)
        and len(sequence) * count > MAX_OUTPUT_CHARS
    ):
        raise SecurityError(f"repetition would exceed {MAX_OUTPUT_CHARS} items")


# -- filters --------------------------------------------------------------------------


def km(metres: Any) -> Any:
    """Metres to kilometres, one decimal: `{{ 12345 | km }}` -> 12.3."""
    if isinstance(metres, jinja2.Undefined):
        return metres
    return round(float(metres) / 1000, 1)


def ago(seconds: Any) -> Any:
    """Elapsed seconds as text: `{{ 300 | ago }}` -> "5 min ago" (negative: "in 5 min")."""
    if isinstance(seconds, jinja2.Undefined):
        return seconds
    value = float(seconds)
    amount = abs(value)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{int(amount // size)} {unit}"
            break
    else:
        text = f"{int(amount)} s"
    return f"in {text}" if value < 0 else f"{text} ago"


_ENV = _Sandbox(undefined=_RecordingUndefined, autoescape=False, loader=None)
_ENV.filters.update({"km": km, "ago": ago})
