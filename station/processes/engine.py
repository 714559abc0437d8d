"""The process engine: indexes the triggers of active processes, turns bus events, schedules
and manual requests into executions under each process's limits, drives them with the
executor, and resumes interrupted executions at start.

Owns which executions exist and when they run; must not know how a step works.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from station.bus import Event, Unsubscribe
from station.config import ProcessesConfig
from station.processes import templates
from station.processes.actions import load_builtin_actions
from station.processes.bots import Bots
from station.processes.catalog import Catalog, ProcessInactive
from station.processes.definition import (
    ProcessDefinition,
    count_steps,
)
from station.processes.events import ExecutionFinished
from station.processes.executor import Executor
from station.processes.journal import Journal
from station.processes.run import CHAIN_DEPTH, ExecutionRun
from station.processes.runtime import Binding, Pending, ProcessRuntime
from station.processes.scheduler import Scheduler
from station.processes.triggers import EVENT_TRIGGERS, MANUAL, MQTT, SCHEDULE, matches
from station.services import Service, ServiceState
from station.store import processes as store
from station.store.database import new_id, to_json

if TYPE_CHECKING:
    from station.daemon import Station

logger = logging.getLogger(__name__)

EVENT_PREVIEW_CHARS = 200  # a trigger event's strings are kept in executions up to this length
PRUNE_INTERVAL_S = 3600.0  # finished executions past their retention go once an hour


class ProcessEngine(Service):
    name = "processes"
    stop_timeout_s = 10.0

    def __init__(self, station: Station, settings: ProcessesConfig) -> None:
        super().__init__()
        self.station = station
        self.settings = settings
        self.database = station.database
        self.journal = Journal(station.database)
        self.executor = Executor(self)
        self.scheduler = Scheduler(self)
        self.catalog = Catalog(station.database, self._index_changed)
        self._runs: dict[str, ExecutionRun] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Unsubscribe | None = None
        self._unsubscribe_bots: Unsubscribe = lambda: None
        self._journal_task: asyncio.Task[None] | None = None

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        load_builtin_actions()
        templates.seed_builtin(self.database)
        self.catalog.load_active()
        self._journal_task = asyncio.create_task(self.journal.run(), name="process-journal")
        self._unsubscribe = self.station.bus.subscribe(Event, self._on_event)
        self._unsubscribe_bots = Bots(self.settings.bots, self.station.bus, self.station.mesh).attach()
        resumed = self._resume_open()
        await self.scheduler.start()
        self._keep(asyncio.create_task(self._prune_forever(), name="process-prune"))
        self.health.state = ServiceState.RUNNING
        self._refresh_health()
        logger.info("process engine started", extra={"processes": len(self.catalog.runtimes), "resumed": resumed})

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe_bots()
        await self.scheduler.stop()
        # Executions stop where they are and resume at the next start, as after a power cut.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._journal_task is not None:
            self._journal_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._journal_task

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _index_changed(self, index: dict[str, list[Binding]]) -> None:
        """The set of active triggers changed: follow with MQTT subscriptions and schedules."""
        mqtt = self.station.mqtt
        if mqtt is not None:
            mqtt.subscribe({binding.spec.config["topic"] for binding in index.get(MQTT, [])})
        self.scheduler.reload(index.get(SCHEDULE, []))
        self._refresh_health()

    # ---- starting executions ------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        trigger_type = EVENT_TRIGGERS.get(type(event).__name__)
        if trigger_type is None:
            return
        bindings = self.catalog.bindings_for(trigger_type, event)
        if not bindings:
            return
        payload = event_payload(event)
        depth = CHAIN_DEPTH.get() + 1
        for binding in bindings:
            self.consider(binding, trigger_type, payload, depth, "event")

    def consider(
        self, binding: Binding, trigger_type: str, payload: dict[str, Any], depth: int, triggered_by: str
    ) -> str | None:
        """Start a run if the trigger's filter and conditions pass; returns its id (or None)."""
        if not matches(trigger_type, binding.spec.config, payload):
            return None
        runtime = binding.runtime
        context = {"event": payload, "vars": runtime.definition.variables}
        now = self.now()
        for compiled in (binding.conditions, runtime.conditions):
            if compiled is not None and not compiled.evaluate(context, now, trace=False).passed:
                return None
        trace = {
            "trigger": {"index": binding.index, "type": trigger_type, "config": binding.spec.config},
            "conditions": {
                "trigger": _trace_of(binding.conditions, context, now),
                "process": _trace_of(runtime.conditions, context, now),
            },
        }
        execution_id, _outcome = self._admit(
            runtime, Pending(trigger_type, payload, depth, triggered_by, trace)
        )
        return execution_id

    async def execute(self, ref: str, trigger_data: dict[str, Any], triggered_by: str) -> dict[str, Any]:
        """A manual run; limits apply (a blocked run is recorded as skipped)."""
        row = self.catalog.get(ref)
        runtime = self.catalog.runtimes.get(row["id"])
        if runtime is None:
            raise ProcessInactive(row["name"])
        pending = Pending(
            MANUAL,
            {"type": "manual", "data": trigger_data, "by": triggered_by},
            CHAIN_DEPTH.get() + 1,
            triggered_by,
            {"trigger": {"type": MANUAL}},
        )
        execution_id, outcome = self._admit(runtime, pending)
        await self.journal.write()  # the execution's first row is durable before we answer
        return {"execution_id": execution_id, "status": outcome}

    def _admit(self, runtime: ProcessRuntime, pending: Pending) -> tuple[str, str]:
        """Start, queue or skip (recorded with the reason); returns the execution id and which."""
        reason = runtime.blocked_by(self.settings.max_chain_depth, pending.depth)
        execution_id = pending.execution_id or new_id()
        if reason == "queue":
            if pending.execution_id is None:
                self.journal.write_soon(self._execution_row(runtime, pending, execution_id, "pending"))
                pending.execution_id = execution_id
            runtime.queue.append(pending)
            return execution_id, "queued"
        if reason is not None:
            row = self._execution_row(runtime, pending, execution_id, "skipped", reason)
            self.journal.write_soon(row)
            logger.info("process run skipped", extra={"process_name": runtime.name, "reason": reason})
            return execution_id, "skipped"
        run = ExecutionRun(
            execution_id,
            runtime.process_id,
            runtime.name,
            runtime.version,
            runtime.definition,
            pending.trigger_type,
            pending.event,
            pending.depth,
        )
        runtime.started(execution_id)
        if pending.execution_id is None:
            self.journal.write_soon(self._execution_row(runtime, pending, execution_id, "running"))
        else:
            self.journal.write_soon(
                ("UPDATE process_executions SET status = 'running' WHERE id = ?", (execution_id,))
            )
        self._spawn(run)
        return execution_id, "running"

    def _execution_row(
        self,
        runtime: ProcessRuntime,
        pending: Pending,
        execution_id: str,
        status: str,
        reason: str | None = None,
        parent: tuple[str, str] | None = None,
    ) -> tuple[str, Any]:
        at = time.time()
        return store.insert_execution_sql(
            {
                "id": execution_id,
                "process_id": runtime.process_id,
                "process_version": runtime.version,
                "triggered_by": pending.triggered_by,
                "trigger_type": pending.trigger_type,
                "trigger_event": _json_event(pending.event),
                "chain_depth": pending.depth,
                "parent_execution_id": parent[0] if parent else None,
                "parent_step_path": parent[1] if parent else None,
                "status": status,
                "error_message": reason,
                "started_at": at,
                "completed_at": at if status == "skipped" else None,
                "total_steps": count_steps(runtime.definition.actions),
                "trace": _json_event(pending.trace),
            }
        )

    def _spawn(self, run: ExecutionRun) -> None:
        run.done = asyncio.get_running_loop().create_future()
        self._runs[run.id] = run
        self._keep(asyncio.create_task(self._drive(run), name=f"execution-{run.id}"))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prune_forever(self) -> None:
        while True:
            cutoff = time.time() - self.settings.keep_executions_days * 86400
            pruned = store.prune_executions(self.database, cutoff)
            if pruned:
                logger.info("old executions pruned", extra={"executions": pruned})
            await asyncio.sleep(PRUNE_INTERVAL_S)

    async def _drive(self, run: ExecutionRun) -> None:
        started = time.monotonic()
        try:
            status, error = await self.executor.run(run)
        except asyncio.CancelledError:
            raise  # shutdown: the run stays open in the journal and resumes at the next start
        except Exception as exc:  # the engine's own bug: fail this run, keep the engine
            logger.exception("execution crashed", extra={"execution": run.id})
            status, error = "failed", f"engine error: {type(exc).__name__}: {exc}"
        elapsed_ms = (time.monotonic() - started) * 1000
        await self.journal.write(
            *store.finish_execution_sql(run.id, run.process_id, status, error, time.time(), elapsed_ms,
                                       run.steps_completed)
        )
        self._runs.pop(run.id, None)
        if run.done is not None and not run.done.done():
            run.done.set_result(status)
        runtime = self.catalog.runtimes.get(run.process_id)
        if runtime is not None:
            runtime.active.discard(run.id)
            if runtime.queue:
                self._admit(runtime, runtime.queue.popleft())
        self.station.bus.publish(
            ExecutionFinished(
                execution_id=run.id,
                process_id=run.process_id,
                process=run.process_name,
                status=status,
                error=error,
            )
        )
        if status == "failed" and self.settings.alert_on_failure:
            self._alert_failure(run, error)

    def _alert_failure(self, run: ExecutionRun, error: str | None) -> None:
        alerts = getattr(self.station, "alerts", None)
        if alerts is None or run.depth > 0:
            return  # a failing chain alerts once, at its root
        with contextlib.suppress(Exception):
            alerts.create(
                "warning",
                f"process {run.process_name} failed",
                message=(error or "")[:2000],
                source=f"process:{run.process_id}",
                dedup_key=f"process-failed:{run.process_id}",
            )

    # ---- sub-processes -----------------------------------------------------------------
    async def call(
        self, parent: ExecutionRun, path: str, name: str, data: dict[str, Any], wait: bool
    ) -> dict[str, Any]:
        from station.processes.actions import ActionFailed

        existing = store.child_execution(self.database, parent.id, path)
        if existing is None:
            row = store.get_process(self.database, name)
            runtime = self.catalog.runtimes.get(row["id"]) if row else None
            if runtime is None:
                raise ActionFailed(f"process {name!r} does not exist or is deactivated")
            depth = parent.depth + 1
            if depth > self.settings.max_subprocess_depth:
                raise ActionFailed(f"sub-process depth {depth} exceeds processes.max_subprocess_depth")
            event = {
                "type": "process",
                "input": data,
                "parent": {"execution": parent.id, "process": parent.process_name},
            }
            pending = Pending("process", event, depth, f"process:{parent.process_id}", {})
            execution_id = new_id()
            await self.journal.write(
                self._execution_row(runtime, pending, execution_id, "running", parent=(parent.id, path))
            )
            run = ExecutionRun(
                execution_id,
                runtime.process_id,
                runtime.name,
                runtime.version,
                runtime.definition,
                "process",
                event,
                depth,
                parent.id,
                path,
            )
            runtime.active.add(execution_id)
            self._spawn(run)
        else:
            execution_id = existing["id"]
        if not wait:
            return {"execution_id": execution_id, "status": "started"}
        status = await self.wait_for(execution_id)
        finished = store.get_execution(self.database, execution_id) or {}
        if status != "completed":
            raise ActionFailed(
                f"sub-process {name} {status}: {finished.get('error_message')}",
                {"execution_id": execution_id, "status": status},
            )
        outputs = {step["action_path"]: step["result"] for step in finished.get("steps", [])}
        return {"execution_id": execution_id, "status": status, "steps": outputs}

    async def wait_for(self, execution_id: str) -> str:
        run = self._runs.get(execution_id)
        if run is not None and run.done is not None:
            return await asyncio.shield(run.done)
        row = store.get_execution(self.database, execution_id)
        return str(row["status"]) if row else "failed"

    # ---- resume -------------------------------------------------------------------------
    def _resume_open(self) -> int:
        count = 0
        for row in store.open_executions(self.database):
            runtime = self.catalog.runtimes.get(row["process_id"]) or self._transient(row)
            definition = runtime.definition
            if row["process_version"] != runtime.version:
                definition = ProcessDefinition.model_validate(
                    store.definition_at(self.database, row["process_id"], row["process_version"])
                )
            if row["status"] == "pending":
                runtime.queue.append(
                    Pending(
                        row["trigger_type"],
                        row["trigger_event"],
                        row["chain_depth"],
                        row["triggered_by"],
                        row.get("trace") or {},
                        row["id"],
                    )
                )
                continue
            run = ExecutionRun(
                row["id"],
                row["process_id"],
                runtime.name,
                row["process_version"],
                definition,
                row["trigger_type"],
                row["trigger_event"],
                row["chain_depth"],
                row["parent_execution_id"],
                row["parent_step_path"],
                row["started_at"],
            )
            for step in store.step_rows(self.database, row["id"]):
                run.steps[step["action_path"]] = step
            run.log_seq = len(store.execution_logs(self.database, row["id"]))
            runtime.active.add(run.id)
            self.log(run, "info", "resumed after restart", {"steps_done": len(run.steps)})
            self._spawn(run)
            count += 1
        for runtime in self.catalog.runtimes.values():  # queued runs of idle processes can go now
            if runtime.queue and not runtime.active:
                self._admit(runtime, runtime.queue.popleft())
        return count

    def _transient(self, row: dict[str, Any]) -> ProcessRuntime:
        """An interrupted run of a process deactivated since: it still finishes."""
        process = self.catalog.get(row["process_id"])
        definition = ProcessDefinition.model_validate(
            store.definition_at(self.database, row["process_id"], row["process_version"])
        )
        return ProcessRuntime.load(process["id"], process["name"], row["process_version"], definition)

    # ---- helpers ------------------------------------------------------------------------
    def log(self, run: ExecutionRun, level: str, message: str, data: Any = None) -> None:
        run.log_seq += 1
        self.journal.write_soon(store.log_sql(run.id, run.log_seq, level, message, data))


    def _refresh_health(self) -> None:
        self.health.detail = {
            "active_processes": len(self.catalog.runtimes),
            "running": len(self._runs),
            "queued": sum(len(r.queue) for r in self.catalog.runtimes.values()),
        }


