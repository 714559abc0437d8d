"""Alert actions: create_alert, acknowledge_alert, resolve_alert (the station's alert service)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.alerts.errors import AlertError
from station.processes.actions import ActionContext, ActionFailed, action


class CreateAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Literal["info", "warning", "critical"] = "warning"
    title: str = Field(min_length=1)
    message: str = ""
    node_id: str | None = None
    dedup_key: str | None = None


class AlertRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_id: str = Field(min_length=1)


@action("create_alert", CreateAlert)
async def create_alert(config: CreateAlert, context: ActionContext) -> dict[str, Any]:
    alerts = context.service("alerts")
    try:
        # Without a key of its own, the step's idempotency key makes a resumed step fold into
        # the alert it raised before the crash instead of raising a second one.
        alert = alerts.create(
            config.severity,
            config.title,
            config.message,
            source=f"process:{context.run.process_name}",
            node_id=config.node_id or None,
            dedup_key=config.dedup_key or f"step:{context.idempotency_key}",
        )
    except AlertError as exc:
        raise ActionFailed(str(exc)) from exc
    return {"alert_id": alert["id"], "deduplicated": alert["deduplicated"]}


@action("acknowledge_alert", AlertRef)
async def acknowledge_alert(config: AlertRef, context: ActionContext) -> dict[str, Any]:
    try:
        alert = context.service("alerts").acknowledge(config.alert_id, f"process:{context.run.process_name}")
    except AlertError as exc:
        raise ActionFailed(str(exc)) from exc
    return {"alert_id": alert["id"], "status": alert["status"]}


@action("resolve_alert", AlertRef)
async def resolve_alert(config: AlertRef, context: ActionContext) -> dict[str, Any]:
    alerts = context.service("alerts")
    try:
        current = alerts.get(config.alert_id)
        if current["status"] == "resolved":  # resolving twice is what the step wanted: done
            return {"alert_id": current["id"], "status": "resolved"}
        alert = alerts.resolve(config.alert_id, f"process:{context.run.process_name}")
    except AlertError as exc:
        raise ActionFailed(str(exc)) from exc
    return {"alert_id": alert["id"], "status": alert["status"]}
