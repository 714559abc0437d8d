"""The simulator at the frame level: what the library smooths over (queue status, a full
TX queue, garbage on the line, dropped connections, signals)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from tests.mesh_sim.conftest import ROOT, RawClient, StartSim

pytestmark = pytest.mark.integration

QUIET = ("--chatter", "0", "--position-interval", "0", "--telemetry-interval", "0")
TX_QUEUE_LEN = 16


def _configure(client: RawClient, nonce: int = 4242) -> list[Any]:
    client.sock.sendall(bytes([0xC3] * 32) + b"noise\n")  # like the library's wake-up
    client.send(mesh_pb2.ToRadio(want_config_id=nonce))
    client.receive_until(lambda m: m.config_complete_id == nonce)
    return client.inbox


def _text_packet(packet_id: int, to: int, text: str = "x", want_ack: bool = False) -> Any:
    packet = mesh_pb2.MeshPacket(id=packet_id, to=to, want_ack=want_ack, hop_limit=3)
    packet.decoded.portnum = portnums_pb2.PortNum.TEXT_MESSAGE_APP
    packet.decoded.payload = text.encode()
    return mesh_pb2.ToRadio(packet=packet)


def _is_status(packet_id: int) -> Callable[[Any], bool]:
    return lambda m: m.HasField("queueStatus") and m.queueStatus.mesh_packet_id == packet_id


def test_handshake_then_heartbeat_gets_queue_status(start_sim: StartSim, raw_client: Any) -> None:
    sim = start_sim("--nodes", "2", *QUIET)
    client = raw_client(sim.port)
    received = _configure(client)
    kinds = [m.WhichOneof("payload_variant") for m in received]
    assert kinds[0] == "my_info" and kinds.count("node_info") == 3 and "metadata" in kinds
    client.inbox.clear()
    client.send(mesh_pb2.ToRadio(heartbeat=mesh_pb2.Heartbeat()))
    status = client.receive_until(_is_status(0)).queueStatus
    assert (status.res, status.maxlen, status.free) == (0, TX_QUEUE_LEN, TX_QUEUE_LEN)


def test_full_tx_queue_refuses_then_reports_free_slots(start_sim: StartSim, raw_client: Any) -> None:
    # LONG_SLOW keeps each packet on air for ~1.5 s, so 18 packets overflow the 16 slots
    sim = start_sim("--nodes", "1", "--preset", "LONG_SLOW", *QUIET)
    client = raw_client(sim.port)
    _configure(client)
    dest = sim.node(0)["num"]
    for packet_id in range(1, 19):
        client.send(_text_packet(packet_id, dest))
    statuses = [client.receive_until(_is_status(i)).queueStatus for i in range(1, 19)]
    assert [s.res for s in statuses[:TX_QUEUE_LEN]] == [0] * TX_QUEUE_LEN
    assert [s.free for s in statuses[:3]] == [15, 14, 13]
    assert all(s.res != 0 and s.free == 0 for s in statuses[TX_QUEUE_LEN:])
    freed = client.receive_until(_is_status(0), timeout=10).queueStatus  # first packet left the air
    assert freed.res == 0 and freed.free >= 1


def _closed_by_peer(client: RawClient, timeout: float) -> bool:
    """Read (and discard) until the simulator closes the connection."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            client.sock.settimeout(max(0.01, deadline - time.monotonic()))
            if client.sock.recv(4096) == b"":
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def test_new_connection_takes_over_and_script_disconnect_drops_it(
    start_sim: StartSim, raw_client: Any, tmp_path: Path
) -> None:
    script = tmp_path / "drop.toml"
    script.write_text("[[step]]\nat = 1.5\ndisconnect = true\n")
    sim = start_sim("--nodes", "1", "--script", str(script), *QUIET)
    first = raw_client(sim.port)
    _configure(first)
    second = raw_client(sim.port)
    _configure(second, nonce=7)
    assert _closed_by_peer(first, timeout=5)  # the newcomer took over
    assert _closed_by_peer(second, timeout=10)  # the script dropped it
    third = raw_client(sim.port)  # and the radio still takes clients
    _configure(third, nonce=8)


def test_unicast_to_an_unknown_node_is_not_delivered(start_sim: StartSim, raw_client: Any) -> None:
    sim = start_sim("--nodes", "1", "--no-airtime", *QUIET)
    client = raw_client(sim.port)
    _configure(client)
    client.send(_text_packet(99, to=0x12345678, want_ack=True))
    nak = client.receive_until(lambda m: m.packet.decoded.request_id == 99).packet
    routing = mesh_pb2.Routing()
    routing.ParseFromString(nak.decoded.payload)
    assert routing.error_reason == mesh_pb2.Routing.Error.Value("MAX_RETRANSMIT")
    assert sim.delivered() == []


def test_sigterm_stops_cleanly(start_sim: StartSim, raw_client: Any) -> None:
    sim = start_sim("--nodes", "1", *QUIET)
    _configure(raw_client(sim.port))
    assert sim.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.port), timeout=2).close()


def test_bad_command_line_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "station.mesh.sim", "--nodes", "many"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--nodes" in result.stderr
