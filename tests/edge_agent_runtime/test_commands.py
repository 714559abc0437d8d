"""Commands and options: read and write config (merged, checked, persisted), sensors,
named handlers, reboot requests; failures become results, never exceptions."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import config
from edge_agent.agent.commands import Commands
from edge_agent.agent.handlers import HandlerError, registry
from edge_agent.agent.sensors import SensorError, Sensors, SimulatedSensors
from edge_agent.agent.storage import Storage
from edge_agent.protocol import make, validate

PROFILE_AGENT: dict[str, Any] = {"heartbeat_s": 5.0, "watchdog_s": 30.0, "sensors": ["temperature", "battery"],
                                 "enroll_token": "secret-token"}


async def async_handler(args: dict[str, Any]) -> Any:
    await asyncio.sleep(0)
    return {"async": True}


def broken_handler(args: dict[str, Any]) -> Any:
    raise ZeroDivisionError("oops")


HANDLERS = {"echo": "edge_agent.agent.handlers:echo", "later": f"{__name__}:async_handler",
            "broken": f"{__name__}:broken_handler"}


def commands(tmp_path: Path) -> tuple[Commands, Storage]:
    storage = Storage(str(tmp_path))
    storage.ensure()
    options = config.merge(PROFILE_AGENT, storage.load_config())
    sensors = Sensors(options["sensors"], options)
    return Commands(options, PROFILE_AGENT, storage, sensors, registry(HANDLERS)), storage


def run(cmds: Commands, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    msg = make("command", id=7, cmd=cmd, args=args) if args is not None else make("command", id=7, cmd=cmd)
    return validate(asyncio.run(cmds.handle(msg)))


def test_read_config_leaves_secrets_out(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    result = run(cmds, "read_config")
    assert result["ok"] and result["id"] == 7
    assert result["value"]["heartbeat_s"] == 5.0 and result["value"]["telemetry_s"] == config.TELEMETRY_S
    assert "enroll_token" not in result["value"]


def test_write_config_merges_persists_and_applies(tmp_path: Path) -> None:
    cmds, storage = commands(tmp_path)
    assert run(cmds, "write_config", {"heartbeat_s": 2})["value"]["heartbeat_s"] == 2.0
    assert run(cmds, "write_config", {"telemetry_s": 0.0})["ok"]
    assert storage.load_config() == {"heartbeat_s": 2.0, "telemetry_s": 0.0}
    assert cmds.options["heartbeat_s"] == 2.0 and cmds.options["telemetry_s"] == 0.0
    assert config.merge(PROFILE_AGENT, storage.load_config())["heartbeat_s"] == 2.0  # what the next boot sees


@pytest.mark.parametrize("changes", [
    {"heartbeat_s": "fast"}, {"heartbeat_s": True}, {"heartbeat_s": 0.01}, {"watchdog_s": 6.0},
    {"sensors": "temperature"}, {"log_level": "loud"}, {"board_id": "renamed"}, {"nope": 1}, {},
])
def test_write_config_refuses_bad_changes_and_keeps_the_old_options(tmp_path: Path, changes: dict[str, Any]) -> None:
    cmds, storage = commands(tmp_path)
    result = run(cmds, "write_config", changes)
    assert not result["ok"] and result["error"]
    assert storage.load_config() == {} and cmds.options["heartbeat_s"] == 5.0


def test_inconsistent_stored_overrides_are_ignored_as_a_whole() -> None:
    merged = config.merge(PROFILE_AGENT, {"heartbeat_s": 20.0, "log_level": "debug", "unknown": 1})
    assert merged["heartbeat_s"] == 5.0 and merged["log_level"] == "info"  # watchdog 30 < 2 x 20
    together = config.merge(PROFILE_AGENT, {"watchdog_s": 1.0, "heartbeat_s": 0.25})  # valid only together
    assert (together["heartbeat_s"], together["watchdog_s"]) == (0.25, 1.0)
    with pytest.raises(config.ConfigError):
        config.merge({"heartbeat_s": "often"}, {})


def test_read_sensor(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    temperature = run(cmds, "read_sensor", {"name": "temperature"})
    assert temperature["ok"] and isinstance(temperature["value"], float)
    assert set(run(cmds, "read_sensor")["value"]) == {"temperature", "battery"}
    assert not run(cmds, "read_sensor", {"name": "humidity"})["ok"]
    assert not run(cmds, "read_sensor", {"name": 3})["ok"]


def test_simulated_sensors_drift_deterministically_from_the_seed() -> None:
    one, same, other = SimulatedSensors(1), SimulatedSensors(1), SimulatedSensors(2)
    series = [(one.read("temperature"), one.read("battery")) for _ in range(200)]
    assert series == [(same.read("temperature"), same.read("battery")) for _ in range(200)]
    assert series != [(other.read("temperature"), other.read("battery")) for _ in range(200)]
    temperatures = [t for t, _ in series]
    assert len(set(temperatures)) > 10 and max(abs(a - b) for a, b in itertools.pairwise(temperatures)) <= 0.21
    assert all(3300 <= mv <= 4200 for _, mv in series)
    with pytest.raises(SensorError):
        Sensors(["humidity"], {})


def test_run_named_handlers(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    assert run(cmds, "run", {"name": "echo", "args": {"a": [1]}})["value"] == {"a": [1]}
    assert run(cmds, "run", {"name": "later"})["value"] == {"async": True}
    broken = run(cmds, "run", {"name": "broken"})
    assert not broken["ok"] and "ZeroDivisionError" in broken["error"]
    unknown = run(cmds, "run", {"name": "rm_rf"})
    assert not unknown["ok"] and "echo" in unknown["error"]
    assert not run(cmds, "run", {"name": "echo", "args": [1]})["ok"]
    assert cmds.handled == 2 and cmds.refused == 3


def test_handler_registry_refuses_what_it_cannot_import() -> None:
    for bad in ({"x": "no_such_module:f"}, {"x": "edge_agent.agent.handlers:nope"}, {"x": "nocolon"}, {"x": 3}):
        with pytest.raises(HandlerError):
            registry(bad)


def test_reboot_is_only_requested(tmp_path: Path) -> None:
    cmds, _ = commands(tmp_path)
    assert run(cmds, "reboot") == make("result", id=7, ok=True)
    assert cmds.reboot_requested
