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
- Lazy: jinja2 is imported (through `_sandbox`, which holds everything that needs it) on
  the first string with a marker, so stations without templated strings never load it.

Owns template syntax, rendering and (in `_sandbox`) our filters (`km`, `ago`). Must
not do I/O, log, or know which action a config belongs to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from station.processes.errors import TemplateError, join_path

if TYPE_CHECKING:
    from station.processes._sandbox import Compiled

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


def _jinja() -> ModuleType:
    """The jinja2 half (`_sandbox`), imported on first use: most stations never need it."""
    from station.processes import _sandbox  # here, not at the top: jinja2 costs ~3-4 MB of RSS

    return _sandbox


def _compiled(source: str, path: str) -> Compiled:
    """The compiled string (cached); errors carry `path`."""
    compiled: Compiled = _jinja().compiled(source, path)
    return compiled


def _render_string(source: str, path: str, variables: Mapping[str, Any]) -> Any:
    sandbox = _jinja()
    compiled = _compiled(source, path)
    if compiled.constant is not sandbox.NOT_CONSTANT:
        return _native(copy.deepcopy(compiled.constant), path)  # a copy: callers may mutate what we return
    if compiled.lookup is not None:
        found = _dict_lookup(variables, compiled.lookup)
        if found is not _NOT_FOUND:
            return _native(found, path)
    with sandbox.rendering_errors(path):
        if compiled.native:
            return _native(next(iter(compiled.template.generate(variables)), ""), path)
        return _joined(compiled.template.generate(variables), path)


_NOT_FOUND: Any = object()


def _dict_lookup(variables: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """`event.a.b` through mappings that have each key, as the sandbox resolves it; else _NOT_FOUND."""
    value: Any = variables
    for name in names:
        if not isinstance(value, Mapping) or name not in value:
            return _NOT_FOUND
        value = value[name]
    return value


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
