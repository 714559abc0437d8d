"""Modules the meshtastic package imports at its own import time but the station never calls:
`requests` (meshtastic.util's firmware-version check) and `tabulate` (printing node tables).
Together with what they pull in (urllib3, charset_normalizer, idna, certifi, http.cookiejar) they
cost an idle station about 5 MB of its memory budget.

`defer()` puts a stand-in into sys.modules before meshtastic is imported; the first time anything
uses an attribute of the stand-in (or calls one of the functions named for it), the real module
is imported and serves from then on. Nothing breaks if some code does use them: it only pays the
import at that moment. Must run before the first `import meshtastic` (station/mesh/__init__.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

# module -> functions that importers take with `from module import name` at their import time
DEFERRED: dict[str, tuple[str, ...]] = {"requests": (), "tabulate": ("tabulate",)}


class DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is used."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # the import system probing (__path__, __file__): not a use
            raise AttributeError(attribute)
        return getattr(self.load(), attribute)

    def load(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)


def _forwarder(module: DeferredModule, name: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(module.load(), name)(*args, **kwargs)

    forward.__name__ = name
    return forward


def defer(name: str, functions: tuple[str, ...] = ()) -> None:
    """Stand in for `name` unless it is already imported or not installed."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    module = DeferredModule(name)
    for function in functions:
        setattr(module, function, _forwarder(module, function))
    sys.modules[name] = module


def defer_unused_imports() -> None:
    for name, functions in DEFERRED.items():
        defer(name, functions)
