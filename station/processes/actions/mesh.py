"""Mesh actions: send_message (through the durable outbox; the step completes on the mesh
ACK, not on enqueue), send_notification and trigger_bot."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.mesh.errors import MeshError
from station.mesh.events import OutboxMessageFinished
from station.mesh.outbox import SendRequest
from station.processes.actions import ActionContext, ActionFailed, action
from station.processes.events import BotTriggerFired, NotificationSent

FINAL = ("delivered", "failed", "expired")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendMessage(_Config):
    text: str = Field(min_length=1)
    to: str = "broadcast"
    channel: int = Field(default=0, ge=0, le=7)
    want_ack: bool = True
    radio: str | None = None
    wait: bool = True  # False: the step completes once the message is queued


@action("send_message", SendMessage)
async def send_message(config: SendMessage, context: ActionContext) -> dict[str, Any]:
    mesh = context.service("mesh")
    request = SendRequest(
        config.text,
        config.to,
        config.channel,
        config.want_ack,
        config.radio,
        ttl_s=context.timeout_s,
        idempotency_key=context.idempotency_key,
    )
    try:
        [message] = mesh.send([request])
    except MeshError as exc:
        raise ActionFailed(str(exc)) from exc
    result = {"message_id": message["id"], "status": message["status"]}
    if not config.wait or message["status"] in FINAL:
        return _outcome(result, message)
    finished = await wait_for_message(context, message["id"])
    return _outcome(result, finished)


async def wait_for_message(context: ActionContext, message_id: str) -> dict[str, Any]:
    bus, mesh = context.engine.station.bus, context.service("mesh")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished(event: OutboxMessageFinished) -> None:
        if event.message_id == message_id and not done.done():
            done.set_result(None)

    unsubscribe = bus.subscribe(OutboxMessageFinished, finished)
    try:
        current = mesh.message(message_id)
        if current["status"] not in FINAL:  # checked after subscribing: no finish slips between
            await done
        return dict(mesh.message(message_id))
    finally:
        unsubscribe()


def _outcome(result: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    result["status"] = message["status"]
    if message["status"] in ("failed", "expired"):
        raise ActionFailed(f"message {message['status']}: {message.get('reason')}", result)
    return result


class SendNotification(_Config):
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=2000)
    severity: Literal["info", "warning", "critical"] = "info"
    mesh_to: str | None = None  # also send it over the mesh to a node or 'broadcast'
    channel: int = Field(default=0, ge=0, le=7)


@action("send_notification", SendNotification)
async def send_notification(config: SendNotification, context: ActionContext) -> dict[str, Any]:
    """Tell the station's operators: a bus event (dashboard, sync) and optionally the mesh."""
    context.engine.station.bus.publish(
        NotificationSent(
            title=config.title,
            message=config.message,
            severity=config.severity,
            process=context.run.process_name,
        )
    )
    context.log("notification", {"title": config.title, "severity": config.severity})
    result: dict[str, Any] = {"notified": True}
    if config.mesh_to is not None:
        text = f"{config.title}: {config.message}" if config.message else config.title
        request = SendRequest(
            text, config.mesh_to, config.channel, want_ack=False, idempotency_key=context.idempotency_key
        )
        try:
            [message] = context.service("mesh").send([request])
        except MeshError as exc:
            raise ActionFailed(str(exc)) from exc
        result["message_id"] = message["id"]
    return result


class TriggerBot(_Config):
    bot: str = Field(min_length=1, max_length=64)
    input: dict[str, Any] = Field(default_factory=dict)


@action("trigger_bot", TriggerBot)
async def trigger_bot(config: TriggerBot, context: ActionContext) -> dict[str, Any]:
    context.engine.station.bus.publish(
        BotTriggerFired(bot=config.bot, input=config.input, source=f"process:{context.run.process_name}")
    )
    return {"bot": config.bot}