def event_payload(event: Event) -> dict[str, Any]:
    """The event as a dict (a copy: a run cannot change what other listeners see). A flat event, the
    common case, is read field by field; dataclasses.asdict copies nested values (and costs ~4x)."""
    payload = {name: getattr(event, name) for name in _field_names(type(event))}
    if not all(type(value) in _IMMUTABLE_SCALARS for value in payload.values()):
        payload = dataclasses.asdict(event)
    payload["type"] = type(event).__name__
    return payload


_IMMUTABLE_SCALARS = frozenset({str, int, float, bool, type(None)})


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(event_type: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(event_type)
    if names is None:
        names = _FIELD_NAMES[event_type] = tuple(field.name for field in dataclasses.fields(event_type))
    return names


def _trace_of(compiled: Any, context: dict[str, Any], now: datetime) -> Any:
    return None if compiled is None else compiled.evaluate(context, now, trace=True).trace


def _json_event(value: Any) -> str:
    """JSON of a trigger event or trace, its strings cut to a preview (only when there is a long one)."""
    limit = EVENT_PREVIEW_CHARS * 20
    text = to_json(value)
    if len(text) <= limit:  # no string in it can be longer than the whole
        return text

    def shorten(item: Any) -> Any:
        if isinstance(item, str) and len(item) > limit:
            return item[:limit] + "..."
        if isinstance(item, dict):
            return {key: shorten(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [shorten(inner) for inner in item]
        return item

    return to_json(shorten(value))
