"""The apps service in the test's event loop (real SQLite, real bus, real wasmtime): deploy with
signature checks, the health check and automatic rollback, operator rollback, contained faults,
board-telemetry pipelines, and the desired state across a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wasmtime
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.boards.events import BoardTelemetry
from station.bus import Event, EventBus
from station.config import WasmConfig
from station.store import Database, open_database
from station.wasm.bundle import build_bundle
from station.wasm.errors import (
    AppStateError,
    AppTimeout,
    AppTrap,
    InvalidModule,
    LimitTooHigh,
    UnknownSigningKey,
    UnsignedApp,
)
from station.wasm.events import AppEvent
from station.wasm.service import AppService

OK = '{"ok":true}'
HEALTHY = f"(i64.const {len(OK)})"  # (pointer 0 << 32) | length of the JSON at address 0
TRAP = "(unreachable)"
LOOP = "(loop $forever (br $forever)) (i64.const 0)"
PUBLISH_INPUT = f"(drop (call $publish (local.get 0) (local.get 1))) (i64.const {len(OK)})"


def module(run: str = HEALTHY, health: str = HEALTHY) -> bytes:
    return bytes(wasmtime.wat2wasm(f"""(module
      (import "firefly" "publish" (func $publish (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) {json.dumps(OK)})
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "health") (param i32 i32) (result i64) {health})
      (func (export "run") (param i32 i32) (result i64) {run}))"""))


def bundle(key: Ed25519PrivateKey | None, wasm: bytes, name: str = "probe", version: str = "1.0.0",
           **manifest: Any) -> bytes:
    document = {"name": name, "version": version, "host_api": 1, "module_sha256": hashlib.sha256(wasm).hexdigest(),
                "entry_points": ["run", "health"], "health_check": "health", "capabilities": ["publish"],
                "limits": {"timeout_ms": 300}, **manifest}
    return build_bundle(json.dumps(document).encode(), wasm, key)


class FakeMesh:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, requests: list[Any]) -> list[dict[str, Any]]:
        self.sent.extend(requests)
        return [{"id": str(len(self.sent))}]


class Apps:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.database: Database = open_database(tmp_path / "station.db")
        self.bus = EventBus()
        self.events: list[Event] = []
        self.bus.subscribe(Event, self.events.append)
        self.key = Ed25519PrivateKey.generate()
        self.services: list[AppService] = []

    async def service(self) -> AppService:
        station = SimpleNamespace(mesh=FakeMesh(), boards=None)
        service = AppService(WasmConfig(max_timeout_ms=1000), self.database, self.bus, self.tmp_path / "data",
                             station)
        await service.start()
        self.services.append(service)
        return service

    def trust(self, service: AppService) -> None:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        service.keys.add("tests", raw)

    async def wait_for(self, kind: type[Event], predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if isinstance(event, kind) and predicate(event):
                    return event
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching {kind.__name__}")


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[Apps]:
    harness = Apps(tmp_path)
    try:
        yield harness
    finally:
        for service in harness.services:
            await service.stop()
        harness.database.close()


def versions(shown: dict[str, Any]) -> dict[str, str]:
    return {version["version"]: version["state"] for version in shown["versions"]}


async def test_deploy_call_and_a_telemetry_pipeline(apps: Apps) -> None:
    service = await apps.service()
    apps.trust(service)
    deployed = await service.deploy(bundle(apps.key, module(run=PUBLISH_INPUT), subscriptions=[
        {"event": "board_telemetry", "entry_point": "run", "boards": ["ws-ridge-01"]}]), by="test")
    assert deployed["ok"] and deployed["running_version"] == "1.0.0" and deployed["state"] == "running"
    assert await service.call("probe", "run", {"hello": 1}) == {"ok": True}

    apps.bus.publish(BoardTelemetry(board_id="ws-other", values={"temperature": 20}))
    apps.bus.publish(BoardTelemetry(board_id="ws-ridge-01", values={"temperature": 51.5}))
    event = await apps.wait_for(AppEvent, lambda e: "board_id" in e.payload)
    assert event.app == "probe" and event.version == "1.0.0"
    assert event.payload["board_id"] == "ws-ridge-01" and event.payload["values"] == {"temperature": 51.5}
    await asyncio.sleep(0.2)
    assert [e.payload["board_id"] for e in apps.events if isinstance(e, AppEvent) and "board_id" in e.payload] == [
        "ws-ridge-01"]  # the other board is not subscribed
    kinds = [entry["kind"] for entry in service.history("probe")]
    assert kinds[:3] == ["deploy", "loaded", "running"]


async def test_a_version_failing_its_health_check_leaves_the_old_one_running(apps: Apps) -> None:
    service = await apps.service()
    apps.trust(service)
    assert (await service.deploy(bundle(apps.key, module()), by="test"))["ok"]
    failed = await service.deploy(bundle(apps.key, module(health=TRAP), version="2.0.0"), by="test")
    assert not failed["ok"] and "health" in failed["error"]
    assert failed["running_version"] == "1.0.0" and failed["active_version"] == "1.0.0"
    assert versions(failed) == {"2.0.0": "failed", "1.0.0": "running"}
    assert await service.call("probe", "run", None) == {"ok": True}
    rollback = [entry for entry in service.history("probe") if entry["kind"] == "rollback"]
    assert rollback and "1.0.0 keeps running" in rollback[-1]["message"]


async def test_operator_rollback_returns_to_the_version_before(apps: Apps) -> None:
    service = await apps.service()
    apps.trust(service)
    await service.deploy(bundle(apps.key, module()), by="test")
    second = await service.deploy(bundle(apps.key, module(run=PUBLISH_INPUT), version="1.1.0"), by="test")
    assert second["ok"] and versions(second) == {"1.1.0": "running", "1.0.0": "superseded"}

    back = await service.rollback("probe")
    assert back["running_version"] == "1.0.0" and versions(back) == {"1.1.0": "rolled_back", "1.0.0": "running"}
    with pytest.raises(AppStateError, match="no earlier version"):
        await service.rollback("probe")


async def test_traps_and_infinite_loops_are_contained(apps: Apps) -> None:
    service = await apps.service()
    apps.trust(service)
    await service.deploy(bundle(apps.key, module(run=LOOP), name="spinner"), by="test")
    await service.deploy(bundle(apps.key, module(run=TRAP), name="crasher"), by="test")
    await service.deploy(bundle(apps.key, module(), name="steady"), by="test")

    started = time.monotonic()
    with pytest.raises(AppTimeout):
        await service.call("spinner", "run", None)
    assert time.monotonic() - started < 5.0  # the 300 ms deadline, not forever
    with pytest.raises(AppTrap):
        await service.call("crasher", "run", None)
    assert await service.call("steady", "run", None) == {"ok": True}
    assert await service.call("crasher", "health", None) == {"ok": True}  # the app itself stays loaded
    with pytest.raises(AppStateError, match="no entry point"):
        await service.call("steady", "launch", None)


async def test_refused_bundles_store_nothing(apps: Apps) -> None:
    service = await apps.service()
    with pytest.raises(UnsignedApp):
        await service.deploy(bundle(None, module()), by="test")
    with pytest.raises(UnknownSigningKey):
        await service.deploy(bundle(apps.key, module()), by="test")
    apps.trust(service)
    with pytest.raises(InvalidModule):
        await service.deploy(bundle(apps.key, b"\x00asm\x01\x00\x00\x00garbage"), by="test")
    with pytest.raises(LimitTooHigh):
        await service.deploy(bundle(apps.key, module(), limits={"memory_bytes": 1 << 30}), by="test")
    assert service.apps() == []
    assert not list((apps.tmp_path / "data" / "apps" / "modules").iterdir())


async def test_desired_state_survives_a_restart(apps: Apps) -> None:
    first = await apps.service()
    apps.trust(first)
    await first.deploy(bundle(apps.key, module(), name="kept"), by="test")
    await first.deploy(bundle(apps.key, module(), name="paused"), by="test")
    assert first.stop_app("paused")["state"] == "stopped"
    await first.stop()
    apps.services.remove(first)

    second = await apps.service()
    assert second.show("kept")["running_version"] == "1.0.0"
    assert second.show("paused")["state"] == "stopped" and second.show("paused")["desired"] == "stopped"
    assert (await second.start_app("paused"))["running_version"] == "1.0.0"
    second.remove("kept")
    assert [app["name"] for app in second.apps()] == ["paused"]
