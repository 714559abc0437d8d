"""The agent's main loop on CPython, in-process, over a socketpair: the same code the
boards run. Hello, enrollment (accepted, refused), heartbeats, commands, the session
codec hook, the watchdog (with an injected reset) and TCP reconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import _port, config
from edge_agent.agent.link import SessionCodec
from edge_agent.agent.profile import Profile
from edge_agent.agent.runtime import Agent
from edge_agent.agent.storage import Storage
from edge_agent.agent.transport import FdTransport, open_tcp
from edge_agent.protocol import FrameDecoder, decode_message, encode_frame, encode_message, make
from tests.edge_agent_runtime.board import CODE, enroll_response

STEP_S = 5.0  # any single expected message
KEY = bytes(range(32))
PROFILE = Profile({"name": "cpython-sim", "link": {"transport": "stdio"}, "flash": {"files_root": "files"},
                   "agent": {"heartbeat_s": 0.1, "telemetry_s": 0.2, "watchdog_s": 2.0, "enroll_timeout_s": 1.0,
                             "sensors": ["temperature", "battery"]},
                   "handlers": {"stall": "edge_agent.agent.handlers:stall", "echo": "edge_agent.agent.handlers:echo"}})


class Station:
    """The station's end of a stream: send messages, wait for a type."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.pending: list[dict[str, Any]] = []

    async def send(self, msg_type: str, **fields: Any) -> None:
        self.writer.write(encode_frame(encode_message(make(msg_type, **fields))))
        await self.writer.drain()

    async def expect(self, msg_type: str) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                while self.pending:
                    msg = self.pending.pop(0)
                    if msg["t"] == msg_type:
                        return msg
                data = await self.reader.read(4096)
                assert data, f"link closed while waiting for {msg_type}"
                self.pending += [decode_message(body) for body in self.decoder.feed(data)]

        return await asyncio.wait_for(find(), STEP_S)


class Harness:
    def __init__(self, tmp_path: Path, **agent_kwargs: Any) -> None:
        self.storage = Storage(str(tmp_path / "state"))
        self.storage.ensure()
        self.storage.save_config({"enroll_token": CODE})
        self.resets: list[int] = []
        self.reset_seen = asyncio.Event()
        self.board_sock, station_sock = socket.socketpair()
        self.station_sock = station_sock
        options = config.merge(PROFILE.agent, self.storage.load_config())

        async def connect() -> FdTransport:
            return FdTransport(self.board_sock.fileno(), self.board_sock.fileno())

        def reset(code: int) -> None:
            self.resets.append(code)
            self.reset_seen.set()

        # No guard thread: it ends the whole process, here the test runner.
        self.agent = Agent(PROFILE, self.storage, options, connect, reset=reset, process_guard=False, **agent_kwargs)

    async def start(self) -> Station:
        self.task = asyncio.create_task(self.agent.run())
        reader, writer = await asyncio.open_connection(sock=self.station_sock)
        return Station(reader, writer)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.board_sock.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    made = Harness(tmp_path)
    yield made
    await made.stop()


async def enroll(station: Station) -> dict[str, Any]:
    hello = await station.expect("hello")
    request = await station.expect("enroll_request")
    await station.send("enroll_response", **enroll_response(request, cert=b"cert", station_id="st", station_pubkey=KEY))
    return hello


async def test_hello_enrollment_heartbeats_telemetry_and_commands(harness: Harness) -> None:
    station = await harness.start()
    hello = await enroll(station)
    assert hello["profile"] == "cpython-sim" and hello["board_id"].startswith("cpython-sim-")
    beat = await station.expect("heartbeat")
    assert beat["free_mem"] == _port.CPYTHON_FREE_MEM_STANDIN and "battery_mv" in beat
    assert set((await station.expect("telemetry"))["values"]) == {"temperature", "battery"}
    await station.send("heartbeat_ack", seq=beat["seq"], time_s=1_800_000_000)
    await station.send("command", id=1, cmd="run", args={"name": "echo", "args": {"k": "v"}})
    assert (await station.expect("result"))["value"] == {"k": "v"}
    assert (await station.expect("telemetry"))["ts"] >= 1_800_000_000  # the station's clock, once acked
    assert harness.storage.is_enrolled()
    assert (await station.expect("heartbeat"))["counters"]["acks"] == 1


async def test_a_refused_enrollment_is_logged_and_retried_next_connection(harness: Harness) -> None:
    station = await harness.start()
    await station.expect("hello")
    await station.expect("enroll_request")
    await station.send("enroll_response", ok=False, reason="unknown token")
    log = await station.expect("log")
    assert log["level"] == "warning" and "unknown token" in log["msg"]
    await station.expect("heartbeat")  # served unenrolled until sessions require enrollment
    assert not harness.storage.is_enrolled()


async def test_the_agent_stops_when_a_stdio_link_ends(harness: Harness) -> None:
    station = await harness.start()
    await enroll(station)
    station.writer.close()
    assert await asyncio.wait_for(harness.task, STEP_S) == 0


async def test_watchdog_resets_a_blocked_loop(harness: Harness) -> None:
    station = await harness.start()
    await enroll(station)
    await station.expect("heartbeat")
    await station.send("command", id=1, cmd="run", args={"name": "stall", "args": {"ms": 2600}})
    await asyncio.wait_for(harness.reset_seen.wait(), STEP_S)
    assert harness.resets[0] == _port.EXIT_WATCHDOG


async def test_reboot_resets_after_the_result(harness: Harness) -> None:
    station = await harness.start()
    await enroll(station)
    await station.send("command", id=5, cmd="reboot")
    assert (await station.expect("result"))["ok"]
    await asyncio.wait_for(harness.reset_seen.wait(), STEP_S)
    assert harness.resets[0] == _port.EXIT_REBOOT  # a loaded runner may add watchdog resets later


class CountingSession:
    """Stands in for edge_agent/session.py: the codec hook must route every message through it."""

    def __init__(self) -> None:
        self.sealed: list[str] = []
        self.opened = 0

    def seal(self, msg: dict[str, Any]) -> bytes:
        self.sealed.append(msg["t"])
        return encode_message(msg)

    def open(self, body: bytes) -> dict[str, Any]:
        self.opened += 1
        return decode_message(body)


async def test_the_session_codec_wraps_everything_after_authentication(tmp_path: Path) -> None:
    session = CountingSession()

    async def authenticate(link: Any, identity: Any) -> SessionCodec:
        return SessionCodec(session)

    harness = Harness(tmp_path, authenticate=authenticate)
    try:
        station = await harness.start()
        await enroll(station)
        await station.expect("heartbeat")
        await station.send("command", id=1, cmd="read_config")
        await station.expect("result")
        assert "hello" not in session.sealed and "enroll_request" not in session.sealed
        assert "heartbeat" in session.sealed and "result" in session.sealed and session.opened == 1
    finally:
        await harness.stop()


async def test_tcp_reconnects_with_backoff(tmp_path: Path) -> None:
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connections.put((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    storage = Storage(str(tmp_path / "state"))
    storage.ensure()
    storage.save_enrollment(b"cert", KEY)
    agent = Agent(PROFILE, storage, config.merge(PROFILE.agent, {}), lambda: open_tcp("127.0.0.1", port),
                  reset=lambda code: None, process_guard=False)
    task = asyncio.create_task(agent.run())
    try:
        first = Station(*await asyncio.wait_for(connections.get(), STEP_S))
        await first.expect("hello")
        first.writer.close()
        second = Station(*await asyncio.wait_for(connections.get(), STEP_S))
        await second.expect("hello")
        assert (await second.expect("heartbeat"))["counters"]["reconnects"] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()
