"""Processes that call WebAssembly apps and react to what they publish: run_wasm's config checks,
its input and result, each call failure as a failed step (with retries), the wasm_event trigger's
filters, all run by a real engine against a scripted apps service; and the same against the real
apps service with the committed telemetry-filter example."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from station.alerts.service import AlertService
from station.boards import BoardTelemetry
from station.bus import EventBus
from station.processes.actions import load_builtin_actions
from station.processes.definition import parse_definition
from station.processes.errors import DefinitionError
from station.processes.templates import BUILTIN
from station.processes.triggers import matches
from station.store import Database
from station.store import processes as store
from station.wasm.errors import (
    AppBusy,
    AppMemoryExceeded,
    AppNotFound,
    AppOutputInvalid,
    AppStateError,
    AppTimeout,
    AppTrap,
    CapabilityDenied,
)
from station.wasm.events import AppEvent
from tests.processes.inloop import (
    POLL_S,
    WAIT_S,
    EngineStation,
    executions_of,
    finished,
    first_finished,
    run_by_hand,
    running_engine,
)

load_builtin_actions()
NOOP = [{"type": "log", "config": {"message": "x"}}]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APPS = REPO / "examples" / "apps"


class ScriptedApps:
    """AppService.call's contract, answering from a script: each call takes the next outcome (an
    output, or an exception to raise); the last one repeats."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, Any]] = []

    async def call(self, name: str, entry_point: str, payload: Any) -> Any:
        self.calls.append((name, entry_point, payload))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def wait_for_runs(engine: Any, name: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(await executions_of(engine, name)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs of {name} within {WAIT_S} s"
        await asyncio.sleep(POLL_S)


def wasm_step(**config: Any) -> dict[str, Any]:
    return {"type": "run_wasm", "config": {"app": "telemetry-filter", "function": "on_telemetry", **config}}


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"name": "p", "actions": [{"type": "run_wasm", "config": {"function": "on_telemetry"}}]},
         "actions.0.config.app"),
        ({"name": "p", "actions": [{"type": "run_wasm", "config": {"app": "telemetry-filter"}}]},
         "actions.0.config.function"),
        ({"name": "p", "actions": [wasm_step(app="")]}, "actions.0.config.app"),
        ({"name": "p", "actions": [wasm_step(input=["board"])]}, "actions.0.config.input"),
        ({"name": "p", "actions": [wasm_step(output="result")]}, "actions.0.config.output"),
        ({"name": "p", "triggers": [{"type": "wasm_event", "config": {"kinds": []}}], "actions": NOOP},
         "triggers.0.config.kinds"),
        ({"name": "p", "triggers": [{"type": "wasm_event", "config": {"apps": ["a", 3]}}], "actions": NOOP},
         "triggers.0.config.apps"),
        ({"name": "p", "triggers": [{"type": "wasm_event", "config": {"kind": "x"}}], "actions": NOOP},
         "triggers.0.config.kind"),
    ],
)
def test_bad_wasm_configs_name_the_path(definition: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    assert caught.value.path == path, caught.value


def test_good_wasm_configs_pass_with_templated_values() -> None:
    definition = parse_definition({
        "name": "p",
        "triggers": [{"type": "wasm_event", "config": {"apps": "telemetry-filter", "kinds": ["temperature_alert"]}}],
        "actions": [wasm_step(app="{{ vars.app }}", input={"board_id": "{{ event.payload.board_id }}", "n": 1}),
                    wasm_step(input="{{ event.payload }}")],
        "variables": {"app": "telemetry-filter"},
    })
    assert definition.actions[0].config["app"] == "{{ vars.app }}"


def test_wasm_event_filters() -> None:
    event = {"app": "telemetry-filter", "version": "1.0.0", "payload": {"kind": "temperature_alert", "t": 50}}
    assert matches("wasm_event", {}, event)
    assert matches("wasm_event", {"apps": "telemetry-filter", "kinds": "temperature_alert"}, event)
    assert matches("wasm_event", {"apps": ["other", "telemetry-filter"]}, event)
    assert not matches("wasm_event", {"apps": ["other"]}, event)
    assert not matches("wasm_event", {"kinds": ["battery_low"]}, event)
    assert not matches("wasm_event", {"kinds": ["temperature_alert"]}, {**event, "payload": {"t": 50}})


def test_the_action_module_does_not_load_wasmtime() -> None:
    probe = "import sys, station.processes.actions.wasm; print('wasmtime' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60,
                            check=True)
    assert loaded.stdout.strip() == "False"


