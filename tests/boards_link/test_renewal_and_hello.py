"""Certificate renewal over the link and the station's hello_request, against real MicroPython
agents on ptys: a board whose certificate is due gets a new one (cert_update) and presents it
on its next connection; a board not due gets none; a station that opens the port after the
board's hello, or that restarts while the board is in its session, still gets it connected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from edge_agent.agent.enrollment import board_id_for
from edge_agent.agent.storage import Identity
from edge_agent.crypto import generate_keypair
from edge_agent.protocol import FrameDecoder, decode_message
from station.boards.enrollment import Enrollment
from station.boards.events import BoardCertificateRenewed, BoardOnline
from station.boards.registry import RENEW_WHEN_LEFT_FRACTION
from station.boards.service import BoardService
from station.boards.session import HELLO_REQUEST_GRACE_S, HELLO_REQUEST_INTERVAL_S
from station.bus import EventBus
from station.config import BoardLinkConfig
from station.store import Database, open_database
from tests.boards_link.conftest import LINK, WAIT_S, LinkBoard, Opener, Recorder, Station, enrolled, eventually

pytestmark = pytest.mark.integration

MakeBoard = Callable[..., LinkBoard]
MakeStation = Callable[..., Awaitable[Station]]
VALID_DAYS = 365
DUE_AFTER_DAYS = 300  # 65 of 365 days left: under the fifth (73 days) that triggers a renewal
assert (VALID_DAYS - DUE_AFTER_DAYS) < VALID_DAYS * RENEW_WHEN_LEFT_FRACTION
# Hello, the request after the grace (ignored when it comes within 2 s of that hello), the
# next one, and the handshake: well inside the agent's 10 s wait for a challenge.
CONNECT_AFTER_LATE_OPEN_S = HELLO_REQUEST_GRACE_S + 2 * HELLO_REQUEST_INTERVAL_S


@pytest.fixture
def database(tmp_path: Path) -> AsyncIterator[Database]:
    opened = open_database(tmp_path / "station.db")
    yield opened
    opened.close()


@contextlib.asynccontextmanager
async def running_station(tmp_path: Path, database: Database, url: str) -> AsyncIterator[Station]:
    """A boards service on `database` and the CA in tmp_path/data; one per station process life:
    a second one on the same database is the same station restarted."""
    bus = EventBus()
    config = LINK.model_copy(update={"links": [BoardLinkConfig(name="b0", url=url)]})
    opener = Opener()
    service = BoardService(config, database, bus, tmp_path / "data", opener)
    station = Station(service, Recorder(bus), opener, database)
    await service.start()
    try:
        yield station
    finally:
        await asyncio.wait_for(service.stop(), WAIT_S)


def enroll_offline(station: Station, board: LinkBoard, issued_days_ago: float) -> str:
    """Enroll the board with a certificate issued `issued_days_ago` (the station's enrollment, on
    a clock set back), and store what enroll_response would have given it."""
    trust = station.service.trust
    issued_at = time.time() - issued_days_ago * 86400
    enrollment = Enrollment(station.database, EventBus(), trust.ca, VALID_DAYS, clock=lambda: issued_at)
    seed, public_key = generate_keypair()
    identity = Identity(board_id_for("unix-sim", public_key), seed)
    board.storage.save_identity(identity)
    code = enrollment.create_code(profile="unix-sim")
    cert = enrollment.redeem(code.code, identity.board_id, public_key, "unix-sim")
    board.storage.save_enrollment(cert, trust.ca.station_public_key, trust.station_id)
    return identity.board_id


def read_hello(board: LinkBoard, timeout: float = WAIT_S) -> None:
    """Read the station's end of the pty until the agent's hello has gone by: lost to the station."""
    decoder = FrameDecoder()
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([board.slave], [], [], remaining)[0]:
            continue
        for body in decoder.feed(os.read(board.slave, 4096)):
            if decode_message(body)["t"] == "hello":
                return
    raise AssertionError(f"no hello within {timeout} s; agent stderr:\n{board.stderr()}")


async def heartbeats_after(station: Station, count: int) -> None:
    seen = station.session.counters.heartbeats
    await eventually(lambda: station.session.counters.heartbeats >= seen + count, what=f"{count} heartbeats")


async def test_a_due_certificate_is_renewed_over_the_link_and_presented_next_time(
        make_board: MakeBoard, tmp_path: Path, database: Database) -> None:
    board = make_board()
    async with running_station(tmp_path, database, board.url) as station:
        board_id = enroll_offline(station, board, DUE_AFTER_DAYS)
        registry, ca = station.service.trust.registry, station.service.trust.ca
        old_cert, old_serial = board.storage.load_cert(), registry.get(board_id).cert_serial
        station_key, station_id = board.storage.load_station_pubkey(), board.storage.load_station_id()
        await station.wait_opened()
        board.boot()
        await station.recorder.wait_for(BoardOnline, board_id=board_id)
        renewed = await station.recorder.wait_for(BoardCertificateRenewed, board_id=board_id)
        await eventually(lambda: board.storage.load_cert() != old_cert, what="the renewed certificate stored")
        await eventually(lambda: "certificate renewed" in board.stderr(), what="the agent's log of it")

        new_cert = board.storage.load_cert()
        assert new_cert is not None
        record = registry.get(board_id)
        assert record.cert_serial == renewed.cert_serial != old_serial
        assert ca.verify(new_cert, time.time()).serial == record.cert_serial
        assert not registry.needs_renewal(record)
        assert (board.storage.load_station_pubkey(), board.storage.load_station_id()) == (station_key, station_id)
        assert [cert["reason"] for cert in registry.certificates(board_id)][-1] == "renew"

        mark = station.recorder.mark()
        board.kill9()
        board.boot()  # the next connection: a new handshake, presenting what the board stored
        await station.recorder.wait_for(BoardOnline, after=mark, board_id=board_id)
        await heartbeats_after(station, 2)
        assert station.session.counters.auth_refused == 0
        # The old certificate would still be due, and renewed again: only one renewal happened.
        assert not [event for event in station.recorder.events[mark:] if isinstance(event, BoardCertificateRenewed)]
        assert len(registry.certificates(board_id)) == 2
        assert board.storage.load_cert() == new_cert


async def test_a_certificate_not_due_is_not_renewed(make_board: MakeBoard, make_station: MakeStation) -> None:
    board, station, board_id = await enrolled(make_board, make_station)
    cert = board.storage.load_cert()

    mark = station.recorder.mark()
    board.kill9()
    board.boot()  # a handshake that presents the fresh certificate
    await station.recorder.wait_for(BoardOnline, after=mark, board_id=board_id)
    await heartbeats_after(station, 3)
    assert not [event for event in station.recorder.events if isinstance(event, BoardCertificateRenewed)]
    assert len(station.service.trust.registry.certificates(board_id)) == 1
    assert board.storage.load_cert() == cert
    assert "certificate renewed" not in board.stderr()


async def test_a_station_that_opens_the_port_after_the_hello_asks_for_it(
        make_board: MakeBoard, tmp_path: Path, database: Database) -> None:
    board = make_board()
    async with running_station(tmp_path, database, board.url) as station:
        board_id = enroll_offline(station, board, 0)
    board.boot()
    read_hello(board)  # sent before any station held the port: lost
    async with running_station(tmp_path, database, board.url) as station:
        await station.wait_opened()
        opened = time.monotonic()
        await station.recorder.wait_for(BoardOnline, board_id=board_id, timeout=CONNECT_AFTER_LATE_OPEN_S)
        assert time.monotonic() - opened <= CONNECT_AFTER_LATE_OPEN_S
        assert station.session.counters.auth_refused == 0 and board.starts == 1
        await heartbeats_after(station, 2)
        assert "asked for our hello" in board.stderr()


async def test_a_restarted_station_gets_a_new_session_from_a_board_still_in_its_old_one(
        make_board: MakeBoard, tmp_path: Path, database: Database) -> None:
    board = make_board()
    async with running_station(tmp_path, database, board.url) as station:
        board_id = enroll_offline(station, board, 0)
        await station.wait_opened()
        board.boot()
        await station.recorder.wait_for(BoardOnline, board_id=board_id)
        await heartbeats_after(station, 2)
        assert board.process is not None
        # Paused while the station stops: BoardSession._connected's asyncio.wait_for (Python 3.11)
        # loses a cancellation that lands as a frame arrives, and the stop would hang.
        os.kill(board.process.pid, signal.SIGSTOP)
    try:
        async with running_station(tmp_path, database, board.url) as station:  # no kept session to resume
            await station.wait_opened()
            os.kill(board.process.pid, signal.SIGCONT)
            await station.recorder.wait_for(BoardOnline, board_id=board_id, timeout=CONNECT_AFTER_LATE_OPEN_S)
            await heartbeats_after(station, 2)
            result = await station.service.command(board_id, "read_sensor", {"name": "battery"}, timeout_s=5.0)
            assert result.ok
            assert station.session.counters.auth_refused == 0
            assert board.process.poll() is None and board.starts == 1
            assert "the session stays until a signed challenge" in board.stderr()
            await eventually(lambda: "session renewed at the station's request" in board.stderr(),
                             what="the agent's log of the new session")
    finally:
        os.kill(board.process.pid, signal.SIGCONT)
