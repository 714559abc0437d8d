"""Flow actions: delay (durable: a resumed delay waits only what is left) and call_process
(a sub-process, optionally waited for)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.processes.actions import ActionContext, action

MAX_DELAY_S = 7 * 86400.0  # a week; longer waits belong to a time_schedule trigger


class Delay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=MAX_DELAY_S)


@action("delay", Delay, runs_for=lambda config: config.seconds)
async def delay(config: Delay, context: ActionContext) -> dict[str, Any]:
    started = _step_started_at(context) or time.time()
    remaining = started + config.seconds - time.time()
    if remaining > 0:
        await asyncio.sleep(remaining)
    return {"waited_s": config.seconds}


def _step_started_at(context: ActionContext) -> float | None:
    """When this step first started, from the journal (so a restart does not restart the wait)."""
    row = context.engine.database.connection.execute(
        "SELECT started_at FROM process_execution_steps WHERE execution_id = ? AND action_path = ?",
        (context.run.id, context.path),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


class CallProcess(BaseModel):
    model_config = ConfigDict(extra="forbid")
    process: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    wait: bool = True


@action("call_process", CallProcess)
async def call_process(config: CallProcess, context: ActionContext) -> dict[str, Any]:
    return await context.engine.call(context.run, context.path, config.process, config.input, config.wait)


class Log(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=2000)
    level: Literal["info", "warning", "error"] = "info"


@action("log", Log)
async def log(config: Log, context: ActionContext) -> dict[str, Any]:
    """Write a line to the execution's log (the trace); the cheapest durable step there is."""
    context.engine.log(context.run, config.level, config.message, {"step": context.path})
    return {"logged": config.message}
