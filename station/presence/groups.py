"""Node groups: named sets of mesh nodes ("rangers", "sensors"), the process engine's user
groups. A node may be put in a group before the station ever hears it (a handheld handed
to a new ranger). Owns validation and the NodeGroupChanged event; storage is in the store."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from station.bus import EventBus
from station.presence.errors import GroupNotFound, InvalidNodeInput
from station.presence.events import NodeGroupChanged
from station.store import Database
from station.store import presence as store

logger = logging.getLogger(__name__)

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # goes unquoted into URLs and CLI arguments
MAX_GROUPS_PER_NODE = 32  # a role tag, not a database: bounds one request and one node's rows
_NODE_ID = re.compile(r"^![0-9a-fA-F]{8}$")


def canonical_node_id(text: str) -> str:
    """'!A1B2C3D4' -> '!a1b2c3d4'; anything else is refused naming the field."""
    if not isinstance(text, str) or not _NODE_ID.match(text.strip()):
        raise InvalidNodeInput("node_id", text, "must be a node id like '!a1b2c3d4'")
    return text.strip().lower()


def check_group_name(name: str) -> str:
    if not isinstance(name, str) or not GROUP_NAME.match(name):
        raise InvalidNodeInput("groups", name, f"must match {GROUP_NAME.pattern}")
    return name


class NodeGroups:
    def __init__(self, database: Database, bus: EventBus, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._bus = bus
        self._clock = clock

    def groups_of(self, node_id: str) -> list[str]:
        return store.groups_of(self._database, canonical_node_id(node_id))

    def set_groups(self, node_id: str, groups: Iterable[str]) -> list[str]:
        """Make the node's groups exactly these; publishes NodeGroupChanged if anything changed."""
        node = canonical_node_id(node_id)
        wanted = sorted({check_group_name(group) for group in groups})
        if len(wanted) > MAX_GROUPS_PER_NODE:
            limit = f"is more than the {MAX_GROUPS_PER_NODE} a node may have"
            raise InvalidNodeInput("groups", len(wanted), limit)
        current = store.groups_of(self._database, node)
        added = [group for group in wanted if group not in current]
        removed = [group for group in current if group not in wanted]
        if added or removed:
            store.change_groups(self._database, node, added, removed, self._clock())
            logger.info("node groups changed", extra={"node": node, "added": added, "removed": removed})
            self._bus.publish(NodeGroupChanged(node_id=node, added=added, removed=removed, groups=wanted))
        return wanted

    def add(self, node_id: str, group: str) -> list[str]:
        return self.set_groups(node_id, [*self.groups_of(node_id), group])

    def remove(self, node_id: str, group: str) -> list[str]:
        check_group_name(group)
        return self.set_groups(node_id, [g for g in self.groups_of(node_id) if g != group])

    def members(self, group: str) -> list[str]:
        """Node ids in the group (empty if none: a group exists only through its members)."""
        return [row["node_id"] for row in store.group_members(self._database, check_group_name(group))]

    def member_rows(self, group: str) -> list[dict[str, Any]]:
        """Members with name and presence; GroupNotFound when the group has none."""
        rows = store.group_members(self._database, check_group_name(group))
        if not rows:
            raise GroupNotFound(group)
        return rows

    def counts(self) -> dict[str, int]:
        return store.group_counts(self._database)
