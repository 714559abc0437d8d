"""Mesh endpoints: send (into the durable outbox), outgoing and received messages, nodes,
radio status. Thin: validation and work happen in station.mesh."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from station.api.auth import require_token
from station.mesh.errors import InvalidMessage, UnknownRadio
from station.mesh.outbox import SendRequest
from station.mesh.service import MeshService

router = APIRouter(prefix="/mesh", tags=["mesh"], dependencies=[Depends(require_token)])

MAX_BATCH = 1000  # messages per POST: bounds one request's transaction and response
MAX_LIST = 1000  # rows per listing page


class MessageIn(BaseModel):
    text: str = Field(description="UTF-8 text; split into numbered parts beyond 233 bytes")
    to: str = Field(default="broadcast", description="'broadcast' or a node id like '!a1b2c3d4'")
    channel: int = Field(default=0, description="channel index 0..7")
    want_ack: bool = False
    radio: str | None = Field(default=None, description="send through this radio only")
    ttl_s: float | None = Field(default=None, description="expire if not delivered by then")
    idempotency_key: str | None = Field(
        default=None, max_length=200,
        description="a retried POST with the same key returns the first message instead of a copy")


class MessageBatchIn(BaseModel):
    messages: list[MessageIn] = Field(max_length=MAX_BATCH)


async def _mesh(request: Request) -> MeshService:
    service: MeshService = request.app.state.station.mesh
    return service


Mesh = Annotated[MeshService, Depends(_mesh)]


def _accept(mesh: MeshService, messages: list[MessageIn]) -> list[dict[str, Any]]:
    try:
        return mesh.send([SendRequest(**message.model_dump()) for message in messages])
    except InvalidMessage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": exc.field, "error": str(exc)}) from exc
    except UnknownRadio as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": "radio", "error": str(exc)}) from exc


@router.post("/messages", status_code=status.HTTP_201_CREATED)
async def send_message(message: MessageIn, mesh: Mesh) -> dict[str, Any]:
    """Commit one message to the outbox; answered only once it is durable."""
    return _accept(mesh, [message])[0]


@router.post("/messages/batch", status_code=status.HTTP_201_CREATED)
async def send_messages(batch: MessageBatchIn, mesh: Mesh) -> dict[str, Any]:
    """Commit several messages in one transaction (all or none)."""
    return {"messages": _accept(mesh, batch.messages)}


@router.get("/messages")
async def list_outgoing(
    mesh: Mesh,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
) -> dict[str, Any]:
    return {"messages": mesh.outgoing(status_filter, limit)}


@router.get("/messages/{message_id}")
async def get_message(message_id: str, mesh: Mesh) -> dict[str, Any]:
    message = mesh.message(message_id)
    if message is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no message {message_id}")
    return message


@router.get("/received")
async def list_received(
    mesh: Mesh,
    after: Annotated[float, Query(description="created_at cursor from the previous page")] = 0.0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> dict[str, Any]:
    return {"messages": mesh.received(after, limit)}


@router.get("/nodes")
async def list_nodes(mesh: Mesh) -> dict[str, Any]:
    return {"nodes": mesh.nodes()}


@router.get("/status")
async def mesh_status(mesh: Mesh) -> dict[str, Any]:
    return mesh.status()
