"""Config and file deploys to real MicroPython agents: queued while a board is away, sent over
its authenticated session, resumed from what the board's flash holds after a kill -9, verified
and switched in atomically, refused with the board's reason, cancelled."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.protocol import FILE_BEGIN, FILE_CHUNK
from station.boards import InvalidBoardInput
from station.boards.errors import BoardNotFound, DeployClosed
from station.boards.events import BoardDeployFinished, BoardOffline
from station.boards.service import BoardService
from station.bus import EventBus
from tests.boards_link.conftest import WAIT_S, LinkBoard, Opener, Recorder, Station, enrolled, eventually

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]


def _on_board(board: LinkBoard, path: str) -> Path:
    return board.state_dir / "files" / path


class SentLog:
    """Every sealed message the station sends, as (type, fields): wraps the session's send."""

    def __init__(self, station: Station) -> None:
        self.sent: list[dict[str, Any]] = []
        session = station.session
        original = session.send

        async def send(msg: dict[str, Any]) -> None:
            self.sent.append(msg)
            await original(msg)

        session.send = send  # type: ignore[method-assign]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [msg for msg in self.sent if msg["t"] == kind]


async def test_file_deploy_lands_verified_and_reports_progress(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    data = os.urandom(20_000)  # six chunks
    deploy = station.service.deploy_file(board_id, "app/main.py", data, by="test")
    assert deploy.state in ("queued", "sending") and deploy.size == len(data)

    finished = await station.recorder.wait_for(BoardDeployFinished, deploy_id=deploy.id)
    assert finished.state == "done" and finished.error is None
    assert _on_board(board, "app/main.py").read_bytes() == data
    record = station.service.deploys.get(deploy.id)
    assert record.state == "done" and record.sent == len(data) and record.attempts == 1
    assert not any((station.service.deploys._spool).iterdir())  # spooled content released

    again = station.service.deploy_file(board_id, "app/main.py", data, by="test")  # already there
    sent = SentLog(station)
    assert (await station.recorder.wait_for(BoardDeployFinished, deploy_id=again.id)).state == "done"
    assert sent.of(FILE_CHUNK) == []  # the board said it holds exactly this file


async def test_board_killed_mid_transfer_resumes_from_its_flash(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    data = os.urandom(900_000)
    sent = SentLog(station)
    spool = Path(board.storage.spool_dir)
    deploy = station.service.deploy_file(board_id, "fw/update.bin", data, by="test")

    def partial() -> int:
        parts = list(spool.glob("*.part")) if spool.exists() else []
        return parts[0].stat().st_size if parts else 0

    await eventually(lambda: partial() >= 100_000, what="a tenth of the file on the board's flash")
    mark = station.recorder.mark()
    board.kill9()
    held = partial()
    assert 0 < held < len(data)
    await station.recorder.wait_for(BoardOffline, after=mark, board_id=board_id)
    assert station.service.deploys.get(deploy.id).state == "queued"  # waits for the board

    await station.wait_opened(2)  # the station holds the link again before the board says hello
    board.boot()
    finished = await station.recorder.wait_for(BoardDeployFinished, timeout=2 * WAIT_S, deploy_id=deploy.id)
    assert finished.state == "done"
    assert hashlib.sha256(_on_board(board, "fw/update.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    begins = [i for i, msg in enumerate(sent.sent) if msg["t"] == FILE_BEGIN]
    assert len(begins) == 2
    resumed_at = next(msg["off"] for msg in sent.sent[begins[1]:] if msg["t"] == FILE_CHUNK)
    assert resumed_at >= held - 2 * 3840  # from what the flash held, not from zero
    resent = sum(len(msg["data"]) for msg in sent.of(FILE_CHUNK)) - len(data)
    assert resent < len(data) - held + 4 * 3840
    assert station.service.deploys.get(deploy.id).attempts == 2


async def test_config_deploy_waits_for_an_offline_board_then_applies(
        make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    mark = station.recorder.mark()
    board.kill9()
    await station.recorder.wait_for(BoardOffline, after=mark, board_id=board_id)

    deploy = station.service.deploy_config(board_id, {"telemetry_s": 7.0}, by="test")
    cancelled = station.service.deploy_config(board_id, {"telemetry_s": 9.0}, by="test")
    assert station.service.deploys.cancel(cancelled.id).state == "cancelled"
    with pytest.raises(DeployClosed):
        station.service.deploys.cancel(cancelled.id)
    assert station.service.deploys.get(deploy.id).state == "queued"

    await station.wait_opened(2)
    board.boot()
    finished = await station.recorder.wait_for(BoardDeployFinished, deploy_id=deploy.id)
    assert finished.state == "done"
    assert board.storage.load_config()["telemetry_s"] == 7.0  # persisted on the board
    result = await station.service.command(board_id, "read_config", timeout_s=5.0)
    assert result.ok and result.value["telemetry_s"] == 7.0


async def test_refusals_are_clear_and_lose_nothing(make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    with pytest.raises(InvalidBoardInput, match="path"):
        station.service.deploy_file(board_id, "../escape.py", b"x", by="test")
    with pytest.raises(InvalidBoardInput, match="options"):
        station.service.deploy_config(board_id, {}, by="test")
    with pytest.raises(BoardNotFound):
        station.service.deploy_file("no-such-board", "a.py", b"x", by="test")

    too_big = station.service.deploy_file(board_id, "big.bin", bytes(1 << 20 | 1), by="test")  # the sim: 1 MiB
    refused = await station.recorder.wait_for(BoardDeployFinished, deploy_id=too_big.id)
    assert refused.state == "failed" and "exceeds" in (refused.error or "")
    assert not _on_board(board, "big.bin").exists()
    bad_option = station.service.deploy_config(board_id, {"heartbeat_s": "often"}, by="test")
    refused = await station.recorder.wait_for(BoardDeployFinished, deploy_id=bad_option.id)
    assert refused.state == "failed" and "heartbeat_s" in (refused.error or "")

    good = station.service.deploy_file(board_id, "ok.txt", b"fine", by="test")  # the queue goes on
    assert (await station.recorder.wait_for(BoardDeployFinished, deploy_id=good.id)).state == "done"
    assert _on_board(board, "ok.txt").read_bytes() == b"fine"


async def test_a_queued_deploy_survives_a_station_restart(make_board: MakeBoard, make_station: MakeStation,
                                                          tmp_path: Path) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    mark = station.recorder.mark()
    board.kill9()
    await station.recorder.wait_for(BoardOffline, after=mark, board_id=board_id)
    data = os.urandom(50_000)
    deploy = station.service.deploy_file(board_id, "apps/queued.bin", data, by="test")
    await station.service.stop()  # the station goes down with the deploy still queued

    bus = EventBus()
    recorder = Recorder(bus)
    opener = Opener()
    restarted = BoardService(station.service._config, station.database, bus, tmp_path / "data", opener)
    await restarted.start()
    try:
        await eventually(lambda: len(opener.opened) >= 1, what="the link opened again")
        board.boot()
        finished = await recorder.wait_for(BoardDeployFinished, deploy_id=deploy.id)
        assert finished.state == "done"
        assert _on_board(board, "apps/queued.bin").read_bytes() == data
        assert restarted.deploys.get(deploy.id).attempts == 1
    finally:
        await restarted.stop()
