"""The catalog of processes: creating, updating and deactivating definitions (validated,
stored as a new version), the loaded runtimes of the active ones, and the index the engine
looks triggers up in (by type; MQTT triggers by topic, since a station may have thousands).

Owns definitions and the trigger index; must not start executions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from station.processes.definition import (
    PARALLEL_ACTION,
    ProcessDefinition,
    check_subprocess_graph,
    parallel_branches,
    parse_definition,
)
from station.processes.errors import DefinitionError, ProcessError
from station.processes.runtime import Binding, ProcessRuntime
from station.processes.triggers import MQTT
from station.store import Database
from station.store import processes as store

ALL_ACTIVE = 1_000_000  # loading at start takes every active process; a station has far fewer


class ProcessNotFound(ProcessError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no process {ref!r}")
        self.ref = ref


class ProcessInactive(ProcessError):
    def __init__(self, name: str) -> None:
        super().__init__(f"process {name!r} is deactivated")
        self.name = name


IndexListener = Callable[[dict[str, list[Binding]]], None]


class Catalog:
    def __init__(self, database: Database, index_changed: IndexListener) -> None:
        self._database = database
        self._index_changed = index_changed
        self.runtimes: dict[str, ProcessRuntime] = {}
        self._by_type: dict[str, list[Binding]] = {}
        self._mqtt_exact: dict[str, list[Binding]] = {}
        self._mqtt_wildcard: list[Binding] = []

    def load_active(self) -> None:
        rows, _ = store.list_processes(self._database, active_only=True, limit=ALL_ACTIVE)
        for row in rows:
            definition = ProcessDefinition.model_validate(row["definition"])
            self._install(row["id"], row["name"], row["version"], definition)
        self._reindex()

    # ---- definitions ------------------------------------------------------------------
    def create(self, raw: Any, created_by: str | None, template_id: str | None = None) -> dict[str, Any]:
        definition = self._validate(raw)
        try:
            row = store.insert_process(self._database, definition.model_dump(mode="json"), flatten(definition),
                                       created_by, template_id)
        except sqlite3.IntegrityError:
            raise DefinitionError("name", f"a process named {definition.name!r} exists") from None
        self._install(row["id"], row["name"], row["version"], definition)
        self._reindex()
        return row

    def update(self, ref: str, raw: Any) -> dict[str, Any]:
        current = self.get(ref)
        definition = self._validate(raw)
        try:
            row = store.update_process(self._database, current["id"], definition.model_dump(mode="json"),
                                       flatten(definition))
        except sqlite3.IntegrityError:
            raise DefinitionError("name", f"a process named {definition.name!r} exists") from None
        self._install(row["id"], row["name"], row["version"], definition)
        self._reindex()
        return row

    def deactivate(self, ref: str) -> dict[str, Any]:
        current = self.get(ref)
        store.set_active(self._database, current["id"], False)
        self.runtimes.pop(current["id"], None)
        self._reindex()
        return self.get(current["id"])

    def get(self, ref: str) -> dict[str, Any]:
        row = store.get_process(self._database, ref)
        if row is None:
            raise ProcessNotFound(ref)
        return row

    def _validate(self, raw: Any) -> ProcessDefinition:
        definition = parse_definition(raw)
        check_subprocess_graph(definition, self._definition_named)
        return definition

    def _definition_named(self, name: str) -> ProcessDefinition | None:
        row = store.get_process(self._database, name)
        return None if row is None else ProcessDefinition.model_validate(row["definition"])

    # ---- runtimes and the trigger index -----------------------------------------------
    def bindings_for(self, trigger_type: str, event: Any) -> list[Binding]:
        if trigger_type == MQTT:  # thousands of topic triggers: look the topic up, do not scan
            return [*self._mqtt_exact.get(getattr(event, "topic", ""), ()), *self._mqtt_wildcard]
        return self._by_type.get(trigger_type, [])


    def _install(self, process_id: str, name: str, version: int, definition: ProcessDefinition) -> None:
        previous = self.runtimes.get(process_id)
        runtime = ProcessRuntime.load(process_id, name, version, definition)
        if previous is not None:  # runs in progress keep counting against the limits
            runtime.active, runtime.queue = previous.active, previous.queue
            runtime.recent_starts = previous.recent_starts
        self.runtimes[process_id] = runtime

    def _reindex(self) -> None:
        index: dict[str, list[Binding]] = {}
        for runtime in self.runtimes.values():
            for binding in runtime.bindings:
                index.setdefault(binding.spec.type, []).append(binding)
        for bindings in index.values():
            bindings.sort(key=lambda binding: -binding.spec.priority)
        self._by_type = index
        self._mqtt_exact, self._mqtt_wildcard = {}, []
        for binding in index.get(MQTT, []):
            topic = binding.spec.config["topic"]
            if "+" in topic or "#" in topic:
                self._mqtt_wildcard.append(binding)
            else:
                self._mqtt_exact.setdefault(topic, []).append(binding)
        self._index_changed(index)


def flatten(definition: ProcessDefinition) -> list[dict[str, Any]]:
    """Every action with its path ('2', '3.b0.1' inside parallel groups), for the actions table."""
    flat: list[dict[str, Any]] = []

    def walk(actions: list[Any], prefix: str) -> None:
        for index, action in enumerate(actions):
            path = f"{prefix}{index}"
            flat.append({"path": path, **action.model_dump(mode="json")})
            if action.type == PARALLEL_ACTION:
                for branch_index, branch in enumerate(parallel_branches(action)):
                    walk(branch, f"{path}.b{branch_index}.")

    walk(definition.actions, "")
    return flat
