"""Processes acting on a real board: a real process engine and the boards service in the test's
loop, a real MicroPython agent on a pty. A board_online process pushes config (the board stores
it) and reads it back, a refused write fails its step with the board's words, a telemetry
process hears only its board, and a board that is gone fails the step as not connected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from station.boards.events import BoardOffline, BoardOnline
from tests.boards_link.conftest import LinkBoard, Station, give_code
from tests.processes.inloop import EngineStation, executions_of, first_finished, run_by_hand, running_engine

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]
THIS_BOARD = "{{ event.board_id }}"


def on_connect() -> dict[str, Any]:
    return {
        "name": "tune-on-connect",
        "triggers": [{"type": "board_online"}],
        "actions": [
            {"id": "pushed", "type": "board_config_push",
             "config": {"board_id": THIS_BOARD, "options": {"telemetry_s": 2.5}}},
            {"id": "config", "type": "board_command", "config": {"board_id": THIS_BOARD, "cmd": "read_config"}},
            {"id": "temp", "type": "board_command",
             "config": {"board_id": THIS_BOARD, "cmd": "read_sensor", "args": {"name": "temperature"}}},
            {"type": "log", "config": {"message": THIS_BOARD + " every {{ steps.config.result.telemetry_s }} s"}},
        ],
    }


async def test_processes_push_config_read_the_board_and_hear_its_telemetry(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board = make_board()
    station = await make_station(board.url)
    engine_station = EngineStation(station.database, station.service.trust.bus, boards=station.service)
    async with running_engine(engine_station) as engine:
        engine.catalog.create(on_connect(), "test")
        engine.catalog.create({"name": "another-board", "triggers": [
            {"type": "board_online", "config": {"board_ids": ["ws-not-this-one"]}}],
            "actions": [{"type": "log", "config": {"message": "wrong board"}}]}, "test")
        give_code(board, station)
        await station.wait_opened()
        board.boot()
        board_id = (await station.recorder.wait_for(BoardOnline)).board_id

        execution = await first_finished(engine, "tune-on-connect")
        assert execution["status"] == "completed", execution
        pushed, config, temperature, logged = (step["result"] for step in execution["steps"])
        assert pushed["telemetry_s"] == 2.5 and "enroll_token" not in pushed  # the board's public config
        assert config["telemetry_s"] == 2.5 and "heartbeat_s" in config
        assert isinstance(temperature, int | float)
        assert logged == {"logged": f"{board_id} every 2.5 s"}
        assert board.storage.load_config()["telemetry_s"] == 2.5  # the board persisted it
        assert await executions_of(engine, "another-board") == []

        engine.catalog.create({"name": "bad-push", "actions": [{"type": "board_config_push", "config": {
            "board_id": board_id, "options": {"telemetry_s": 5, "heartbeat_s": "often"}}}]}, "test")
        refused = await run_by_hand(engine, "bad-push")
        assert refused["status"] == "failed"
        assert refused["steps"][0]["error_message"] == (
            f"board {board_id} refused write_config: config heartbeat_s: must be a number")
        assert board.storage.load_config()["telemetry_s"] == 2.5  # all or nothing: telemetry_s kept

        engine.catalog.create({"name": "readings", "triggers": [
            {"type": "board_telemetry", "config": {"board_ids": [board_id], "sensors": ["temperature"]}}],
            "actions": [{"type": "log", "config": {"message": "t={{ event.values.temperature }}"}}]}, "test")
        heard = await first_finished(engine, "readings")
        assert heard["status"] == "completed", (heard["error_message"], heard["trigger_event"])
        reading = heard["trigger_event"]["values"]["temperature"]
        assert heard["steps"][0]["result"] == {"logged": f"t={reading}"}

        mark = station.recorder.mark()
        board.kill9()
        await station.recorder.wait_for(BoardOffline, after=mark, board_id=board_id)
        engine.catalog.create({"name": "read", "actions": [
            {"type": "board_command", "config": {"board_id": board_id, "cmd": "read_config"}}]}, "test")
        gone = await run_by_hand(engine, "read")
        assert gone["status"] == "failed"
        assert gone["steps"][0]["error_message"] == f"board {board_id} is not connected"
