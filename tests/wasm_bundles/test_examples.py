"""The committed example apps: their bundles verify with the committed development key and
validate, scripts/build-example-apps reproduces them, and they behave as documented."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from station.store import Database
from station.wasm.bundle import AppBundle, read_bundle, verify_signature
from station.wasm.keys import TrustedKeys
from station.wasm.manifest import StationLimits
from station.wasm.pack import MANIFEST_FILE, MODULE_FILE, SOURCE_FILE, compile_wat
from station.wasm.runner import CallLimits, WasmRuntime
from station.wasm.validate import check_compatibility, validate_module
from tests.wasm_bundles.harness import StubHost, call

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "examples" / "apps"
DEV_PUBLIC_KEY = APPS / "dev-key" / "public.pem"
EXAMPLES = {"telemetry-filter": "telemetry-filter-1.0.0.fapp", "message-formatter": "message-formatter-1.0.0.fapp"}


def committed(name: str) -> AppBundle:
    return read_bundle((APPS / name / EXAMPLES[name]).read_bytes())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_committed_bundle_verifies_with_the_dev_key_and_validates(database: Database, name: str) -> None:
    keys = TrustedKeys(database)
    dev = keys.add("example-apps", DEV_PUBLIC_KEY.read_text())
    bundle = committed(name)
    assert verify_signature(bundle, keys, allow_unsigned=False) == dev.key_id
    report = validate_module(None, bundle, StationLimits())
    assert set(report.entry_points) <= {item.name for item in report.exports}
    check_compatibility(bundle.manifest)
    assert bundle.manifest_bytes == (APPS / name / MANIFEST_FILE).read_bytes()
    assert bundle.module == (APPS / name / MODULE_FILE).read_bytes()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_committed_module_is_its_wat_compiled(name: str) -> None:
    source = (APPS / name / SOURCE_FILE).read_text()
    assert compile_wat(source) == (APPS / name / MODULE_FILE).read_bytes()


def test_the_build_script_reproduces_every_committed_file() -> None:
    result = subprocess.run([str(REPO / "scripts" / "build-example-apps"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---- telemetry-filter


def telemetry(payload: dict[str, Any] | bytes, host: StubHost | None = None) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call(committed("telemetry-filter").module, "on_telemetry", data, host or StubHost())


def test_telemetry_above_the_default_threshold_alerts_and_publishes() -> None:
    host = StubHost()
    output = telemetry({"board_id": "esp32-a1", "values": {"temperature": 51.5, "battery": 3.9}, "at": 1}, host)
    assert output == {"alert": True, "board_id": "esp32-a1", "temperature": 51.5, "threshold": 45}
    assert host.published == [{"kind": "temperature_alert", "board_id": "esp32-a1", "temperature": 51.5,
                               "threshold": 45}]
    assert host.logs == [(2, "temperature above threshold")]


def test_telemetry_at_or_below_the_threshold_is_quiet() -> None:
    host = StubHost()
    assert telemetry({"board_id": "b", "values": {"temperature": 45}}, host)["alert"] is False
    assert telemetry({"board_id": "b", "values": {"temperature": -12.25}}, host)["temperature"] == -12.25
    assert host.published == [] and host.logs == []


def test_the_threshold_comes_from_kv() -> None:
    host = StubHost(kv={"threshold": b"-5.5"})
    assert telemetry(b'{"board_id" : "b", "values" : {"temperature" : -5.4}}', host)["alert"] is True
    assert telemetry({"values": {"temperature": 60}}, StubHost(kv={"threshold": b"70"}))["alert"] is False
    # a threshold that is not a plain number falls back to the default
    assert telemetry({"values": {"temperature": 46}}, StubHost(kv={"threshold": b"hot"}))["threshold"] == 45


@pytest.mark.parametrize("values", [{}, {"temperature": "hot"}, {"temperature": None}, {"temperature": 1e-7}])
def test_telemetry_without_a_plain_numeric_temperature(values: dict[str, Any]) -> None:
    assert telemetry({"board_id": "b", "values": values}) == {"alert": False,
                                                             "reason": "no numeric temperature field"}


def test_an_odd_board_id_becomes_null() -> None:
    assert telemetry({"board_id": 'a"b', "values": {"temperature": 50}})["board_id"] is None
    assert telemetry({"board_id": "x" * 65, "values": {"temperature": 50}})["board_id"] is None


def test_telemetry_health() -> None:
    assert call(committed("telemetry-filter").module, "health", b"{}", StubHost()) == {
        "ok": True, "app": "telemetry-filter"}


# ---- message-formatter


def formatted(payload: dict[str, Any] | bytes, host: StubHost | None = None) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call(committed("message-formatter").module, "format", data, host or StubHost())


def test_a_short_text_gets_the_tag() -> None:
    assert formatted({"text": "pump 3 restarted"}) == {"text": "[FF] pump 3 restarted", "bytes": 21,
                                                        "truncated": False, "sent": False}
    assert formatted({"text": "hi"}, StubHost(kv={"tag": b"ST-01"}))["text"] == "[ST-01] hi"


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_escapes_and_unicode_survive(ensure_ascii: bool) -> None:
    text = 'quote " backslash \\ newline \n tab \t bell \x07 é ☃ 😀'
    payload = json.dumps({"text": text}, ensure_ascii=ensure_ascii).encode()
    output = formatted(payload)
    assert output["text"] == "[FF] " + text
    assert output["bytes"] == len(output["text"].encode())


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    assert formatted(b'{"text": "a\\ud800b"}')["text"] == "[FF] a\ufffdb"


@pytest.mark.parametrize("text", ["a" * 300, "é" * 200, "😀" * 100, "x" + "☃" * 100])
def test_a_long_text_is_cut_at_a_character_boundary(text: str) -> None:
    output = formatted({"text": text})
    encoded = output["text"].encode()
    assert output["truncated"] is True
    assert output["bytes"] == len(encoded) <= 233
    assert len(encoded) > 233 - 4  # cut no further back than one character
    assert output["text"].endswith("…") and ("[FF] " + text).startswith(output["text"][:-1])


def test_send_queues_the_text_on_the_mesh() -> None:
    host = StubHost()
    output = formatted({"text": "gate open", "send": True}, host)
    assert output["sent"] is True
    assert host.mesh == [{"text": "[FF] gate open"}]
    assert formatted({"text": "gate open", "send": False}, host)["sent"] is False
    assert len(host.mesh) == 1


def test_a_refused_send_is_logged_and_reported() -> None:
    host = StubHost(mesh_result=-1)
    assert formatted({"text": "x", "send": True}, host)["sent"] is False
    assert host.logs == [(2, "mesh_send refused the message")]


@pytest.mark.parametrize("payload", [b"{}", b'{"text": 5}', b'{"text": "unterminated', b'{"text": "\\q"}',
                                     b'{"text": "\\u12"}', b"not json"])
def test_input_without_a_text_string_is_an_error_output(payload: bytes) -> None:
    assert formatted(payload) == {"error": "input needs a text string"}


# ---- on the station's runtime


class FakeServices:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.mesh: list[tuple[str, str]] = []

    def log(self, app: str, level: str, text: str) -> None:
        pass

    def kv_get(self, app: str, key: str) -> bytes | None:
        return b"30" if key == "threshold" else None

    def kv_put(self, app: str, key: str, value: bytes, quota: int) -> bool:
        return True

    def publish(self, app: str, payload: dict[str, Any]) -> None:
        self.published.append(payload)

    def mesh_send(self, app: str, text: str, to: str, channel: int) -> None:
        self.mesh.append((app, text))

    def board_telemetry(self, board_id: str) -> dict[str, Any] | None:
        return None

    def board_command(self, board_id: str, cmd: str, args: dict[str, Any],
                      timeout_s: float) -> dict[str, Any] | None:
        return None


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[WasmRuntime]:
    wasm_runtime = WasmRuntime(tmp_path / "cache")
    yield wasm_runtime
    wasm_runtime.close()


async def test_the_examples_run_on_the_station_runtime(runtime: WasmRuntime) -> None:
    services = FakeServices()
    loaded = {}
    for name in EXAMPLES:
        bundle = committed(name)
        limits = bundle.manifest.limits
        loaded[name] = runtime.load(name, bundle.module, frozenset(bundle.manifest.capabilities),
                                    CallLimits(limits.memory_bytes, limits.fuel_per_call, limits.timeout_ms),
                                    services, name, limits.kv_bytes, limits.mesh_per_minute)
    output = await runtime.call(loaded["telemetry-filter"], "on_telemetry",
                                {"board_id": "esp32-a1", "values": {"temperature": 31.0}})
    assert output == {"alert": True, "board_id": "esp32-a1", "temperature": 31.0, "threshold": 30}
    assert services.published[0]["kind"] == "temperature_alert"
    output = await runtime.call(loaded["message-formatter"], "format", {"text": "ça marche", "send": True})
    assert output == {"text": "[FF] ça marche", "bytes": 15, "truncated": False, "sent": True}
    assert services.mesh == [("message-formatter", "[FF] ça marche")]
    for name in EXAMPLES:
        assert (await runtime.call(loaded[name], "health", {}))["ok"] is True
