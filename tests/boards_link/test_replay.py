"""The station session on an in-memory transport, the board played by CPython with the real
BoardHandshake: a replayed sealed frame and a forged one are dropped and counted; a board
that was never enrolled is refused and its link closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.crypto import generate_keypair
from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.enroll_proof import code_key, code_lookup, normalize_code, request_proof, response_proof
from edge_agent.protocol import FrameDecoder, decode_message, encode_frame, encode_message, make
from edge_agent.session import BoardHandshake, Session
from station.boards.events import BoardOnline
from station.boards.service import BoardService
from station.boards.transport import BoardTransport
from station.bus import EventBus
from station.config import BoardLinkConfig
from station.store import open_database
from tests.boards_link.conftest import LINK, WAIT_S, Recorder, eventually


class MemoryTransport(BoardTransport):
    """The station's end of an in-memory cable; the test writes the board's bytes into it."""

    name = "memory"

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.outgoing: asyncio.Queue[bytes] = asyncio.Queue()

    async def read(self) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.outgoing.put_nowait(data)

    def close(self) -> None:
        self.incoming.put_nowait(b"")


class FakeBoard:
    def __init__(self, wire: MemoryTransport) -> None:
        self.wire = wire
        self.decoder = FrameDecoder()
        self.pending: list[bytes] = []

    def send_body(self, body: bytes) -> bytes:
        frame = encode_frame(body)
        self.wire.incoming.put_nowait(frame)
        return frame

    def send(self, msg_type: str, **fields: Any) -> None:
        self.send_body(encode_message(make(msg_type, **fields)))

    async def body(self) -> bytes:
        while not self.pending:
            data = await asyncio.wait_for(self.wire.outgoing.get(), WAIT_S)
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    async def expect(self, msg_type: str, open_: Callable[[bytes], dict[str, Any]] = decode_message) -> dict[str, Any]:
        while True:
            msg = open_(await self.body())
            if msg["t"] == msg_type:
                return msg


async def test_a_replayed_sealed_frame_is_dropped_and_counted(tmp_path: Path) -> None:
    wire = MemoryTransport()

    async def opener(url: str) -> BoardTransport:
        return wire

    database = open_database(tmp_path / "station.db")
    bus = EventBus()
    recorder = Recorder(bus)
    config = LINK.model_copy(update={"links": [BoardLinkConfig(name="mem", url="tcp://127.0.0.1:9")]})
    service = BoardService(config, database, bus, tmp_path / "data", opener)
    await service.start()
    try:
        code = service.create_code(profile="unix-sim")
        seed, public_key = generate_keypair()
        board = FakeBoard(wire)
        board.send("hello", board_id="sim-1", profile="unix-sim", agent_version="test", proto=1, caps=["heartbeat"])
        raw = normalize_code(code.code)
        assert raw is not None
        key = code_key(raw)
        board.send("enroll_request", board_id="sim-1", profile="unix-sim", pubkey=public_key,
                   lookup=code_lookup(raw), proof=request_proof(key, "sim-1", "unix-sim", public_key))
        enrolled = await board.expect("enroll_response")
        assert enrolled["ok"]
        assert enrolled["proof"] == response_proof(key, "sim-1", public_key, enrolled["cert"], enrolled["station_id"],
                                                   enrolled["station_pubkey"])
        challenge = await board.expect("challenge")  # the one sent after enrollment
        handshake = BoardHandshake(SigningKey(seed), "sim-1", enrolled["cert"], enrolled["station_id"],
                                   enrolled["station_pubkey"])
        response, session = handshake.respond(challenge)
        board.send_body(encode_message(response))
        await recorder.wait_for(BoardOnline, board_id="sim-1")

        counters = service._sessions[0].counters
        beat = _sealed_heartbeat(session, 1)
        board.send_body(beat)
        ack = await board.expect("heartbeat_ack", session.open)
        assert ack["seq"] == 1
        board.send_body(beat)  # the same bytes again: authentic, but replayed
        await eventually(lambda: counters.dropped_replay == 1, what="the replay counted")
        forged = bytearray(_sealed_heartbeat(session, 2))
        forged[-1] ^= 1
        board.send_body(bytes(forged))
        await eventually(lambda: counters.dropped_mac == 1, what="the forgery counted")
        board.send_body(_sealed_heartbeat(session, 3))
        ack = await board.expect("heartbeat_ack", session.open)
        assert ack["seq"] == 3  # the live session went on; seq 1 was acknowledged once only
        assert counters.heartbeats == 2
    finally:
        await service.stop()
        database.close()


async def test_an_enroll_request_without_a_proof_of_the_code_is_refused(tmp_path: Path) -> None:
    wire = MemoryTransport()

    async def opener(url: str) -> BoardTransport:
        return wire

    database = open_database(tmp_path / "station.db")
    config = LINK.model_copy(update={"links": [BoardLinkConfig(name="mem", url="tcp://127.0.0.1:9")]})
    service = BoardService(config, database, EventBus(), tmp_path / "data", opener)
    await service.start()
    try:
        raw = normalize_code(service.create_code(profile="unix-sim").code)
        assert raw is not None
        public_key = generate_keypair()[1]
        board = FakeBoard(wire)
        board.send("hello", board_id="sim-1", profile="unix-sim", agent_version="test", proto=1, caps=["heartbeat"])
        # the right lookup, but a proof made for another key: someone replaying a board's request with theirs
        board.send("enroll_request", board_id="sim-1", profile="unix-sim", pubkey=public_key, lookup=code_lookup(raw),
                   proof=request_proof(code_key(raw), "sim-1", "unix-sim", generate_keypair()[1]))
        refused = await board.expect("enroll_response")
        assert (refused["ok"], refused["reason"]) == (False, "bad_proof") and "proof" not in refused
        counters = service._sessions[0].counters
        await eventually(lambda: counters.enrollments_refused == 1, what="the refusal counted")
        failures = service._trust.enrollment.failures._failures
        assert [source for _at, source in failures] == ["tcp://127.0.0.1:9"]  # a wrong guess from that link
    finally:
        await service.stop()
        database.close()


async def test_an_unknown_board_with_a_forged_certificate_is_refused(tmp_path: Path) -> None:
    wire = MemoryTransport()
    opened: list[str] = []

    async def opener(url: str) -> BoardTransport:
        opened.append(url)
        return wire

    database = open_database(tmp_path / "station.db")
    bus = EventBus()
    config = LINK.model_copy(update={"links": [BoardLinkConfig(name="mem", url="tcp://127.0.0.1:9")]})
    service = BoardService(config, database, bus, tmp_path / "data", opener)
    await service.start()
    try:
        seed, _public_key = generate_keypair()
        board = FakeBoard(wire)
        board.send("hello", board_id="intruder", profile="unix-sim", agent_version="test", proto=1, caps=[])
        challenge = await board.expect("challenge")
        station_pubkey = service.trust.ca.station_public_key
        handshake = BoardHandshake(SigningKey(seed), "intruder", b"forged-cert", service.trust.station_id,
                                   station_pubkey)
        response, _session = handshake.respond(challenge)  # the station's signature verifies for the board
        board.send_body(encode_message(response))
        refusal = await board.expect("error")
        assert refusal["code"] == "auth_refused"
        session = service._sessions[0]
        assert session.counters.auth_refused == 1
        await eventually(lambda: len(opened) >= 2, what="the link closed and reopened")
        assert session.status()["state"] != "connected"
    finally:
        await service.stop()
        database.close()


def _sealed_heartbeat(session: Session, seq: int) -> bytes:
    return session.seal(make("heartbeat", seq=seq, uptime_s=seq, free_mem=1000, counters={}))
