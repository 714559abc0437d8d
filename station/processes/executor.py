"""Running an execution's actions, step by step, durably.

A step's start (with the rendered config) goes to the journal as the step begins and commits with
the next batch, at the latest with the step's result; the result is committed before the next step
begins. A resumed execution skips every step that finished and runs again the one that had not
(its side effects carry an idempotency key, so a send is not repeated): whether that step's start
row reached the disk before the crash changes its trace, not what runs. So a step does not wait for
a commit before it starts, only before the next one does.

Owns step semantics (conditions, templates, timeouts, retries, parallel groups); must not
decide which executions run (the engine does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from station.processes.actions import ACTION_TYPES, ActionContext, ActionFailed
from station.processes.conditions import evaluate
from station.processes.definition import PARALLEL_ACTION, ActionSpec, parallel_branches
from station.processes.errors import TemplateError
from station.processes.run import CHAIN_DEPTH, ExecutionRun
from station.processes.templating import render
from station.store import processes as store

if TYPE_CHECKING:
    from station.processes.engine import ProcessEngine

logger = logging.getLogger(__name__)

FINAL_STEP = ("completed", "failed", "skipped")
RESULT_LIMIT_CHARS = 16_384  # a step result kept in the journal and the context; more is cut


class StepFailed(Exception):
    """A step failed and its action does not continue on error: the execution fails."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"step {path}: {message}")
        self.path, self.message = path, message


class Executor:
    def __init__(self, engine: ProcessEngine) -> None:
        self._engine = engine

    async def run(self, run: ExecutionRun) -> tuple[str, str | None]:
        """Run (or resume) to the end; returns the final status and error."""
        CHAIN_DEPTH.set(run.depth)
        try:
            await self._sequence(run, run.definition.actions, "")
        except StepFailed as exc:
            return "failed", str(exc)
        return "completed", None

    async def _sequence(self, run: ExecutionRun, actions: list[ActionSpec], prefix: str) -> None:
        for index, spec in enumerate(actions):
            await self._step(run, spec, f"{prefix}{index}")

    async def _step(self, run: ExecutionRun, spec: ActionSpec, path: str) -> None:
        done = run.steps.get(path)
        if done is not None and done["status"] in FINAL_STEP:
            self._remember(run, spec, done["status"], done.get("result"))  # resumed: keep, do not redo
            if done["status"] == "failed" and not spec.continue_on_error:
                raise StepFailed(path, done.get("error_message") or "failed")
            return
        engine = self._engine
        if spec.conditions is not None:
            verdict = evaluate(spec.conditions, run.context(), engine.now())
            if not verdict.passed:
                await self._finish(run, spec, path, "skipped", {"reason": "conditions not met"}, None, 0.0, 0)
                engine.log(
                    run,
                    "info",
                    "step skipped: conditions not met",
                    {"step": path, "conditions": verdict.trace},
                )
                return
        if spec.type == PARALLEL_ACTION:
            await self._parallel(run, spec, path)
            return
        try:
            rendered = render(spec.config, run.context())
        except TemplateError as exc:
            await self._fail(run, spec, path, f"template: {exc}", None, 0.0, 0)
            return
        engine.journal.write_soon(store.step_started_sql(run.id, path, spec.type, rendered, time.time()))
        await self._attempts(run, spec, path, rendered)

    async def _attempts(self, run: ExecutionRun, spec: ActionSpec, path: str, rendered: Any) -> None:
        action = ACTION_TYPES[spec.type]
        started = time.monotonic()
        error, result = "", None
        for attempt in range(spec.retry_count + 1):
            if attempt:
                await asyncio.sleep(spec.retry_backoff_s * 2 ** (attempt - 1))
            timeout = spec.timeout_seconds
            try:
                parsed = action.parse(rendered)
                timeout = action.timeout_s(parsed, spec.timeout_seconds)
                async with asyncio.timeout(timeout):
                    result = await action.handler(parsed, ActionContext(self._engine, run, path, timeout))
            except ActionFailed as exc:
                error, result = exc.message, exc.result
            except TimeoutError:
                error = f"timed out after {timeout:g} s"
            except Exception as exc:  # an action's bug must not stop the engine
                logger.exception("action crashed", extra={"action": spec.type, "execution": run.id})
                error = f"{type(exc).__name__}: {exc}"
            else:
                elapsed = (time.monotonic() - started) * 1000
                await self._finish(run, spec, path, "completed", result, None, elapsed, attempt)
                return
            self._engine.log(run, "warning", f"attempt {attempt + 1} failed: {error}", {"step": path})
        elapsed = (time.monotonic() - started) * 1000
        await self._fail(run, spec, path, error, result, elapsed, spec.retry_count)

    async def _parallel(self, run: ExecutionRun, spec: ActionSpec, path: str) -> None:
        self._engine.journal.write_soon(store.step_started_sql(run.id, path, spec.type, None, time.time()))
        started = time.monotonic()
        branches = parallel_branches(spec)
        outcomes = await asyncio.gather(
            *(self._sequence(run, branch, f"{path}.b{index}.") for index, branch in enumerate(branches)),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for failure in failures:
            if not isinstance(failure, StepFailed):
                raise failure
        elapsed = (time.monotonic() - started) * 1000
        if failures:
            await self._fail(run, spec, path, "; ".join(str(f) for f in failures), None, elapsed, 0)
            return
        await self._finish(run, spec, path, "completed", {"branches": len(branches)}, None, elapsed, 0)

    async def _fail(
        self,
        run: ExecutionRun,
        spec: ActionSpec,
        path: str,
        error: str,
        result: Any,
        elapsed: float,
        retries: int,
    ) -> None:
        await self._finish(run, spec, path, "failed", result, error, elapsed, retries)
        if not spec.continue_on_error:
            raise StepFailed(path, error)
        self._engine.log(run, "warning", "step failed, continuing (continue_on_error)", {"step": path})

    async def _finish(
        self,
        run: ExecutionRun,
        spec: ActionSpec,
        path: str,
        status: str,
        result: Any,
        error: str | None,
        elapsed: float,
        retries: int,
    ) -> None:
        result = _bounded(result)
        await self._engine.journal.write(
            store.step_finished_sql(
                run.id, path, spec.type, status, result, error, time.time(), elapsed, retries
            )
        )
        run.steps[path] = {"status": status, "result": result, "error_message": error}
        if status == "completed":
            run.steps_completed += 1
        self._remember(run, spec, status, result)

    @staticmethod
    def _remember(run: ExecutionRun, spec: ActionSpec, status: str, result: Any) -> None:
        if spec.id is not None:
            run.outputs[spec.id] = {"status": status, "result": result}


def _bounded(result: Any) -> Any:
    text = repr(result)
    if len(text) <= RESULT_LIMIT_CHARS:
        return result
    return {"truncated": True, "preview": text[:RESULT_LIMIT_CHARS]}