async def test_the_output_is_the_step_result_later_steps_template_on(database: Database, bus: EventBus) -> None:
    apps = ScriptedApps({"alert": True, "temperature": 51.5})
    async with running_engine(EngineStation(database, bus, apps=apps)) as engine:
        engine.catalog.create({"name": "filter", "actions": [
            {"id": "check", **wasm_step(input={"board_id": "{{ event.data.board }}",
                                               "values": {"temperature": "{{ event.data.t }}"}})},
            {"type": "log", "config": {"message": "alert={{ steps.check.result.alert }}"
                                                  " at {{ steps.check.result.temperature }}"}},
        ]}, "test")
        execution = await run_by_hand(engine, "filter", {"board": "ws-7", "t": 51.5})
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] == {"alert": True, "temperature": 51.5}
    assert execution["steps"][1]["result"] == {"logged": "alert=True at 51.5"}
    assert apps.calls == [("telemetry-filter", "on_telemetry", {"board_id": "ws-7", "values": {"temperature": 51.5}})]


async def test_without_input_the_app_gets_the_trigger_event(database: Database, bus: EventBus) -> None:
    apps = ScriptedApps(None)  # an entry point that returns nothing
    async with running_engine(EngineStation(database, bus, apps=apps)) as engine:
        engine.catalog.create({"name": "pipe", "triggers": [{"type": "board_telemetry"}],
                               "actions": [{"id": "f", **wasm_step(app="{{ vars.app }}")}],
                               "variables": {"app": "telemetry-filter"}}, "test")
        bus.publish(BoardTelemetry(board_id="ws-1", values={"temperature": 50}, at=1700000000.0))
        execution = await first_finished(engine, "pipe")
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] is None
    assert apps.calls == [("telemetry-filter", "on_telemetry", {
        "board_id": "ws-1", "values": {"temperature": 50}, "at": 1700000000.0, "type": "BoardTelemetry"})]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (AppNotFound("telemetry-filter"), "no app telemetry-filter on this station"),
        (AppStateError("telemetry-filter", "not running"), "app telemetry-filter: not running"),
        (AppStateError("telemetry-filter", "no entry point 'on_x' (it has on_telemetry, health)"),
         "app telemetry-filter: no entry point 'on_x' (it has on_telemetry, health)"),
        (AppTrap("telemetry-filter", "on_telemetry", "wasm trap: unreachable"),
         "app telemetry-filter: on_telemetry trapped: wasm trap: unreachable"),
        (AppTimeout("telemetry-filter", "on_telemetry", "out of fuel (10000000 units)"),
         "app telemetry-filter: on_telemetry ran out of time: out of fuel (10000000 units)"),
        (AppMemoryExceeded("telemetry-filter", "on_telemetry", "memory above 1048576 bytes"),
         "app telemetry-filter: on_telemetry went over its memory limit: memory above 1048576 bytes"),
        (AppOutputInvalid("telemetry-filter", "on_telemetry", "output is not JSON"),
         "app telemetry-filter: on_telemetry returned output that is not JSON: output is not JSON"),
        (CapabilityDenied("telemetry-filter", "on_telemetry", "mesh_send needs 'mesh'"),
         "app telemetry-filter: on_telemetry used a capability it was not granted: mesh_send needs 'mesh'"),
        (AppBusy("telemetry-filter", "on_telemetry", "20 calls already running or waiting"),
         "app telemetry-filter: on_telemetry was not run: the station is busy with other app calls:"
         " 20 calls already running or waiting"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
async def test_each_call_failure_fails_the_step_with_its_reason(
        database: Database, bus: EventBus, error: Exception, message: str) -> None:
    apps = ScriptedApps(error)
    async with running_engine(EngineStation(database, bus, apps=apps)) as engine:
        engine.catalog.create({"name": "filter", "actions": [wasm_step(input={})]}, "test")
        execution = await run_by_hand(engine, "filter")
    assert execution["status"] == "failed"
    step = execution["steps"][0]
    assert step["status"] == "failed"
    assert step["error_message"] == message
    assert step["result"] == {"app": "telemetry-filter", "function": "on_telemetry", "error": type(error).__name__}
    assert len(apps.calls) == 1  # no retry_count: one attempt


async def test_a_failure_is_retried_and_a_retry_can_succeed(database: Database, bus: EventBus) -> None:
    apps = ScriptedApps(AppBusy("telemetry-filter", "on_telemetry", "busy"),
                        AppStateError("telemetry-filter", "not running"), {"alert": False})
    async with running_engine(EngineStation(database, bus, apps=apps)) as engine:
        engine.catalog.create({"name": "filter", "actions": [
            {**wasm_step(input={}), "retry_count": 2, "retry_backoff_s": 0}]}, "test")
        execution = await run_by_hand(engine, "filter")
        logs = [line["message"] for line in store.execution_logs(database, execution["id"])]
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] == {"alert": False}
    assert len(apps.calls) == 3
    assert "attempt 2 failed: app telemetry-filter: not running" in logs


