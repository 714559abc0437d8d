"""Node group and presence endpoints: a node's groups (read, replace), a group's members, and
every node's presence. Thin: validation and work happen in station.presence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from station.api.auth import require_token
from station.presence import GroupNotFound, InvalidNodeInput, PresenceService
from station.presence.groups import MAX_GROUPS_PER_NODE

router = APIRouter(tags=["groups"], dependencies=[Depends(require_token)])


class GroupsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[str] = Field(max_length=MAX_GROUPS_PER_NODE, description="all of the node's groups")


async def _presence(request: Request) -> PresenceService:
    service: PresenceService = request.app.state.station.presence
    return service


Presence = Annotated[PresenceService, Depends(_presence)]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except GroupNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail={"field": "name", "error": str(exc)}) from exc
    except InvalidNodeInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": exc.field, "error": str(exc)}) from exc


@router.get("/mesh/nodes/{node_id}/groups")
async def node_groups(node_id: str, presence: Presence) -> dict[str, Any]:
    with _errors():
        return {"node_id": node_id.lower(), "groups": presence.groups.groups_of(node_id)}


@router.put("/mesh/nodes/{node_id}/groups")
async def set_node_groups(node_id: str, body: GroupsIn, presence: Presence) -> dict[str, Any]:
    with _errors():
        before = presence.groups.groups_of(node_id)
        after = presence.groups.set_groups(node_id, body.groups)
    return {"node_id": node_id.lower(), "groups": after,
            "added": [g for g in after if g not in before], "removed": [g for g in before if g not in after]}


@router.get("/groups/{name}")
async def group(name: str, presence: Presence) -> dict[str, Any]:
    with _errors():
        return {"name": name, "members": presence.groups.member_rows(name)}


@router.get("/mesh/presence")
async def presence_of_nodes(presence: Presence) -> dict[str, Any]:
    return {"offline_after_s": presence.offline_after_s, "nodes": presence.nodes()}
