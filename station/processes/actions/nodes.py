"""Node and zone actions: update_zone, get_users_in_zone, update_user_group (mesh nodes are
the station's users)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from station.presence.errors import PresenceError
from station.processes.actions import ActionContext, ActionFailed, action
from station.zones.errors import ZoneError


class UpdateZone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str = Field(min_length=1)
    center: list[float] | None = None
    radius_m: float | None = None
    points: list[list[float]] | None = None
    description: str | None = None
    active: bool | None = None


@action("update_zone", UpdateZone)
async def update_zone(config: UpdateZone, context: ActionContext) -> dict[str, Any]:
    changes = config.model_dump(exclude={"zone"}, exclude_none=True)
    try:
        zone = context.service("zones").update(config.zone, **changes)
    except ZoneError as exc:
        raise ActionFailed(str(exc)) from exc
    return dict(zone.to_dict())


class ZoneRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str = Field(min_length=1)


@action("get_users_in_zone", ZoneRef)
async def get_users_in_zone(config: ZoneRef, context: ActionContext) -> dict[str, Any]:
    try:
        nodes = context.service("zones").nodes_in_zone(config.zone)
    except ZoneError as exc:
        raise ActionFailed(str(exc)) from exc
    return {"zone": config.zone, "count": len(nodes), "nodes": [node["node_id"] for node in nodes]}


class UpdateUserGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_id: str = Field(min_length=1)
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    set: list[str] | None = None  # replace the node's groups with exactly these


@action("update_user_group", UpdateUserGroup)
async def update_user_group(config: UpdateUserGroup, context: ActionContext) -> dict[str, Any]:
    groups = context.service("groups")
    try:
        if config.set is not None:
            wanted = config.set
        else:
            current = groups.groups_of(config.node_id)
            wanted = [g for g in current if g not in config.remove] + [g for g in config.add if g not in current]
        result = groups.set_groups(config.node_id, wanted)
    except PresenceError as exc:
        raise ActionFailed(str(exc)) from exc
    return {"node_id": config.node_id, "groups": result}
