"""Process action types: each has a config model (checked when a process is created, and
again on the rendered config when the step runs) and a coroutine that performs it.

Handlers raise ActionFailed with a message; anything else they raise is a bug in them and is
recorded as a failed step too, never allowed to stop the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from station.processes.definition import ACTION_VALIDATORS
from station.processes.errors import DefinitionError, ProcessError

if TYPE_CHECKING:
    from station.processes.engine import ProcessEngine
    from station.processes.run import ExecutionRun


class ActionFailed(ProcessError):
    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.message, self.result = message, result


@dataclass
class ActionContext:
    engine: ProcessEngine
    run: ExecutionRun
    path: str
    timeout_s: float

    @property
    def idempotency_key(self) -> str:
        return self.run.idempotency_key(self.path)

    def log(self, message: str, data: Any = None) -> None:
        self.engine.log(self.run, "info", message, {"step": self.path, **({"data": data} if data else {})})

    def service(self, name: str) -> Any:
        found = getattr(self.engine.station, name, None)
        if found is None:
            raise ActionFailed(f"the {name} service is not running on this station")
        return found


Handler = Callable[[Any, ActionContext], Awaitable[Any]]


@dataclass(frozen=True)
class ActionType:
    name: str
    config: type[BaseModel]
    handler: Handler
    runs_for: Callable[[Any], float] | None = None  # a wait the step's timeout comes on top of

    def timeout_s(self, parsed: Any, timeout_seconds: float) -> float:
        return timeout_seconds + (self.runs_for(parsed) if self.runs_for else 0.0)

    def parse(self, rendered: dict[str, Any]) -> Any:
        try:
            return self.config.model_validate(rendered)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "config"
            raise ActionFailed(f"config.{where}: {first['msg']} (after templates were filled in)") from None


ACTION_TYPES: dict[str, ActionType] = {}


def action(
    name: str, config: type[BaseModel], runs_for: Callable[[Any], float] | None = None
) -> Callable[[Handler], Handler]:
    """Register an action type; its config model validates definitions at creation."""

    def register(handler: Handler) -> Handler:
        ACTION_TYPES[name] = ActionType(name, config, handler, runs_for)
        ACTION_VALIDATORS[name] = _validator(config)
        return handler

    return register


def _validator(config: type[BaseModel]) -> Callable[[dict[str, Any], str], None]:
    def validate(raw: dict[str, Any], path: str) -> None:
        # A templated option is only known at run time: its type is checked then.
        templated = {key for key, value in raw.items() if isinstance(value, str) and "{{" in value}
        try:
            config.model_validate(raw)
        except ValidationError as exc:
            errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] in templated)]
            if errors:
                first = errors[0]
                where = ".".join(str(part) for part in first["loc"])
                message = first["msg"] if first["type"] != "extra_forbidden" else "unknown option"
                raise DefinitionError(f"{path}.{where}" if where else path, message) from None

    return validate


def load_builtin_actions() -> None:
    """Import the modules whose decorators register the built-in action types."""
    from station.processes.actions import alerts, boards, flow, mesh, network, nodes, wasm  # noqa: F401
