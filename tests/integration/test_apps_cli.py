"""`firefly app` against a real station: a bundle from an untrusted key is refused (exit 2, nothing
stored), the operator trusts the key, deploys both example apps and calls them; after a kill -9 the
apps run again; stop and remove. (Traps, loops and memory bombs: tests/wasm_service, wasm_runtime.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Station

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apps"
FILTER = EXAMPLES / "telemetry-filter" / "telemetry-filter-1.0.0.fapp"
FORMATTER = EXAMPLES / "message-formatter" / "message-formatter-1.0.0.fapp"
DEV_KEY = EXAMPLES / "dev-key" / "public.pem"


def as_json(station: Station, *args: str) -> Any:
    result = station.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_apps_through_the_cli(make_station: Callable[..., Station]) -> None:
    station = make_station([])
    refused = station.cli("app", "deploy", str(FILTER))
    assert refused.returncode == 2 and "does not trust" in refused.stderr
    assert as_json(station, "app", "list")["apps"] == []

    key = as_json(station, "app", "keys", "add", str(DEV_KEY), "--name", "examples")
    assert len(key["key_id"]) == 16
    assert as_json(station, "app", "deploy", str(FILTER))["ok"] is True
    assert station.cli("app", "deploy", str(FORMATTER)).returncode == 0

    hot = as_json(station, "app", "call", "telemetry-filter", "on_telemetry",
                  "--input", '{"board_id": "ws-1", "values": {"temperature": 51.25}}')
    assert hot["output"]["alert"] is True and hot["output"]["temperature"] == 51.25
    cool = as_json(station, "app", "call", "telemetry-filter", "on_telemetry",
                   "--input", '{"board_id": "ws-1", "values": {"temperature": 20}}')
    assert cool["output"]["alert"] is False
    formatted = as_json(station, "app", "call", "message-formatter", "format", "--input", '{"text": "rain at 5"}')
    assert formatted["output"]["text"] == "[FF] rain at 5"

    refused = as_json(station, "app", "call", "message-formatter", "format", "--input", '"not an object"')
    assert "error" in refused["output"]  # the app's own refusal, as JSON
    assert station.cli("app", "call", "message-formatter", "launch").returncode == 1  # no such entry point: 409

    station.kill9()
    station.start(wait_connected=False)
    listing = {app["name"]: app for app in as_json(station, "app", "list")["apps"]}
    assert {name: app["running_version"] for name, app in listing.items()} == {
        "message-formatter": "1.0.0", "telemetry-filter": "1.0.0"}

    assert as_json(station, "app", "stop", "telemetry-filter")["state"] == "stopped"
    assert station.cli("app", "call", "telemetry-filter", "health").returncode == 1  # 409: not running
    assert station.cli("app", "remove", "telemetry-filter").returncode == 0
    assert station.cli("app", "show", "telemetry-filter").returncode == 4
    history = as_json(station, "app", "logs", "message-formatter")["entries"]
    assert [entry["kind"] for entry in history][:3] == ["deploy", "loaded", "running"]
    assert station.terminate() == 0
