"""The run_wasm action: call an entry point of a running WebAssembly app through the apps service
(`station.apps`, absent when `[wasm] enabled = false`); the app's JSON output is the step's result.

Must not load wasmtime: station.wasm.errors is imported inside the handler, so a station whose
processes never call an app does not pay for the WebAssembly runtime. A resumed step calls the
app again (the host API has no idempotency key): an entry point a process calls should be safe
to repeat, as the example filters are.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from station.processes.actions import ActionContext, ActionFailed, action

# What each kind of failed call did, for the step's error message (keyed by the exception's class name so
# that this module need not import station.wasm at load).
_FAILURES = {
    "AppTrap": "trapped",
    "AppTimeout": "ran out of time",
    "AppMemoryExceeded": "went over its memory limit",
    "AppOutputInvalid": "returned output that is not JSON",
    "CapabilityDenied": "used a capability it was not granted",
    "AppBusy": "was not run: the station is busy with other app calls",
}


class RunWasm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    app: str = Field(min_length=1)
    function: str = Field(min_length=1)
    # None: the trigger event itself, the shape the app's telemetry pipeline passes ({board_id, values, at}).
    input: dict[str, Any] | None = None


@action("run_wasm", RunWasm)
async def run_wasm(config: RunWasm, context: ActionContext) -> Any:
    """The app's output (None when it returns nothing) is the step's result: `{{ steps.<id>.result }}`."""
    from station.wasm.errors import AppCallFailed, AppError, AppNotFound, AppStateError

    apps = context.service("apps")
    payload = context.run.event if config.input is None else config.input
    where = {"app": config.app, "function": config.function}
    try:
        output = await apps.call(config.app, config.function, payload)
    except AppNotFound as exc:
        raise ActionFailed(f"no app {config.app} on this station", {**where, "error": "AppNotFound"}) from exc
    except AppStateError as exc:
        raise ActionFailed(f"app {config.app}: {exc.reason}", {**where, "error": "AppStateError"}) from exc
    except AppCallFailed as exc:
        failure = _FAILURES.get(type(exc).__name__, "failed")
        message = f"app {config.app}: {config.function} {failure}: {exc.reason}"
        raise ActionFailed(message, {**where, "error": type(exc).__name__}) from exc
    except AppError as exc:
        raise ActionFailed(f"app {config.app}: {exc}", {**where, "error": type(exc).__name__}) from exc
    context.log("app called", where)
    return output
