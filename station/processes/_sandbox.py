"""The Jinja half of templating.py: the sandboxed environment, our filters (`km`, `ago`),
the compiled-template cache, the refusal of include/extends/import, and the mapping of
Jinja's errors to `TemplateError`.

templating.py imports this module on the first string that has a template marker, so a
station whose processes have no templated string never loads jinja2 and markupsafe
(~3-4 MB of RSS). Nothing else may import it at module level (tests excepted). Owns no
public API: callers go through templating.py. Must not do I/O, log, or know which
action a config belongs to.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from station.processes.errors import TemplateError
from station.processes.templating import MAX_INT_BITS, MAX_OUTPUT_CHARS, TEMPLATE_CACHE_SIZE, _missing

_REFUSED_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)

NOT_CONSTANT: Any = object()


# -- compilation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compiled:
    template: jinja2.Template
    native: bool  # the string is exactly one expression: it renders to that expression's value
    constant: Any  # that value when it is known at compile time, else NOT_CONSTANT
    # `{{ event.from_node }}`: the names a dotted variable lookup walks. The renderer takes them key by
    # key through plain dicts (what the template would return, without a Jinja context per render) and
    # leaves anything else (a missing key, a non-dict on the way) to the template.
    lookup: tuple[str, ...] | None


def compiled(source: str, path: str) -> Compiled:
    """The compiled string (cached); errors carry `path`."""
    try:
        return _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if "\n" in source else ""
        raise TemplateError(path, f"does not parse: {exc.message}{where}") from None
    except _Refused as exc:
        raise TemplateError(path, str(exc)) from None


@contextlib.contextmanager
def rendering_errors(path: str) -> Iterator[None]:
    """Turn whatever a template raises while rendering into a `TemplateError` at `path`."""
    try:
        yield
    except TemplateError:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateError(path, f"undefined value used in an expression: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(path, f"not allowed: {exc}") from None
    except Exception as exc:  # any failure of a user expression (1/0, "a" + 1, ...) is the template's
        raise TemplateError(path, f"{type(exc).__name__}: {exc}") from None


class _Refused(Exception):
    pass


@functools.lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _compile(source: str) -> Compiled:
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
    constant, lookup = NOT_CONSTANT, None
    if native:
        expression = body[0].nodes[0]  # type: ignore[attr-defined]
        # Jinja folds constant output to text at compile time; keep `{{ 20 }}` a number.
        with contextlib.suppress(nodes.Impossible):
            constant = expression.as_const(nodes.EvalContext(_ENV))
        lookup = _dotted_names(expression)
    return Compiled(template, native, constant, lookup)


def _dotted_names(expression: nodes.Node) -> tuple[str, ...] | None:
    """`event.a.b` -> ("event", "a", "b"); None for any other expression (filters, items, calls)."""
    names: list[str] = []
    while isinstance(expression, nodes.Getattr):
        names.append(expression.attr)
        expression = expression.node
    if not isinstance(expression, nodes.Name) or expression.ctx != "load":
        return None
    names.append(expression.name)
    return tuple(reversed(names))


# -- the sandbox ----------------------------------------------------------------------


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
