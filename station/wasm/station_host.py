"""The station behind the host API: what `firefly.*` host functions reach (the app's log, its
key-value store, the bus, the mesh outbox, board telemetry and commands).

Host functions run in the runtime's worker threads while the event loop goes on, and the
station's SQLite connection and services belong to the loop's thread: every call that touches
them is run on the loop and waited for (LOOP_CALL_TIMEOUT_S), so no service needs to be
thread-safe. Owns that marshalling and the latest-telemetry cache; limits (quota, rate) are
enforced by the runtime's host layer before it calls in here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from station.boards.events import BoardTelemetry
from station.bus import EventBus, Unsubscribe
from station.mesh.outbox import SendRequest
from station.store import Database
from station.store import apps as store
from station.wasm.events import AppEvent

logger = logging.getLogger(__name__)

LOOP_CALL_TIMEOUT_S = 10.0  # a host call waiting for the loop longer than this: the station is wedged
LOG_LEVELS = ("debug", "info", "warning", "error")

T = TypeVar("T")


class StationHost:
    """HostServices for every app of one station."""

    def __init__(self, database: Database, bus: EventBus, station: Any) -> None:
        self._database, self._bus, self._station = database, bus, station
        self._loop: asyncio.AbstractEventLoop | None = None
        self._telemetry: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._versions: dict[str, str] = {}  # app -> the version running, for AppEvent
        self._unsubscribe: Unsubscribe | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._bus.subscribe(BoardTelemetry, self._on_telemetry)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def running(self, app: str, version: str | None) -> None:
        if version is None:
            self._versions.pop(app, None)
        else:
            self._versions[app] = version

    def _on_telemetry(self, event: BoardTelemetry) -> None:
        with self._lock:
            self._telemetry[event.board_id] = {"values": dict(event.values), "at": event.at}

    # ---- HostServices (called from worker threads)

    def log(self, app: str, level: str, text: str) -> None:
        level = level if level in LOG_LEVELS else "info"
        logger.log(logging.getLevelName(level.upper()), "app says", extra={"app": app, "text": text[:200]})
        self._on_loop(store.add_event, self._database, app, self._versions.get(app), "log", text, time.time(), level)

    def kv_get(self, app: str, key: str) -> bytes | None:
        return self._on_loop(store.kv_get, self._database, app, key)

    def kv_put(self, app: str, key: str, value: bytes, quota: int) -> bool:
        return self._on_loop(store.kv_put, self._database, app, key, value, quota)

    def publish(self, app: str, payload: dict[str, Any]) -> None:
        event = AppEvent(app=app, version=self._versions.get(app, ""), payload=payload)
        self._on_loop(self._bus.publish, event)

    def mesh_send(self, app: str, text: str, to: str, channel: int) -> None:
        if not text or not text.strip():
            raise ValueError("empty text")
        request = SendRequest(text=text, to=to, channel=channel)
        self._on_loop(self._station.mesh.send, [request])  # the outbox checks the rest (ValueError)

    def board_telemetry(self, board_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._telemetry.get(board_id)
            return None if found is None else dict(found)

    def board_command(self, board_id: str, cmd: str, args: dict[str, Any],
                      timeout_s: float) -> dict[str, Any] | None:
        from station.boards import CommandTimeout, SessionEnded  # the boards package is large: only when used

        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._station.boards.command(board_id, cmd, args, timeout_s), loop)
        try:
            result = future.result(timeout_s + 1.0)
        except SessionEnded:
            return None
        except (CommandTimeout, concurrent.futures.TimeoutError):
            future.cancel()
            return {"ok": False, "value": None, "error": f"no answer within {timeout_s:g} s"}
        return {"ok": result.ok, "value": result.value, "error": result.error}

    # ---- the loop

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the app host is not started")
        return self._loop

    def _on_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` on the event loop's thread and return its result (or raise its error)."""
        loop = self._require_loop()
        try:
            if asyncio.get_running_loop() is loop:
                return function(*args)  # already on the loop (a direct call in tests)
        except RuntimeError:
            pass
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(function(*args))
            except BaseException as exc:  # handed to the waiting thread, which raises it
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(LOOP_CALL_TIMEOUT_S)
