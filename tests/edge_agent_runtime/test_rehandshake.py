"""The agent inside an authenticated session (CPython, in-process, real handshake crypto)
answering a hello_request: it keeps its session, ignores a challenge it did not ask for or
that another key signed, and moves to a new session only after answering our station's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge_agent.agent.authenticate import make_authenticate
from edge_agent.agent.link import REHELLO_MIN_INTERVAL_S
from edge_agent.agent.storage import Identity, Storage
from edge_agent.crypto import generate_keypair
from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.protocol import FrameDecoder, decode_message, encode_frame, encode_message
from edge_agent.session import BadMac, Session, StationHandshake
from tests.edge_agent_runtime.test_runtime import STEP_S, Harness

STATION_ID = "st-1"
BOARD_ID = "cpython-sim-0001"


class SealedStation:
    """The station's end: plain and sealed sends, and the next body of a wanted type."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.bodies: list[bytes] = []

    async def send(self, msg: dict[str, Any], session: Session | None = None) -> None:
        body = encode_message(msg) if session is None else session.seal(msg)
        self.writer.write(encode_frame(body))
        await self.writer.drain()

    async def next_body(self) -> bytes:
        async def read() -> bytes:
            while not self.bodies:
                data = await self.reader.read(4096)
                assert data, "the agent closed the link"
                self.bodies += self.decoder.feed(data)
            return self.bodies.pop(0)

        return await asyncio.wait_for(read(), STEP_S)

    async def plain(self, msg_type: str) -> dict[str, Any]:
        while True:
            msg = decode_message(await self.next_body())
            if msg["t"] == msg_type and "mac" not in msg:
                return msg

    async def sealed(self, session: Session, msg_type: str) -> dict[str, Any]:
        """The next message of `msg_type` that opens under `session` (others are skipped)."""
        while True:
            try:
                msg = session.open(await self.next_body())
            except BadMac:
                continue
            if msg["t"] == msg_type:
                return msg


async def handshake(station: SealedStation, key: SigningKey, board_key: bytes) -> Session:
    shake = StationHandshake(key, STATION_ID, BOARD_ID, lambda board_id, cert: board_key)
    await station.send(shake.challenge())
    return shake.finish(await station.plain("challenge_response"))


async def test_a_hello_request_inside_a_session_keeps_it_until_our_station_signs_a_new_one(tmp_path: Path) -> None:
    station_key = SigningKey(generate_keypair()[0])
    seed, board_key = generate_keypair()
    storage = Storage(str(tmp_path / "state"))
    storage.ensure()
    storage.save_identity(Identity(BOARD_ID, seed))
    storage.save_enrollment(b"cert", station_key.public_key, STATION_ID)
    harness = Harness(tmp_path, authenticate=make_authenticate(storage))
    try:
        plain_station = await harness.start()
        station = SealedStation(plain_station.reader, plain_station.writer)
        await station.plain("hello")
        hello_at = asyncio.get_running_loop().time()
        first = await handshake(station, station_key, board_key)
        await station.sealed(first, "heartbeat")

        shake = StationHandshake(station_key, STATION_ID, BOARD_ID, lambda board_id, cert: board_key)
        await station.send(shake.challenge())  # unasked: the session goes on
        await asyncio.sleep(max(0.0, hello_at + REHELLO_MIN_INTERVAL_S + 0.1 - asyncio.get_running_loop().time()))
        await station.send({"v": 1, "t": "hello_request"})
        await station.plain("hello")
        await station.sealed(first, "heartbeat")

        intruder = SigningKey(generate_keypair()[0])
        forged = StationHandshake(intruder, STATION_ID, BOARD_ID, lambda board_id, cert: board_key)
        await station.send(forged.challenge())  # not our station's signature: the session goes on
        await station.sealed(first, "heartbeat")

        second = await handshake(station, station_key, board_key)
        log = await station.sealed(second, "log")
        assert log["msg"] == "session renewed at the station's request"
        await station.sealed(second, "heartbeat")
        assert harness.agent.counters()["ignored"] >= 1  # the unasked challenge
    finally:
        await harness.stop()
