"""Processes that react to boards and act on them: the board triggers' config checks and
filters, and the board actions run by a real engine against a scripted boards service (ok,
refused, not connected with retries, no answer)."""

from __future__ import annotations

from typing import Any

import pytest

from station.boards import BoardOnline, BoardTelemetry, CommandResult, CommandTimeout, SessionEnded
from station.boards.events import BoardEventReceived, BoardOffline
from station.bus import EventBus
from station.processes.actions import load_builtin_actions
from station.processes.definition import parse_definition
from station.processes.errors import DefinitionError
from station.processes.triggers import matches
from station.store import Database
from station.store import processes as store
from tests.processes.inloop import EngineStation, executions_of, first_finished, run_by_hand, running_engine

load_builtin_actions()
NOOP = [{"type": "log", "config": {"message": "x"}}]


class ScriptedBoards:
    """BoardService.command's contract, answering from a script: each call takes the next
    outcome (a CommandResult, or an exception to raise); the last one repeats."""

    def __init__(self, *outcomes: CommandResult | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, dict[str, Any] | None, float]] = []

    async def command(self, board_id: str, cmd: str, args: dict[str, Any] | None = None,
                      timeout_s: float = 10.0) -> CommandResult:
        self.calls.append((board_id, cmd, args, timeout_s))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def command_step(**config: Any) -> dict[str, Any]:
    return {"type": "board_command", "config": {"board_id": "ws-1", "cmd": "read_sensor", **config}}


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"name": "p", "actions": [command_step(cmd="launch")]}, "actions.0.config.cmd"),
        ({"name": "p", "actions": [{"type": "board_command", "config": {"cmd": "read_config"}}]},
         "actions.0.config.board_id"),
        ({"name": "p", "actions": [command_step(board_id="two words")]}, "actions.0.config.board_id"),
        ({"name": "p", "actions": [command_step(args=["name"])]}, "actions.0.config.args"),
        ({"name": "p", "actions": [command_step(timeout_seconds=0)]}, "actions.0.config.timeout_seconds"),
        ({"name": "p", "actions": [{"type": "board_config_push", "config": {"board_id": "ws-1", "options": {}}}]},
         "actions.0.config.options"),
        ({"name": "p", "actions": [{"type": "board_config_push", "config": {"options": {"telemetry_s": 5}}}]},
         "actions.0.config.board_id"),
        ({"name": "p", "actions": [{"type": "board_config_push",
                                    "config": {"board_id": "ws-1", "options": {"a": 1}, "cmd": "reboot"}}]},
         "actions.0.config.cmd"),
        ({"name": "p", "triggers": [{"type": "board_telemetry", "config": {"sensor": ["t"]}}], "actions": NOOP},
         "triggers.0.config.sensor"),
        ({"name": "p", "triggers": [{"type": "board_online", "config": {"board_ids": []}}], "actions": NOOP},
         "triggers.0.config.board_ids"),
        ({"name": "p", "triggers": [{"type": "board_offline", "config": {"board_ids": 7}}], "actions": NOOP},
         "triggers.0.config.board_ids"),
        ({"name": "p", "triggers": [{"type": "board_event", "config": {"names": ["door", ""]}}], "actions": NOOP},
         "triggers.0.config.names"),
        ({"name": "p", "triggers": [{"type": "board_online", "config": {"names": ["x"]}}], "actions": NOOP},
         "triggers.0.config.names"),
    ],
)
def test_bad_board_configs_name_the_path(definition: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    assert caught.value.path == path, caught.value


def test_good_board_configs_pass_with_templated_values() -> None:
    definition = parse_definition({
        "name": "p",
        "triggers": [{"type": "board_event", "config": {"board_ids": "ws-1", "names": ["door_open"]}},
                     {"type": "board_offline", "config": {"reasons": ["heartbeat_timeout"]}}],
        "actions": [command_step(board_id="{{ event.board_id }}", args={"name": "{{ event.data.sensor }}"}),
                    {"type": "board_config_push",
                     "config": {"board_id": "{{ event.board_id }}", "options": {"telemetry_s": "{{ vars.t }}"}}}],
        "variables": {"t": 60},
    })
    assert definition.actions[0].config["board_id"] == "{{ event.board_id }}"


def test_board_trigger_filters() -> None:
    online = {"board_id": "ws-1"}
    assert matches("board_online", {}, online)
    assert matches("board_online", {"board_ids": "ws-1"}, online)
    assert not matches("board_online", {"board_ids": ["ws-2"]}, online)
    offline = {"board_id": "ws-1", "reason": "heartbeat_timeout"}
    assert matches("board_offline", {"reasons": ["heartbeat_timeout", "link_lost"]}, offline)
    assert not matches("board_offline", {"reasons": ["revoked"]}, offline)
    telemetry = {"board_id": "ws-1", "values": {"temperature": 21.5, "battery": None}}
    assert matches("board_telemetry", {"sensors": ["temperature"]}, telemetry)
    assert not matches("board_telemetry", {"sensors": ["battery"]}, telemetry)  # carried no reading
    assert not matches("board_telemetry", {"board_ids": ["ws-2"], "sensors": ["temperature"]}, telemetry)
    event = {"board_id": "ws-1", "name": "door_open", "data": {}}
    assert matches("board_event", {"names": ["door_open"], "board_ids": ["ws-1"]}, event)
    assert not matches("board_event", {"names": ["door_closed"]}, event)


async def test_telemetry_of_another_board_starts_nothing_and_fields_reach_templates(
        database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        engine.catalog.create({
            "name": "hot",
            "triggers": [{"type": "board_telemetry", "config": {"board_ids": ["ws-1"], "sensors": ["temperature"]}}],
            "conditions": {"field": "event.values.temperature", "op": "gt", "value": 40},
            "actions": [{"id": "say", "type": "log",
                         "config": {"message": "{{ event.board_id }} at {{ event.values.temperature }}"}}],
            "mode": "parallel",
        }, "test")
        bus.publish(BoardTelemetry(board_id="ws-2", values={"temperature": 50}))  # another board
        bus.publish(BoardTelemetry(board_id="ws-1", values={"temperature": 30}))  # condition fails
        bus.publish(BoardTelemetry(board_id="ws-1", values={"battery": 80}))  # no temperature
        assert await executions_of(engine, "hot") == []
        bus.publish(BoardTelemetry(board_id="ws-1", values={"temperature": 51.5}))
        execution = await first_finished(engine, "hot")
        assert execution["status"] == "completed"
        assert execution["trigger_event"]["values"] == {"temperature": 51.5}
        assert execution["steps"][0]["result"] == {"logged": "ws-1 at 51.5"}
        assert len(await executions_of(engine, "hot")) == 1


async def test_online_offline_and_event_fields_reach_templates(database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        for name, trigger, text in [
            ("up", {"type": "board_online"}, "{{ event.board_id }} up"),
            ("down", {"type": "board_offline", "config": {"reasons": "link_lost"}},
             "{{ event.board_id }} down: {{ event.reason }}"),
            ("door", {"type": "board_event", "config": {"names": ["door_open"]}},
             "{{ event.board_id }} {{ event.name }} {{ event.data.side }}"),
        ]:
            engine.catalog.create({"name": name, "triggers": [trigger],
                                   "actions": [{"type": "log", "config": {"message": text}}]}, "test")
        bus.publish(BoardOffline(board_id="ws-1", reason="station_stopping"))  # not in reasons
        bus.publish(BoardEventReceived(board_id="ws-1", name="door_closed", data={}))  # not in names
        bus.publish(BoardOnline(board_id="ws-1"))
        bus.publish(BoardOffline(board_id="ws-1", reason="link_lost"))
        bus.publish(BoardEventReceived(board_id="ws-1", name="door_open", data={"side": "north"}))
        logged = {name: (await first_finished(engine, name))["steps"][0]["result"]["logged"]
                  for name in ("up", "down", "door")}
        assert logged == {"up": "ws-1 up", "down": "ws-1 down: link_lost", "door": "ws-1 door_open north"}
        assert [len(await executions_of(engine, name)) for name in ("down", "door")] == [1, 1]


async def test_command_value_is_the_step_result_later_steps_template_on(database: Database, bus: EventBus) -> None:
    boards = ScriptedBoards(CommandResult(ok=True, value={"temperature": 21.5, "battery": 88}))
    async with running_engine(EngineStation(database, bus, boards=boards)) as engine:
        engine.catalog.create({"name": "read", "actions": [
            {"id": "sensors", **command_step(board_id="{{ event.data.board }}", timeout_seconds=2.5)},
            {"type": "log", "config": {"message": "battery {{ steps.sensors.result.battery }}"}},
        ]}, "test")
        execution = await run_by_hand(engine, "read", {"board": "ws-7"})
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] == {"temperature": 21.5, "battery": 88}
    assert execution["steps"][1]["result"] == {"logged": "battery 88"}
    assert boards.calls == [("ws-7", "read_sensor", {}, 2.5)]


async def test_config_push_sends_write_config_and_returns_the_board_config(
        database: Database, bus: EventBus) -> None:
    boards = ScriptedBoards(CommandResult(ok=True, value={"telemetry_s": 60.0, "heartbeat_s": 5.0}))
    async with running_engine(EngineStation(database, bus, boards=boards)) as engine:
        engine.catalog.create({"name": "push", "actions": [
            {"type": "board_config_push", "config": {"board_id": "ws-1", "options": {"telemetry_s": 60}}}]}, "test")
        execution = await run_by_hand(engine, "push")
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] == {"telemetry_s": 60.0, "heartbeat_s": 5.0}
    assert boards.calls == [("ws-1", "write_config", {"telemetry_s": 60}, 10.0)]


async def test_board_refusal_fails_the_step_with_the_board_error(database: Database, bus: EventBus) -> None:
    boards = ScriptedBoards(CommandResult(ok=False, error="config telemetry_s: must be a number"))
    async with running_engine(EngineStation(database, bus, boards=boards)) as engine:
        engine.catalog.create({"name": "push", "actions": [
            {"type": "board_config_push", "config": {"board_id": "ws-1", "options": {"telemetry_s": "often"}}}]},
            "test")
        execution = await run_by_hand(engine, "push")
    assert execution["status"] == "failed"
    step = execution["steps"][0]
    assert step["status"] == "failed"
    assert step["error_message"] == "board ws-1 refused write_config: config telemetry_s: must be a number"
    assert len(boards.calls) == 1  # no retry_count: one attempt


async def test_not_connected_fails_after_its_retries(database: Database, bus: EventBus) -> None:
    boards = ScriptedBoards(SessionEnded("ws-1", "not connected"))
    async with running_engine(EngineStation(database, bus, boards=boards)) as engine:
        engine.catalog.create({"name": "read", "actions": [
            {**command_step(), "retry_count": 2, "retry_backoff_s": 0}]}, "test")
        execution = await run_by_hand(engine, "read")
    assert execution["status"] == "failed"
    assert execution["steps"][0]["error_message"] == "board ws-1 is not connected"
    assert execution["steps"][0]["retry_count"] == 2
    assert len(boards.calls) == 3


async def test_a_retry_rides_out_a_reconnect_and_a_timeout_is_named(database: Database, bus: EventBus) -> None:
    boards = ScriptedBoards(SessionEnded("b0", "link_lost"), CommandTimeout("ws-1", "read_sensor", 2.0),
                            CommandResult(ok=True, value=21.5))
    async with running_engine(EngineStation(database, bus, boards=boards)) as engine:
        engine.catalog.create({"name": "read", "actions": [
            {**command_step(), "retry_count": 2, "retry_backoff_s": 0}]}, "test")
        execution = await run_by_hand(engine, "read")
        logs = [line["message"] for line in store.execution_logs(database, execution["id"])]
    assert execution["status"] == "completed"
    assert execution["steps"][0]["result"] == 21.5
    assert "attempt 1 failed: board ws-1: session ended during read_sensor (link_lost)" in logs
    assert "attempt 2 failed: board ws-1 did not answer read_sensor within 2 s" in logs


async def test_without_a_boards_service_the_step_fails_clearly(database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        engine.catalog.create({"name": "read", "actions": [command_step()]}, "test")
        execution = await run_by_hand(engine, "read")
    assert execution["steps"][0]["error_message"] == "the boards service is not running on this station"


async def test_bad_board_action_is_refused_at_creation_and_nothing_is_stored(
        database: Database, bus: EventBus) -> None:
    async with running_engine(EngineStation(database, bus)) as engine:
        with pytest.raises(DefinitionError) as caught:
            engine.catalog.create({"name": "p", "actions": [NOOP[0], command_step(cmd="selfdestruct")]}, "test")
        assert caught.value.path == "actions.1.config.cmd"
        assert "read_sensor" in caught.value.message  # the known commands are listed
        assert engine.catalog.runtimes == {}
