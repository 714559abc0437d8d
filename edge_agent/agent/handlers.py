"""Named handlers for the "run" command, and their registry.

A profile's [handlers] table maps a name the station may run to "module:function"
(`echo = "edge_agent.agent.handlers:echo"`); only the names a profile lists can run.
A handler takes the command's `args` map and returns a CBOR-encodable value (or an
awaitable of one). Owns the registry and the built-ins; it never touches the link.
"""

import time

from edge_agent.agent import _port

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

MAX_STALL_MS = 600_000  # "stall" refuses longer blocks: ten minutes is past any watchdog limit


class HandlerError(Exception):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"handler {name}: {reason}")
        self.name = name
        self.reason = reason


def echo(args: dict[str, Any]) -> Any:
    """Returns its arguments: the station's end-to-end check of the command path."""
    return args


def mem(args: dict[str, Any]) -> Any:
    """Collects garbage and reports the free heap."""
    import gc

    gc.collect()
    return {"free_mem": _port.free_mem()}


def stall(args: dict[str, Any]) -> Any:
    """Blocks the whole event loop for `ms` milliseconds, as a runaway handler would:
    how the software watchdog is exercised on a simulated board."""
    ms = args.get("ms", 1000)
    if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_STALL_MS:
        raise HandlerError("stall", f"ms must be an integer from 0 to {MAX_STALL_MS}")
    started = _port.ticks_ms()
    while _port.ticks_diff(_port.ticks_ms(), started) < ms:
        time.sleep(0.01)  # blocking on purpose: the loop must not run
    return {"stalled_ms": ms}


def resolve(name: str, target: str) -> Callable[[dict[str, Any]], Any]:
    """Import "module.path:function" (lazily: a board pays only for what its profile runs)."""
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise HandlerError(name, f"{target!r} is not module:function")
    try:
        module = __import__(module_name, None, None, [function_name])
    except ImportError:
        raise HandlerError(name, f"cannot import {module_name}") from None
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        raise HandlerError(name, f"{module_name} has no function {function_name}")
    handler: Callable[[dict[str, Any]], Any] = function
    return handler


def registry(table: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The profile's [handlers] table resolved to functions."""
    handlers = {}
    for name, target in table.items():
        if not isinstance(target, str):
            raise HandlerError(name, "must be a \"module:function\" string")
        handlers[name] = resolve(name, target)
    return handlers
