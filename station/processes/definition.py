"""Process definitions: the typed model of a process (triggers, conditions, actions, limits)
and its validation, which names the JSON path of the first bad field.

Owns what a valid definition is; must not store or run anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from station.processes.conditions import ConditionError, validate_condition
from station.processes.errors import DefinitionError
from station.processes.templating import validate_template
from station.processes.triggers import TRIGGER_TYPES, validate_trigger_config

MAX_TRIGGERS = 20  # a process with more triggers is several processes
MAX_ACTIONS = 100  # per list; a longer sequence belongs in sub-processes
MAX_NESTING = 4  # parallel groups inside parallel groups, deep enough for real flows
PROCESS_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$"
ACTION_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerSpec(_Model):
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    conditions: Any = None
    priority: int = Field(default=0, ge=-1000, le=1000)


class ActionSpec(_Model):
    id: str | None = None  # names the step's output: {{ steps.<id>.result }}
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    conditions: Any = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=86400)
    retry_count: int = Field(default=0, ge=0, le=10)
    retry_backoff_s: float = Field(default=1.0, ge=0, le=3600)
    continue_on_error: bool = False


class RateLimit(_Model):
    max_runs: int = Field(ge=1, le=100_000)
    per_seconds: float = Field(gt=0, le=86400)


class CatchUp(_Model):
    policy: Literal["skip", "once", "all"] = "once"
    max: int = Field(default=10, ge=1, le=1000)  # with 'all': at most this many missed runs


class ProcessDefinition(_Model):
    name: str = Field(pattern=PROCESS_NAME)
    description: str = Field(default="", max_length=2000)
    triggers: list[TriggerSpec] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    conditions: Any = None
    actions: list[ActionSpec] = Field(min_length=1, max_length=MAX_ACTIONS)
    mode: Literal["single", "queued", "parallel"] = "single"
    max_parallel: int = Field(default=10, ge=1, le=1000)
    max_queued: int = Field(default=100, ge=0, le=10_000)
    rate_limit: RateLimit | None = None
    catch_up: CatchUp = Field(default_factory=CatchUp)
    variables: dict[str, Any] = Field(default_factory=dict)


# Validators of each action type's config, registered by station.processes.actions.
ActionValidator = Callable[[dict[str, Any], str], None]
ACTION_VALIDATORS: dict[str, ActionValidator] = {}
# Sub-process references found in a definition: (path, process name).
SUBPROCESS_ACTION = "call_process"
PARALLEL_ACTION = "parallel"


def parse_definition(raw: Any) -> ProcessDefinition:
    """Validate a definition; DefinitionError names the path of the first bad field."""
    try:
        definition = ProcessDefinition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or "(definition)"
        message = first["msg"] if first["type"] != "extra_forbidden" else "unknown field"
        raise DefinitionError(path, message) from None
    for index, trigger in enumerate(definition.triggers):
        _check_trigger(trigger, f"triggers.{index}")
    _check_condition(definition.conditions, "conditions")
    validate_template(definition.variables, "variables")
    _check_actions(definition.actions, "actions", depth=0, seen_ids=set())
    return definition


def _check_trigger(trigger: TriggerSpec, path: str) -> None:
    if trigger.type not in TRIGGER_TYPES:
        raise DefinitionError(
            f"{path}.type",
            f"unknown trigger type {trigger.type!r}; known: {', '.join(sorted(TRIGGER_TYPES))}",
        )
    validate_trigger_config(trigger.type, trigger.config, f"{path}.config")
    _check_condition(trigger.conditions, f"{path}.conditions")


def _check_condition(tree: Any, path: str) -> None:
    if tree is None:
        return
    try:
        validate_condition(tree)
    except ConditionError as exc:
        raise DefinitionError(f"{path}.{exc.path}" if exc.path else path, exc.message) from None


def _check_actions(actions: list[ActionSpec], path: str, depth: int, seen_ids: set[str]) -> None:
    if depth > MAX_NESTING:
        raise DefinitionError(path, f"parallel groups nest deeper than {MAX_NESTING}")
    for index, action in enumerate(actions):
        where = f"{path}.{index}"
        if action.id is not None:
            if not ACTION_ID.match(action.id):
                raise DefinitionError(f"{where}.id", "must be a name like 'find_nodes'")
            if action.id in seen_ids:
                raise DefinitionError(f"{where}.id", f"{action.id!r} is used by another action")
            seen_ids.add(action.id)
        _check_condition(action.conditions, f"{where}.conditions")
        if action.type == PARALLEL_ACTION:
            for branch_index, branch in enumerate(parallel_branches(action, f"{where}.config")):
                _check_actions(branch, f"{where}.config.branches.{branch_index}", depth + 1, seen_ids)
            continue
        validator = ACTION_VALIDATORS.get(action.type)
        if validator is None:
            known = ", ".join(sorted([*ACTION_VALIDATORS, PARALLEL_ACTION]))
            raise DefinitionError(f"{where}.type", f"unknown action type {action.type!r}; known: {known}")
        validate_template(action.config, f"{where}.config")
        validator(action.config, f"{where}.config")


def parallel_branches(action: ActionSpec, path: str = "config") -> list[list[ActionSpec]]:
    branches = action.config.get("branches")
    if not isinstance(branches, list) or not branches or set(action.config) != {"branches"}:
        raise DefinitionError(path, "a parallel action needs only 'branches': a list of action lists")
    parsed = []
    for index, branch in enumerate(branches):
        if not isinstance(branch, list) or not branch:
            raise DefinitionError(f"{path}.branches.{index}", "must be a non-empty list of actions")
        try:
            parsed.append([ActionSpec.model_validate(item) for item in branch])
        except ValidationError as exc:
            first = exc.errors()[0]
            inner = ".".join(str(part) for part in first["loc"])
            raise DefinitionError(f"{path}.branches.{index}.{inner}", first["msg"]) from None
    return parsed


def subprocess_calls(actions: list[ActionSpec]) -> list[str]:
    """Names of the processes this action list calls, nested groups included."""
    called = []
    for action in actions:
        if action.type == SUBPROCESS_ACTION and isinstance(action.config.get("process"), str):
            called.append(action.config["process"])
        elif action.type == PARALLEL_ACTION:
            for branch in parallel_branches(action):
                called += subprocess_calls(branch)
    return called


def check_subprocess_graph(
    definition: ProcessDefinition, lookup: Callable[[str], ProcessDefinition | None]
) -> None:
    """Every called process exists and no chain of calls leads back to a process on it."""

    def visit(name: str, actions: list[ActionSpec], chain: list[str]) -> None:
        for called in subprocess_calls(actions):
            if called in chain or called == name:
                cycle = " -> ".join([*chain, name, called])
                raise DefinitionError("actions", f"sub-process cycle: {cycle}")
            target = definition if called == definition.name else lookup(called)
            if target is None:
                raise DefinitionError("actions", f"calls unknown process {called!r}")
            visit(called, target.actions, [*chain, name])

    visit(definition.name, definition.actions, [])


def count_steps(actions: list[ActionSpec]) -> int:
    total = 0
    for action in actions:
        total += 1
        if action.type == PARALLEL_ACTION:
            total += sum(count_steps(branch) for branch in parallel_branches(action))
    return total
