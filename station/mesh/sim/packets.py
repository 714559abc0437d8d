"""Protobuf builders for what the simulated mesh puts on the air.

Owns the translation of simulator state (SimNode, reception quality, routing outcomes)
into Meshtastic `MeshPacket`, `User`, `Position`, `Telemetry` and `NodeInfo` messages.
No timing decisions, randomness or I/O: callers pass ids, times and outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2

from station.mesh.airtime import MESH_HEADER_BYTES
from station.mesh.sim.nodes import SimNode

BROADCAST_NUM = 0xFFFFFFFF
HOP_LIMIT = 3  # firmware default; every simulated node is within it
ROUTING_ERRORS = frozenset(mesh_pb2.Routing.Error.keys())


@dataclass(frozen=True, slots=True)
class Reception:
    """How our radio heard a packet: time, signal and how many relays it crossed."""

    rx_time: int
    snr: float
    rssi: int
    hops: int


def heard_from(node: SimNode, now: float) -> Reception:
    return Reception(rx_time=int(now), snr=node.snr, rssi=node.rssi, hops=node.hops)


def portnum_name(value: int) -> str:
    try:
        return str(portnums_pb2.PortNum.Name(value))
    except ValueError:
        return str(value)


def user(node: SimNode) -> Any:
    return mesh_pb2.User(
        id=node.node_id,
        long_name=node.long_name,
        short_name=node.short_name,
        hw_model=mesh_pb2.HardwareModel.Value(node.hw_model),
    )


def position(node: SimNode, now: float) -> Any:
    return mesh_pb2.Position(
        latitude_i=round(node.lat * 1e7),
        longitude_i=round(node.lon * 1e7),
        altitude=node.altitude_m,
        time=int(now),
        location_source=mesh_pb2.Position.LOC_INTERNAL,
        sats_in_view=9,
        precision_bits=32,
    )


def device_metrics(node: SimNode, now: float) -> Any:
    return telemetry_pb2.DeviceMetrics(
        battery_level=node.battery_level,
        voltage=node.voltage,
        channel_utilization=node.channel_utilization,
        air_util_tx=node.air_util_tx,
        uptime_seconds=max(0, int(now - node.boot_time)),
    )


def telemetry(node: SimNode, now: float) -> Any:
    return telemetry_pb2.Telemetry(time=int(now), device_metrics=device_metrics(node, now))


def node_info(node: SimNode, now: float, *, local: bool = False) -> Any:
    info = mesh_pb2.NodeInfo(
        num=node.num,
        user=user(node),
        position=position(node, now),
        device_metrics=device_metrics(node, now),
        last_heard=int(now if local else node.last_heard),
    )
    if not local:
        info.snr = node.snr
        info.hops_away = node.hops
    return info


def mesh_packet(
    *,
    sender: int,
    to: int,
    packet_id: int,
    portnum: str,
    payload: bytes,
    channel: int = 0,
    want_ack: bool = False,
    request_id: int = 0,
    heard: Reception | None = None,
) -> Any:
    """A decoded MeshPacket as our radio hands it to its client."""
    packet = mesh_pb2.MeshPacket(
        to=to,
        id=packet_id,
        channel=channel,
        want_ack=want_ack,
        hop_limit=HOP_LIMIT,
        hop_start=HOP_LIMIT,
    )
    setattr(packet, "from", sender)
    packet.decoded.portnum = portnums_pb2.PortNum.Value(portnum)
    packet.decoded.payload = payload
    if request_id:
        packet.decoded.request_id = request_id
    if heard is not None:
        packet.rx_time = heard.rx_time
        packet.rx_snr = heard.snr
        packet.rx_rssi = heard.rssi
        packet.hop_limit = HOP_LIMIT - heard.hops
    return packet


def routing_packet(
    *,
    sender: int,
    to: int,
    packet_id: int,
    request_id: int,
    error: str,
    channel: int = 0,
    heard: Reception | None = None,
) -> Any:
    """An ACK (error 'NONE') or NAK for the packet `request_id`."""
    routing = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.Value(error))
    packet = mesh_packet(
        sender=sender,
        to=to,
        packet_id=packet_id,
        portnum="ROUTING_APP",
        payload=routing.SerializeToString(),
        channel=channel,
        request_id=request_id,
        heard=heard,
    )
    packet.priority = mesh_pb2.MeshPacket.Priority.Value("ACK")
    return packet


def sender_of(packet: Any) -> int:
    return int(getattr(packet, "from"))


def on_air_bytes(packet: Any) -> int:
    """LoRa PHY payload of a MeshPacket: header plus the (encrypted, same-length) Data."""
    if packet.HasField("decoded"):
        return MESH_HEADER_BYTES + len(packet.decoded.SerializeToString())
    return MESH_HEADER_BYTES + len(packet.encrypted)
