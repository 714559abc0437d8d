"""Who the mesh nodes are to the station: presence (registered, online, offline) and named
groups. Nodes play the process engine's "users"; this package produces their events."""

from station.presence.errors import GroupNotFound, InvalidNodeInput, PresenceError
from station.presence.events import NodeGroupChanged, NodeOffline, NodeOnline, NodeRegistered
from station.presence.groups import NodeGroups
from station.presence.service import PresenceService

__all__ = [
    "GroupNotFound", "InvalidNodeInput", "NodeGroupChanged", "NodeGroups", "NodeOffline", "NodeOnline",
    "NodeRegistered", "PresenceError", "PresenceService",
]
