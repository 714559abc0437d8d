"""Every API endpoint and dependency is a coroutine function: FastAPI runs a plain `def` in a
worker thread, where it would use the station's SQLite connection off the event loop's thread
(and the thread pool it starts costs an idle station ~7 MB)."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from station.api.routes import alerts, apps, boards, groups, health, mesh, processes, tokens, zones

ROUTERS = [module.router for module in (alerts, apps, boards, groups, health, mesh, processes, tokens, zones)]


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call] if dependant.call is not None else []
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


def _is_async(call: Any) -> bool:
    """A coroutine function, or an object whose __call__ is one (fastapi.security's HTTPBearer)."""
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def test_no_endpoint_or_dependency_runs_in_a_worker_thread() -> None:
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 50
    blocking = sorted({f"{route.path}: {getattr(call, '__qualname__', call)}"
                       for route in routes for call in _calls(route.dependant)
                       if not _is_async(call)})
    assert blocking == []
