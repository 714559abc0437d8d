"""Deploys to boards: config changes and files, queued in SQLite until the board is connected,
sent over its authenticated session, resumed after a broken link or a station restart, and
switched atomically on the board (docs/boards.md, "Deploying config and files").

A file goes out as file_begin (the board answers with how much of it it already holds), chunks
with CHUNK_WINDOW of them in flight, and file_end (the board verifies the SHA-256 and renames
the file into place). The content waits in a spool directory named by its digest, so a queued
deploy survives a restart and two deploys of one file share it. A config change is the board's
write_config command, which persists and applies the options in one step: sending it twice is
harmless. Owns the deploy queue and the sending; the session owns the wire, the agent the flash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent.files import PathRefused, safe_relative_path
from edge_agent.protocol import FILE_BEGIN, FILE_CHUNK, FILE_CHUNK_SIZE, FILE_END, FILE_STATUS, make
from station.boards._link import CommandTimeout, LinkState, SessionEnded
from station.boards.errors import (
    BoardNotFound,
    DeployClosed,
    DeployNotFound,
    DeployRefused,
    InvalidBoardInput,
)
from station.boards.events import BoardDeployFinished, BoardOnline
from station.boards.session import BoardSession
from station.boards.transport import BoardLinkError
from station.bus import EventBus, Unsubscribe
from station.files import write_atomic
from station.store import Database
from station.store import board_deploys as store
from station.store.board_deploys import DeployRecord, NewDeploy

logger = logging.getLogger(__name__)

CHUNK_WINDOW = 2  # chunks in flight: one on the wire while the board writes the previous one to flash
# A chunk is 3,840 bytes: 3.5 s at 9,600 baud. Silence much longer than that is a stuck board;
# a dead link ends the session first (heartbeat timeout) and the deploy waits for the next one.
REPLY_TIMEOUT_S = 30.0
MAX_STALLS = 3  # reply timeouts in one session before the deploy waits for a new session
PROGRESS_EVERY_S = 0.5  # `sent` is committed at most this often while a file streams
RETRY_IDLE_S = 2.0  # a worker re-checks for a connected session at least this often
CONFIG_TIMEOUT_S = 15.0  # write_config: a flash write and an answer
MAX_FILE_BYTES = 16 << 20  # the largest flash a supported board has; each board refuses beyond its own
MAX_CONFIG_BYTES = 2048  # the options' JSON; the command must fit one frame with room to spare
SPOOL_DIR = "boards/deploys"


MAX_ATTEMPTS = 20  # sessions one deploy may be tried over before it fails: a board that keeps failing it


class TransferStalled(BoardLinkError):
    def __init__(self, board_id: str, reason: str) -> None:
        super().__init__(f"board {board_id}: the file transfer stalled ({reason})")


class _Restart(Exception):
    """The board forgot the transfer mid-stream (it restarted): begin again, resuming from flash."""


def transfer_id(deploy_id: str) -> int:
    """The transfer id a deploy uses in every session: stable, so the board resumes the same one."""
    return int.from_bytes(hashlib.sha256(deploy_id.encode()).digest()[:4], "big")


class FileSender:
    """One file over one session: begin, chunks, end. Returns when the board holds the file;
    raises DeployRefused (the board said no), SessionEnded or TransferStalled (try again later)."""

    def __init__(self, session: BoardSession, xfer: int, path: str, data: bytes,
                 on_progress: Callable[[int], None]) -> None:
        self._session, self._xfer, self._path, self._data = session, xfer, path, data
        self._on_progress = on_progress
        self._digest = hashlib.sha256(data).digest()
        self._replies: asyncio.Queue[dict[str, Any] | None] | None = None
        self._board = session.board_id or session.name

    async def run(self) -> None:
        self._replies = self._session.open_transfer(self._xfer)
        try:
            stalls = 0
            while True:
                try:
                    have = await self._begin()
                    while have is not None:
                        have = await self._end(await self._stream(have))
                    return
                except (TransferStalled, _Restart) as exc:
                    stalls += 1
                    if stalls >= MAX_STALLS:
                        raise TransferStalled(self._board, str(exc) or "the board forgot it") from None
        finally:
            self._session.close_transfer(self._xfer)

    async def _begin(self) -> int | None:
        """How much of the file the board holds (None: all of it, already in place)."""
        await self._session.send(make(FILE_BEGIN, xfer=self._xfer, path=self._path, size=len(self._data),
                                      sha256=self._digest))
        status = await self._status()
        if status["state"] == "done":
            self._on_progress(len(self._data))
            return None
        return int(status["have"])

    async def _stream(self, have: int) -> int:
        """Send from `have` until the board acknowledges every byte; returns the size."""
        size, next_off = len(self._data), have
        in_flight: deque[int | None] = deque()  # the end offset each sent chunk should reach; None: resent
        while have < size:
            while len(in_flight) < CHUNK_WINDOW and next_off < size:
                end = min(next_off + FILE_CHUNK_SIZE, size)
                await self._session.send(make(FILE_CHUNK, xfer=self._xfer, off=next_off,
                                              data=self._data[next_off:end]))
                in_flight.append(end)
                next_off = end
            reply = await self._reply()
            if reply["t"] == FILE_STATUS:  # the board forgot the transfer (it restarted) or cannot write
                raise _Restart(str(reply.get("error", reply["state"])))
            expected = in_flight.popleft()
            have = int(reply["have"])
            self._on_progress(have)
            if expected is not None and have < expected:  # a chunk was lost: go back to what it holds
                in_flight = deque(None for _ in in_flight)  # those will be ignored: off != have
                next_off = have
        return size

    async def _end(self, sent: int) -> int | None:
        """None when the board verified and switched the file; else the offset to go on from."""
        await self._session.send(make(FILE_END, xfer=self._xfer))
        status = await self._status()
        if status["state"] == "done":
            return None
        return min(int(status["have"]), sent)

    async def _status(self) -> dict[str, Any]:
        """The next file_status (chunk acks still arriving from before are passed over)."""
        while True:
            reply = await self._reply()
            if reply["t"] == FILE_STATUS:
                return self._check_status(reply)

    @staticmethod
    def _check_status(status: dict[str, Any]) -> dict[str, Any]:
        if status["state"] == "failed":
            raise DeployRefused(str(status.get("error", "no reason given")))
        return status

    async def _reply(self) -> dict[str, Any]:
        assert self._replies is not None
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_S):  # not wait_for: on 3.11 it can swallow a cancel
                reply = await self._replies.get()
        except TimeoutError:
            raise TransferStalled(self._board, f"no answer for {REPLY_TIMEOUT_S:.0f} s") from None
        if reply is None:
            raise SessionEnded(self._session.name, "ended during a file transfer")
        return reply


class Deployer:
    """The deploy queue: one worker task per board with open deploys, sending them oldest first
    whenever that board has a connected session."""

    def __init__(self, database: Database, bus: EventBus, data_dir: Path,
                 session_for: Callable[[str], BoardSession]) -> None:
        self._database, self._bus = database, bus
        self._spool = data_dir / SPOOL_DIR
        self._session_for = session_for
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._sending: dict[str, asyncio.Task[bool]] = {}  # deploy id -> the send in progress
        self._wakeups: dict[str, asyncio.Event] = {}
        self._unsubscribe: Unsubscribe | None = None

    def start(self) -> None:
        """Resume every deploy left open by the last run."""
        self._unsubscribe = self._bus.subscribe(BoardOnline, lambda event: self._wake(event.board_id))
        for deploy in store.list_open(self._database):
            self._wake(deploy.board_id)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()

    # ---- submitting

    def submit_file(self, board_id: str, path: str, data: bytes, by: str) -> DeployRecord:
        try:
            relative = safe_relative_path(path)
        except PathRefused as exc:
            raise InvalidBoardInput("path", path, exc.reason) from None
        if not data or len(data) > MAX_FILE_BYTES:
            raise InvalidBoardInput("file", f"<{len(data)} bytes>", f"1 to {MAX_FILE_BYTES} bytes")
        digest = hashlib.sha256(data).hexdigest()
        self._write_spool(digest, data)
        deploy = store.insert(self._database, NewDeploy(board_id, "file", relative, len(data), digest, None, by),
                              time.time())
        logger.info("board deploy queued", extra={"deploy_id": deploy.id, "board_id": board_id, "path": relative,
                                                  "size": len(data)})
        self._wake(board_id)
        return deploy

    def submit_config(self, board_id: str, options: dict[str, Any], by: str) -> DeployRecord:
        if not isinstance(options, dict) or not options:
            raise InvalidBoardInput("options", options, "a non-empty map of agent options")
        try:
            encoded = json.dumps(options, sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidBoardInput("options", options, f"JSON values only ({exc})") from None
        if len(encoded) > MAX_CONFIG_BYTES:
            raise InvalidBoardInput("options", f"<{len(encoded)} bytes>", f"at most {MAX_CONFIG_BYTES} bytes of JSON")
        deploy = store.insert(self._database, NewDeploy(board_id, "config", None, len(encoded),
                                                        hashlib.sha256(encoded).hexdigest(), options, by),
                              time.time())
        logger.info("board config queued", extra={"deploy_id": deploy.id, "board_id": board_id,
                                                  "options": sorted(options)})
        self._wake(board_id)
        return deploy

    def get(self, deploy_id: str) -> DeployRecord:
        deploy = store.get(self._database, deploy_id)
        if deploy is None:
            raise DeployNotFound(deploy_id)
        return deploy

    def list(self, board_id: str, limit: int) -> list[DeployRecord]:
        return store.list_for_board(self._database, board_id, limit)

    def cancel(self, deploy_id: str) -> DeployRecord:
        """Stop a queued or sending deploy; a file the board half holds is never switched in."""
        self.get(deploy_id)  # DeployNotFound for an id never seen
        closed = store.finish(self._database, deploy_id, "cancelled", time.time(), "cancelled by an operator")
        if closed is None:
            raise DeployClosed(deploy_id, self.get(deploy_id).state)
        sending = self._sending.get(deploy_id)
        if sending is not None:
            sending.cancel()  # the worker goes on with the board's next deploy
        self._finished(closed)
        return closed

    # ---- sending

    def _wake(self, board_id: str) -> None:
        self._wakeups.setdefault(board_id, asyncio.Event()).set()
        worker = self._workers.get(board_id)
        if worker is None or worker.done():
            self._workers[board_id] = asyncio.create_task(self._work(board_id), name=f"board-deploy-{board_id}")

    async def _work(self, board_id: str) -> None:
        wakeup = self._wakeups.setdefault(board_id, asyncio.Event())
        while True:
            pending = store.list_open(self._database, board_id)
            if not pending:
                self._workers.pop(board_id, None)
                return
            session = self._connected(board_id)
            if session is None or not await self._send_cancellable(session, pending[0]):
                wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RETRY_IDLE_S):
                        await wakeup.wait()

    def _connected(self, board_id: str) -> BoardSession | None:
        try:
            session = self._session_for(board_id)
        except BoardNotFound:
            return None
        return session if session.state is LinkState.CONNECTED else None

    async def _send_cancellable(self, session: BoardSession, deploy: DeployRecord) -> bool:
        sending = asyncio.create_task(self._send(session, deploy), name=f"board-deploy-{deploy.id}")
        self._sending[deploy.id] = sending
        try:
            return await sending
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the station is stopping
            return True  # cancel() closed the deploy
        finally:
            self._sending.pop(deploy.id, None)

    async def _send(self, session: BoardSession, deploy: DeployRecord) -> bool:
        """Send one deploy; False when it must wait for another session."""
        started = store.start_attempt(self._database, deploy.id, time.time())
        if started is None:
            return True  # cancelled meanwhile
        if started.attempts > MAX_ATTEMPTS:
            self._close(deploy, "failed", f"gave up after {MAX_ATTEMPTS} attempts; last: {deploy.error}")
            return True
        try:
            if deploy.kind == "config":
                await self._send_config(session, started)
            else:
                await self._send_file(session, started)
        except DeployRefused as exc:
            self._close(deploy, "failed", exc.reason)
        except (SessionEnded, CommandTimeout, TransferStalled, BoardLinkError) as exc:
            logger.warning("board deploy interrupted", extra={"deploy_id": deploy.id, "board_id": deploy.board_id,
                                                              "error": str(exc)})
            store.requeue(self._database, deploy.id, str(exc), time.time())
            return False
        except OSError as exc:  # the spooled content is gone or unreadable
            self._close(deploy, "failed", f"spooled content unreadable: {exc}")
        else:
            self._close(deploy, "done", None, started.size)
        return True

    async def _send_config(self, session: BoardSession, deploy: DeployRecord) -> None:
        assert deploy.config is not None
        result = await session.command("write_config", deploy.config, CONFIG_TIMEOUT_S)
        if not result.ok:
            raise DeployRefused(result.error or "write_config refused")

    async def _send_file(self, session: BoardSession, deploy: DeployRecord) -> None:
        assert deploy.path is not None
        data = (self._spool / deploy.sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != deploy.sha256:
            raise DeployRefused("the spooled content no longer matches its digest")  # disk damage
        last_commit = 0.0

        def progress(have: int) -> None:
            nonlocal last_commit
            now = time.monotonic()
            if now - last_commit >= PROGRESS_EVERY_S or have == deploy.size:
                last_commit = now
                store.record_progress(self._database, deploy.id, have, time.time())

        await FileSender(session, transfer_id(deploy.id), deploy.path, data, progress).run()

    def _close(self, deploy: DeployRecord, state: str, error: str | None, sent: int | None = None) -> None:
        closed = store.finish(self._database, deploy.id, state, time.time(), error, sent)
        if closed is not None:
            self._finished(closed)

    def _finished(self, deploy: DeployRecord) -> None:
        level = logging.INFO if deploy.state == "done" else logging.WARNING
        logger.log(level, "board deploy finished", extra={
            "deploy_id": deploy.id, "board_id": deploy.board_id, "state": deploy.state, "error": deploy.error})
        if deploy.kind == "file" and not store.sha256_in_use(self._database, deploy.sha256):
            with contextlib.suppress(FileNotFoundError):
                (self._spool / deploy.sha256).unlink()
        self._bus.publish(BoardDeployFinished(board_id=deploy.board_id, deploy_id=deploy.id, kind=deploy.kind,
                                              path=deploy.path, state=deploy.state, error=deploy.error))

    # ---- the spool

    def _write_spool(self, digest: str, data: bytes) -> None:
        """Write the content under its digest, durably, before the deploy is committed."""
        target = self._spool / digest
        if target.exists():
            return
        self._spool.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
