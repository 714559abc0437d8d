"""Turning what the radios hear into the node database, the message log and bus events.

Reads the packet dicts the meshtastic library decodes; must not send anything.
"""

from __future__ import annotations

import logging
from typing import Any

from station.bus import EventBus
from station.mesh.addresses import BROADCAST, BROADCAST_NUM, node_id
from station.mesh.events import MeshMessageReceived, NodePositionUpdated, NodeUpdated
from station.store import Database
from station.store import mesh as store

logger = logging.getLogger(__name__)

TEXT_PORT = "TEXT_MESSAGE_APP"
LOGGED_PORTS = {TEXT_PORT, "POSITION_APP", "TELEMETRY_APP", "NODEINFO_APP"}


class Receiver:
    def __init__(self, database: Database, bus: EventBus) -> None:
        self._database = database
        self._bus = bus
        self.received = 0

    def import_nodes(self, radio: str, nodes: list[dict[str, Any]]) -> None:
        """The radio's own node DB, sent in the config handshake, seeds ours."""
        for node in nodes:
            num = node.get("num")
            if num is None:
                continue
            fields = {"node_id": node_id(num), "radio": radio, "last_heard": node.get("lastHeard"),
                      "snr": node.get("snr"), "hops_away": node.get("hopsAway")}
            fields |= _user_fields(node.get("user", {}))
            fields |= _position_fields(node.get("position", {}))
            fields |= _metrics_fields(node.get("deviceMetrics", {}))
            store.upsert_node(self._database, int(num), fields)

    def packet(self, radio: str, packet: dict[str, Any]) -> None:
        decoded = packet.get("decoded")
        sender = packet.get("from")
        if not isinstance(decoded, dict) or sender is None:
            return  # encrypted for someone else, or malformed: nothing we can use
        portnum = decoded.get("portnum")
        sender_id = node_id(int(sender))
        fields: dict[str, Any] = {
            "node_id": sender_id, "radio": radio, "last_heard": packet.get("rxTime"),
            "snr": packet.get("rxSnr"), "rssi": packet.get("rxRssi"), "hops_away": _hops(packet),
        }
        if portnum == "POSITION_APP":
            fields |= _position_fields(decoded.get("position", {}))
        elif portnum == "TELEMETRY_APP":
            fields |= _metrics_fields(decoded.get("telemetry", {}).get("deviceMetrics", {}))
        elif portnum == "NODEINFO_APP":
            fields |= _user_fields(decoded.get("user", {}))
        store.upsert_node(self._database, int(sender), fields)
        self._bus.publish(NodeUpdated(node_id=sender_id, changes=fields))
        if fields.get("latitude") is not None and fields.get("longitude") is not None:
            self._bus.publish(NodePositionUpdated(node_id=sender_id, latitude=fields["latitude"],
                                                  longitude=fields["longitude"],
                                                  altitude=fields.get("altitude")))
        if portnum in LOGGED_PORTS:
            self._log(radio, packet, decoded, sender_id)

    def _log(self, radio: str, packet: dict[str, Any], decoded: dict[str, Any], sender: str) -> None:
        to_num = packet.get("to", BROADCAST_NUM)
        to_node = BROADCAST if to_num == BROADCAST_NUM else node_id(int(to_num))
        text = decoded.get("text") if decoded.get("portnum") == TEXT_PORT else None
        record: dict[str, Any] = {
            "radio": radio, "packet_id": packet.get("id"), "from_node": sender, "to_node": to_node,
            "channel": int(packet.get("channel", 0)), "portnum": decoded.get("portnum"),
            "text": text, "snr": packet.get("rxSnr"), "rssi": packet.get("rxRssi"),
            "hops": _hops(packet),
        }
        if store.insert_received(self._database, record) is None:
            return  # heard twice (relayed copy, or through two radios)
        self.received += 1
        if text is not None:
            self._bus.publish(MeshMessageReceived(
                radio=radio, from_node=sender, to_node=to_node, channel=record["channel"],
                text=text, packet_id=record["packet_id"]))


def _hops(packet: dict[str, Any]) -> int | None:
    start, limit = packet.get("hopStart"), packet.get("hopLimit")
    if start is None or limit is None:
        return None
    return max(0, int(start) - int(limit))


def _user_fields(user: dict[str, Any]) -> dict[str, Any]:
    return {"long_name": user.get("longName"), "short_name": user.get("shortName"),
            "hw_model": user.get("hwModel")}


def _position_fields(position: dict[str, Any]) -> dict[str, Any]:
    return {"latitude": position.get("latitude"), "longitude": position.get("longitude"),
            "altitude": position.get("altitude"), "position_time": position.get("time")}


def _metrics_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"battery_level": metrics.get("batteryLevel"), "voltage": metrics.get("voltage")}
