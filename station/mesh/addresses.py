"""Mesh node addresses: '!a1b2c3d4' ids, node numbers and the broadcast address."""

from __future__ import annotations

import re

from station.mesh.errors import InvalidMessage

BROADCAST = "broadcast"
BROADCAST_NUM = 0xFFFFFFFF
_NODE_ID = re.compile(r"^!([0-9a-fA-F]{8})$")
DESTINATION_FORMS = "'broadcast' or a node id like '!a1b2c3d4'"


def node_id(num: int) -> str:
    return f"!{num & 0xFFFFFFFF:08x}"


def node_num(node: str) -> int:
    """Number of a '!a1b2c3d4' id, or the broadcast number."""
    if node == BROADCAST:
        return BROADCAST_NUM
    match = _NODE_ID.match(node)
    if not match:
        raise InvalidMessage("to", node, f"must be {DESTINATION_FORMS}")
    return int(match.group(1), 16)


def parse_destination(text: str) -> str:
    """Canonical form of a destination given by an operator ('^all' is Meshtastic's broadcast)."""
    candidate = text.strip()
    if candidate.lower() in (BROADCAST, "^all", "!ffffffff"):
        return BROADCAST
    num = node_num(candidate)
    if num == BROADCAST_NUM:
        return BROADCAST
    return node_id(num)
