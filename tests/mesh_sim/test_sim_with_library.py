"""The unmodified `meshtastic` library against the simulator running as a real process."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2
from meshtastic.serial_interface import SerialInterface
from meshtastic.tcp_interface import TCPInterface
from pubsub import pub

from tests.mesh_sim.conftest import StartSim

pytestmark = pytest.mark.integration

WAIT_S = 15.0  # upper bound for any single event; they normally take well under a second
QUIET = (  # no periodic traffic: only what the test asks for
    "--chatter", "0", "--position-interval", "0", "--telemetry-interval", "0",
    "--nodeinfo-interval", "0",
)  # fmt: skip


class Collector:
    """Packets the library hands out, via response callback or pubsub, with a wait."""

    def __init__(self) -> None:
        self.packets: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.interface: Any = None

    def onAckNak(self, packet: dict[str, Any]) -> None:  # the library only passes ACKs to this name
        with self._changed:
            self.packets.append(packet)
            self._changed.notify_all()

    def on_receive(self, packet: dict[str, Any], interface: Any) -> None:
        if self.interface is None or interface is self.interface:
            self.onAckNak(packet)

    def wait_for(self, what: str, predicate: Any, count: int = 1) -> list[dict[str, Any]]:
        with self._changed:
            found = self._changed.wait_for(
                lambda: len([p for p in self.packets if predicate(p)]) >= count, WAIT_S
            )
            assert found, f"timed out waiting for {what}; got {len(self.packets)} packets"
            return [p for p in self.packets if predicate(p)]


@contextmanager
def tcp_interface(port: int) -> Iterator[Any]:
    iface = TCPInterface(hostname="127.0.0.1", portNumber=port, timeout=10)
    try:
        yield iface
    finally:
        iface.close()


@contextmanager
def subscribed(collector: Collector) -> Iterator[Collector]:
    pub.subscribe(collector.on_receive, "meshtastic.receive")  # pubsub holds weak references
    try:
        yield collector
    finally:
        pub.unsubscribe(collector.on_receive, "meshtastic.receive")


def _routing(packet: dict[str, Any]) -> str:
    return str(packet["decoded"]["routing"].get("errorReason", "NONE"))


def _answers(request_id: int) -> Any:
    return lambda p: p.get("decoded", {}).get("requestId") == request_id


def test_library_connects_over_tcp_and_sees_every_node(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "8", *QUIET)
    with tcp_interface(sim.port) as iface:
        assert iface.myInfo.my_node_num == sim.node_num
        assert len(iface.nodes) == 9
        first = iface.nodes[sim.node(0)["id"]]
        assert first["user"]["longName"] == sim.node(0)["long_name"]
        assert first["user"]["shortName"] == sim.node(0)["short_name"]
        assert "latitude" in first["position"] and "longitude" in first["position"]
        assert first["deviceMetrics"]["batteryLevel"] > 0
        assert iface.localNode.localConfig.lora.hop_limit == 3
        assert iface.localNode.channels[0].settings.name == "LongFast"
        assert iface.localNode.channels[0].role == 1  # PRIMARY


def test_text_is_acked_by_its_destination_and_delivered_once(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "3", "--preset", "SHORT_FAST", *QUIET)
    dest = sim.node(0)
    collector = Collector()
    with tcp_interface(sim.port) as iface:
        sent = iface.sendText("hi", destinationId=dest["id"], wantAck=True, onResponse=collector.onAckNak)
        (ack,) = collector.wait_for("the ACK", _answers(sent.id))
    assert _routing(ack) == "NONE"
    assert ack["from"] == dest["num"]
    assert ack["to"] == sim.node_num
    records = [r for r in sim.delivered() if r["id"] == sent.id]
    assert len(records) == 1
    assert records[0] | {"t": 0} == {
        "id": sent.id, "from": sim.node_num, "to": dest["num"], "channel": 0,
        "portnum": "TEXT_MESSAGE_APP", "text": "hi", "want_ack": True, "t": 0,
    }  # fmt: skip


def test_packet_resent_with_the_same_id_is_acked_again_but_delivered_once(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "2", "--no-airtime", *QUIET)
    dest = sim.node(1)
    packet_id = random.randrange(1, 2**31)
    collector = Collector()
    with subscribed(collector), tcp_interface(sim.port) as iface:
        collector.interface = iface
        for attempt in (1, 2):  # what the station does after a crash: same packet, same id
            packet = mesh_pb2.MeshPacket(id=packet_id, channel=0)
            packet.decoded.portnum = portnums_pb2.PortNum.TEXT_MESSAGE_APP
            packet.decoded.payload = b"exactly once"
            iface._sendPacket(packet, destinationId=dest["num"], wantAck=True)
            acks = collector.wait_for(f"ACK {attempt}", _answers(packet_id), count=attempt)
    assert [_routing(a) for a in acks] == ["NONE", "NONE"]
    assert [r["text"] for r in sim.delivered() if r["id"] == packet_id] == ["exactly once"]


def test_texts_and_positions_from_nodes_reach_the_library(start_sim: StartSim, tmp_path: Path) -> None:
    script = tmp_path / "scenario.toml"
    script.write_text(
        '[[step]]\nat = 0.5\nnode = 1\ntext = "hello station"\nto = "local"\n'
        "[[step]]\nat = 0.5\nnode = 2\nposition = [46.5601, 6.7833]\n"
    )
    sim = start_sim("--nodes", "3", "--no-airtime", "--script", str(script), *QUIET)
    collector = Collector()
    with subscribed(collector), tcp_interface(sim.port) as iface:
        collector.interface = iface
        (text,) = collector.wait_for("the text", lambda p: p["decoded"]["portnum"] == "TEXT_MESSAGE_APP")
        (position,) = collector.wait_for("the position", lambda p: p["decoded"]["portnum"] == "POSITION_APP")
    assert text["decoded"]["text"] == "hello station"
    assert (text["from"], text["to"]) == (sim.node(1)["num"], sim.node_num)
    assert text["hopStart"] - text.get("hopLimit", 0) == sim.node(1)["hops"]
    assert text["rxTime"] > 0
    assert position["from"] == sim.node(2)["num"]
    assert position["decoded"]["position"]["latitudeI"] == 465601000
    assert position["decoded"]["position"]["longitudeI"] == 67833000


def test_exhausted_duty_cycle_gives_a_duty_cycle_nak(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "2", "--duty-cycle", "0.001", *QUIET)  # 36 ms of airtime an hour
    collector = Collector()
    with tcp_interface(sim.port) as iface:
        sent = iface.sendText("too much talk", destinationId=sim.node(0)["id"], wantAck=True,
                              onResponse=collector.onAckNak)  # fmt: skip
        (nak,) = collector.wait_for("the NAK", _answers(sent.id))
    assert _routing(nak) == "DUTY_CYCLE_LIMIT"
    assert nak["from"] == sim.node_num
    assert sim.delivered() == []


def test_lost_link_gives_max_retransmit_and_delivers_nothing(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "2", "--no-airtime", "--loss", "1.0", *QUIET)
    collector = Collector()
    with tcp_interface(sim.port) as iface:
        sent = iface.sendText("into the void", destinationId=sim.node(1)["id"], wantAck=True,
                              onResponse=collector.onAckNak)  # fmt: skip
        (nak,) = collector.wait_for("the NAK", _answers(sent.id))
    assert _routing(nak) == "MAX_RETRANSMIT"
    assert sim.delivered() == []


def test_a_new_client_is_served_after_the_previous_one_left(start_sim: StartSim) -> None:
    sim = start_sim("--nodes", "2", "--no-airtime", "--position-interval", "0.2", "--chatter", "0")
    with tcp_interface(sim.port) as iface:
        assert len(iface.nodes) == 3
    collector = Collector()
    with subscribed(collector), tcp_interface(sim.port) as iface:
        collector.interface = iface
        collector.wait_for("positions", lambda p: p["decoded"]["portnum"] == "POSITION_APP", count=2)
    assert sim.stop() == 0


def test_serial_interface_over_the_pty(start_sim: StartSim, tmp_path: Path) -> None:
    link = tmp_path / "ttyRADIO"
    sim = start_sim("--nodes", "4", "--pty-link", str(link), *QUIET, tcp=None)
    assert sim.ready["pty"] == str(link) and sim.ready["tcp"] is None
    collector = Collector()
    iface = SerialInterface(devPath=str(link), noProto=False, timeout=10)
    try:
        assert iface.myInfo.my_node_num == sim.node_num
        assert len(iface.nodes) == 5
        sent = iface.sendText("to everyone", wantAck=True, onResponse=collector.onAckNak)
        (ack,) = collector.wait_for("the implicit ACK", _answers(sent.id))
    finally:
        iface.close()
    assert _routing(ack) == "NONE"
    assert ack["from"] == sim.node_num  # a broadcast is acknowledged by our own radio
    assert [r["text"] for r in sim.delivered()] == ["to everyone"]
    assert sim.stop() == 0
    assert not link.exists()