async def test_retries_run_out(database: Database, bus: EventBus) -> None:
    apps = ScriptedApps(AppTrap("telemetry-filter", "on_telemetry", "unreachable"))
    async with running_engine(EngineStation(database, bus, apps=apps)) as engine:
        engine.catalog.create({"name": "filter", "actions": [
            {**wasm_step(input={}), "retry_count": 2, "retry_backoff_s": 0}]}, "test")
        execution = await run_by_hand(engine, "filter")
    assert execution["status"] == "failed"
    assert execution["steps"][0]["retry_count"] == 2
    assert execution["steps"][0]["error_message"] == "app telemetry-filter: on_telemetry trapped: unreachable"
    assert len(apps.calls) == 3


async def test_without_an_apps_service_the_step_fails_clearly(database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        engine.catalog.create({"name": "filter", "actions": [wasm_step()]}, "test")
        execution = await run_by_hand(engine, "filter")
    assert execution["steps"][0]["error_message"] == "the apps service is not running on this station"


async def test_bad_wasm_action_is_refused_at_creation_and_nothing_is_stored(
        database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        with pytest.raises(DefinitionError) as caught:
            engine.catalog.create({"name": "p", "actions": [NOOP[0], {"type": "run_wasm", "config": {"app": "a"}}]},
                                  "test")
        assert caught.value.path == "actions.1.config.function"
        assert engine.catalog.runtimes == {}


async def test_app_events_start_matching_processes_with_their_fields(database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        engine.catalog.create({
            "name": "hot",
            "triggers": [{"type": "wasm_event", "config": {"apps": ["telemetry-filter"],
                                                           "kinds": "temperature_alert"}}],
            "conditions": {"field": "event.payload.temperature", "op": "gt", "value": 40},
            "actions": [{"type": "log", "config": {
                "message": "{{ event.app }} {{ event.version }}: {{ event.payload.board_id }}"
                           " at {{ event.payload.temperature }}"}}],
            "mode": "parallel",
        }, "test")
        alert = {"kind": "temperature_alert", "board_id": "ws-1", "temperature": 51.5, "threshold": 45}
        bus.publish(AppEvent(app="other", version="1.0.0", payload=alert))  # another app
        bus.publish(AppEvent(app="telemetry-filter", version="1.0.0", payload={**alert, "kind": "heartbeat"}))
        bus.publish(AppEvent(app="telemetry-filter", version="1.0.0", payload={**alert, "temperature": 30}))
        assert await executions_of(engine, "hot") == []
        bus.publish(AppEvent(app="telemetry-filter", version="1.0.0", payload=alert))
        execution = await first_finished(engine, "hot")
        assert execution["status"] == "completed"
        assert execution["steps"][0]["result"] == {"logged": "telemetry-filter 1.0.0: ws-1 at 51.5"}
        assert len(await executions_of(engine, "hot")) == 1


async def test_the_app_alert_template_raises_one_alert_per_board(database: Database, bus: EventBus) -> None:
    alerts = AlertService(database, bus)
    template = next(t for t in BUILTIN if t["name"] == "app-alert")
    async with running_engine(EngineStation(database, bus, alerts=alerts)) as engine:
        engine.catalog.create(template["definition"], "test")
        hot = {"kind": "temperature_alert", "board_id": "ws-1", "temperature": 51.5, "threshold": 45}
        bus.publish(AppEvent(app="telemetry-filter", version="1.0.0", payload=hot))
        first = await first_finished(engine, "app-alert")
        bus.publish(AppEvent(app="telemetry-filter", version="1.0.0", payload={**hot, "temperature": 52}))
        await wait_for_runs(engine, "app-alert", 2)
        runs = [await finished(engine, row["id"]) for row in await executions_of(engine, "app-alert")]
    assert [run["status"] for run in runs] == ["completed", "completed"]
    alert = alerts.get(first["steps"][0]["result"]["alert_id"])
    assert (alert["title"], alert["message"]) == ("Board ws-1 is hot", "51.5 above 45 (app telemetry-filter 1.0.0)")
    assert [run["steps"][0]["result"]["deduplicated"] for run in reversed(runs)] == [False, True]


# ---- the real apps service with the committed telemetry-filter example


@pytest.fixture
async def apps_station(database: Database, bus: EventBus, tmp_path: Path) -> AsyncIterator[EngineStation]:
    """A station with the real apps service running telemetry-filter 1.0.0 (signed by the dev key)."""
    from station.config import WasmConfig
    from station.wasm.service import AppService

    station = EngineStation(database, bus)
    apps = AppService(WasmConfig(), database, bus, tmp_path / "data", station)
    station.apps = apps
    await apps.start()
    try:
        apps.keys.add("example-apps", (EXAMPLE_APPS / "dev-key" / "public.pem").read_text())
        bundle = EXAMPLE_APPS / "telemetry-filter" / "telemetry-filter-1.0.0.fapp"
        deployed = await apps.deploy(bundle.read_bytes(), "test")
        assert deployed["ok"], deployed["error"]
        yield station
    finally:
        await apps.stop()


async def test_a_real_app_filters_a_reading_and_its_alert_starts_a_process(apps_station: EngineStation) -> None:
    async with running_engine(apps_station) as engine:
        engine.catalog.create({"name": "filter", "actions": [
            {"id": "f", **wasm_step(input={"board_id": "{{ event.data.board }}",
                                           "values": {"temperature": "{{ event.data.t }}"}})},
            {"type": "log", "config": {"message": "alert={{ steps.f.result.alert }}"}},
        ]}, "test")
        engine.catalog.create({
            "name": "hot",
            "triggers": [{"type": "wasm_event",
                          "config": {"apps": "telemetry-filter", "kinds": ["temperature_alert"]}}],
            "actions": [{"type": "log", "config": {
                "message": "{{ event.app }} {{ event.version }}: {{ event.payload.board_id }}"
                           " at {{ event.payload.temperature }} > {{ event.payload.threshold }}"}}],
        }, "test")
        quiet = await run_by_hand(engine, "filter", {"board": "ws-1", "t": 20})
        assert quiet["steps"][0]["result"] == {"alert": False, "board_id": "ws-1", "temperature": 20, "threshold": 45}
        hot = await run_by_hand(engine, "filter", {"board": "ws-1", "t": 51.5})
        assert hot["status"] == "completed", hot
        assert hot["steps"][0]["result"] == {"alert": True, "board_id": "ws-1", "temperature": 51.5, "threshold": 45}
        assert hot["steps"][1]["result"] == {"logged": "alert=True"}
        reacted = await first_finished(engine, "hot")
        assert reacted["steps"][0]["result"] == {"logged": "telemetry-filter 1.0.0: ws-1 at 51.5 > 45"}
        assert len(await executions_of(engine, "hot")) == 1  # the quiet reading published nothing


async def test_real_refusals_fail_the_step_with_the_services_reason(apps_station: EngineStation) -> None:
    async with running_engine(apps_station) as engine:
        for name, step in [("unknown-app", wasm_step(app="nope", input={})),
                           ("unknown-entry", wasm_step(function="on_x", input={})),
                           ("stopped", wasm_step(input={}))]:
            engine.catalog.create({"name": name, "actions": [step]}, "test")
        messages = {name: (await run_by_hand(engine, name))["steps"][0]["error_message"]
                    for name in ("unknown-app", "unknown-entry")}
        apps_station.apps.stop_app("telemetry-filter")
        messages["stopped"] = (await run_by_hand(engine, "stopped"))["steps"][0]["error_message"]
    assert messages["unknown-app"] == "no app nope on this station"
    assert messages["unknown-entry"].startswith("app telemetry-filter: no entry point 'on_x'")
    assert messages["stopped"] == "app telemetry-filter: not running"


async def test_a_board_reading_reaches_the_app_by_default_input_and_by_its_pipeline(
        apps_station: EngineStation) -> None:
    async with running_engine(apps_station) as engine:
        engine.catalog.create({"name": "check", "triggers": [{"type": "board_telemetry"}],
                               "actions": [wasm_step()]}, "test")  # no input: the app gets the event
        engine.catalog.create({"name": "hot", "triggers": [{"type": "wasm_event", "config": {
            "kinds": "temperature_alert"}}], "actions": NOOP, "mode": "parallel"}, "test")
        apps_station.bus.publish(BoardTelemetry(board_id="ws-2", values={"temperature": 60}))
        checked = await first_finished(engine, "check")
        # one alert from the process's call, one from the app's own subscription to board telemetry
        await wait_for_runs(engine, "hot", 2)
        hot = [await finished(engine, row["id"]) for row in await executions_of(engine, "hot")]
    assert checked["steps"][0]["result"] == {"alert": True, "board_id": "ws-2", "temperature": 60, "threshold": 45}
    assert [run["trigger_event"]["payload"]["board_id"] for run in hot] == ["ws-2", "ws-2"]


async def test_the_documented_filter_and_alert_process_runs_as_written(apps_station: EngineStation) -> None:
    """docs/processes.md's run_wasm example, against the real app and alert service."""
    apps_station.alerts = AlertService(apps_station.database, apps_station.bus)
    async with running_engine(apps_station) as engine:
        engine.catalog.create({
            "name": "filter-and-alert",
            "triggers": [{"type": "board_telemetry", "config": {"sensors": ["temperature"]}}],
            "actions": [
                {"id": "check", **wasm_step(input={"board_id": "{{ event.board_id }}",
                                                   "values": {"temperature": "{{ event.values.temperature }}"}}),
                 "retry_count": 2, "timeout_seconds": 5},
                {"type": "create_alert", "conditions": {"field": "steps.check.result.alert", "op": "eq", "value": True},
                 "config": {"title": "{{ event.board_id }} above {{ steps.check.result.threshold }}"}},
            ],
        }, "test")
        apps_station.bus.publish(BoardTelemetry(board_id="ws-3", values={"temperature": 47.5}))
        execution = await first_finished(engine, "filter-and-alert")
    assert execution["status"] == "completed", execution
    alert = apps_station.alerts.get(execution["steps"][1]["result"]["alert_id"])
    assert alert["title"] == "ws-3 above 45"
