"""The outbox state machine against a scripted radio (a test double with the link's surface:
state, send). Real SQLite; the radio's answers are fed exactly as the link reports them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2

from station.bus import EventBus
from station.config import OutboxConfig
from station.mesh.link import LinkState, QueueReport
from station.mesh.outbox import Outbox, SendRequest
from station.store import Database, open_database
from station.store import outbox as store

NODE = "!0000abcd"


class ScriptedRadio:
    """Records every packet written; the test decides what the radio answers."""

    def __init__(self, name: str = "r0") -> None:
        self.name = name
        self.state = LinkState.CONNECTED
        self.my_node_num = 0x1234
        self.hop_limit = 3
        self.sent: list[mesh_pb2.MeshPacket] = []

    async def send(self, to_radio: mesh_pb2.ToRadio) -> None:
        self.sent.append(to_radio.packet)


@contextlib.asynccontextmanager
async def running(outbox: Outbox) -> AsyncIterator[None]:
    task = asyncio.create_task(outbox.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def make(tmp_path: Path, **settings: Any) -> tuple[Database, Outbox, ScriptedRadio]:
    database = open_database(tmp_path / "station.db")
    config = OutboxConfig(**{"min_text_interval_s": 0.0, "retry_delay_s": 0.0, **settings})
    radio = ScriptedRadio()
    outbox = Outbox(config, database, EventBus(), [radio.name])
    return database, outbox, radio


def ack(outbox: Outbox, radio: ScriptedRadio, packet: mesh_pb2.MeshPacket, reason: str = "NONE") -> None:
    outbox.routing_received(radio, {"decoded": {"portnum": "ROUTING_APP", "requestId": packet.id,
                                                "routing": {"errorReason": reason}}})  # type: ignore[arg-type]


def status(database: Database, message_id: str) -> dict[str, Any]:
    message = store.get_message(database, message_id)
    assert message is not None
    return message


async def test_acked_message_is_delivered(tmp_path: Path) -> None:
    database, outbox, radio = make(tmp_path)
    [row] = outbox.accept([SendRequest("hi", to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: radio.sent)
        packet = radio.sent[0]
        assert (packet.to, packet.want_ack, packet.decoded.payload) == (0xABCD, True, b"hi")
        ack(outbox, radio, packet)
        await until(lambda: status(database, row["id"])["status"] == "delivered")


async def test_nak_retries_with_a_new_packet_id_then_fails(tmp_path: Path) -> None:
    database, outbox, radio = make(tmp_path, max_attempts=2)
    [row] = outbox.accept([SendRequest("hi", to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: len(radio.sent) == 1)
        ack(outbox, radio, radio.sent[0], "NO_RESPONSE")
        await until(lambda: len(radio.sent) == 2)
        assert radio.sent[1].id != radio.sent[0].id
        ack(outbox, radio, radio.sent[1], "MAX_RETRANSMIT")
        await until(lambda: status(database, row["id"])["status"] == "failed")
    assert status(database, row["id"])["reason"] == "MAX_RETRANSMIT after 2 attempts"


async def test_ack_timeout_counts_as_a_failed_attempt(tmp_path: Path) -> None:
    database, outbox, radio = make(tmp_path, max_attempts=1, ack_timeout_s=0.2)
    [row] = outbox.accept([SendRequest("hi", to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: status(database, row["id"])["status"] == "failed")
    assert "ACK_TIMEOUT" in status(database, row["id"])["reason"]


async def test_never_more_in_flight_than_the_radio_reports_free(tmp_path: Path) -> None:
    _, outbox, radio = make(tmp_path)
    outbox.accept([SendRequest(f"m{i}") for i in range(10)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: len(radio.sent) == 1)  # queue unknown: one packet probes it
        outbox.queue_report(radio, QueueReport(radio.sent[0].id, free=3, maxlen=16, refused=False))  # type: ignore[arg-type]
        await until(lambda: len(radio.sent) == 4)
        await asyncio.sleep(0.2)
        assert len(radio.sent) == 4  # three free slots, three more packets; then it waits
        outbox.queue_report(radio, QueueReport(radio.sent[3].id, free=0, maxlen=16, refused=False))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert len(radio.sent) == 4


async def test_parts_go_in_order_each_after_the_previous_ack(tmp_path: Path) -> None:
    database, outbox, radio = make(tmp_path)
    [row] = outbox.accept([SendRequest("a" * 500, to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        for index in range(3):
            await until(lambda index=index: len(radio.sent) == index + 1)
            await asyncio.sleep(0.05)
            assert len(radio.sent) == index + 1
            assert radio.sent[index].decoded.payload.startswith(f"({index + 1}/3) ".encode())
            ack(outbox, radio, radio.sent[index])
        await until(lambda: status(database, row["id"])["status"] == "delivered")


async def test_text_rate_limit_spaces_sends(tmp_path: Path) -> None:
    _, outbox, radio = make(tmp_path, min_text_interval_s=0.3)
    outbox.accept([SendRequest("one"), SendRequest("two")])
    outbox.link_up(radio)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    async with running(outbox):
        await until(lambda: len(radio.sent) == 1)
        first = loop.time()
        outbox.queue_report(radio, QueueReport(radio.sent[0].id, free=8, maxlen=16, refused=False))  # type: ignore[arg-type]
        await until(lambda: len(radio.sent) == 2)
        assert loop.time() - first >= 0.25


async def test_restart_resends_in_flight_part_with_the_same_packet_id(tmp_path: Path) -> None:
    database, outbox, radio = make(tmp_path)
    [row] = outbox.accept([SendRequest("survive", to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: radio.sent)
    first_id = radio.sent[0].id
    database.close()  # the station dies here, the part was on the air, no ACK recorded

    database = open_database(tmp_path / "station.db")
    again = Outbox(OutboxConfig(min_text_interval_s=0.0), database, EventBus(), [radio.name])
    fresh = ScriptedRadio()
    again.link_up(fresh)  # type: ignore[arg-type]
    async with running(again):
        await until(lambda: fresh.sent)
        assert fresh.sent[0].id == first_id  # the mesh drops it if the first copy got through
        ack(again, fresh, fresh.sent[0])
        await until(lambda: status(database, row["id"])["status"] == "delivered")


async def test_duty_cycle_budget_holds_back_sends(tmp_path: Path) -> None:
    # 0.01 % of an hour is 0.36 s of airtime: one LONG_FAST text, then the budget is spent
    _, outbox, radio = make(tmp_path, duty_cycle_percent=0.01)
    outbox.accept([SendRequest("x" * 100), SendRequest("y" * 100)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: len(radio.sent) == 1)
        outbox.queue_report(radio, QueueReport(radio.sent[0].id, free=8, maxlen=16, refused=False))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        assert len(radio.sent) == 1


@pytest.mark.parametrize("reason", ["DUTY_CYCLE_LIMIT"])
async def test_radio_duty_cycle_nak_does_not_use_up_attempts(tmp_path: Path, reason: str) -> None:
    database, outbox, radio = make(tmp_path, max_attempts=1)
    [row] = outbox.accept([SendRequest("hi", to=NODE, want_ack=True)])
    outbox.link_up(radio)  # type: ignore[arg-type]
    async with running(outbox):
        await until(lambda: radio.sent)
        ack(outbox, radio, radio.sent[0], reason)
        await until(lambda: status(database, row["id"])["parts"][0]["status"] == "pending")
    message = status(database, row["id"])
    assert message["status"] == "sending"
    assert message["parts"][0]["attempts"] == 0
    assert message["parts"][0]["last_error"] == reason
