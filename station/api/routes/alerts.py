"""Alert endpoints: list, raise, show, acknowledge, resolve. Thin: validation and the state
machine live in station.alerts; this maps their errors to 404, 409 and 422."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from station.alerts.errors import AlertNotFound, InvalidAlert, InvalidTransition
from station.alerts.service import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, AlertService
from station.api.auth import require_token

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(require_token)])

DEFAULT_ACTOR = "operator"  # who acknowledged or resolved, when the request does not say


class AlertIn(BaseModel):
    severity: str = Field(description="info, warning or critical")
    title: str = Field(description="one line, 1..200 characters")
    message: str = Field(default="", description="details, up to 2000 characters")
    source: str = Field(default="operator", description="'operator', 'process:<id>', 'mesh', ...")
    node_id: str | None = Field(default=None, description="the mesh node it is about: '!a1b2c3d4'")
    dedup_key: str | None = Field(
        default=None, description="fold into the unresolved alert with this key instead of a new one")


class ActorIn(BaseModel):
    by: str = Field(default=DEFAULT_ACTOR, description="who acknowledges or resolves")


async def _alerts(request: Request) -> AlertService:
    service: AlertService = request.app.state.station.alerts
    return service


Alerts = Annotated[AlertService, Depends(_alerts)]


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail={
            "alert_id": exc.alert_id, "status": exc.status, "action": exc.action, "error": str(exc),
        }) from exc
    except InvalidAlert as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": exc.field, "error": str(exc)}) from exc


@router.get("")
async def list_alerts(
    alerts: Alerts,
    status_filter: Annotated[
        str | None, Query(alias="status", description="active, acknowledged or resolved")] = None,
    severity: Annotated[str | None, Query(description="info, warning or critical")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
) -> dict[str, Any]:
    """Newest first, with the number of alerts in each status."""
    with _http_errors():
        return {"alerts": alerts.list(status_filter, severity, limit), "counts": alerts.counts()}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_alert(alert: AlertIn, alerts: Alerts) -> dict[str, Any]:
    """Raise an alert; answered once committed. A duplicate of an unresolved alert's dedup_key
    returns that alert with `deduplicated: true` and its occurrences counted up."""
    with _http_errors():
        return alerts.create(**alert.model_dump())


@router.get("/{alert_id}")
async def get_alert(alert_id: str, alerts: Alerts) -> dict[str, Any]:
    with _http_errors():
        return alerts.get(alert_id)


@router.post("/{alert_id}/acknowledge")
async def acknowledge_alert(alert_id: str, alerts: Alerts, actor: ActorIn | None = None) -> dict[str, Any]:
    """active -> acknowledged; an acknowledged alert is returned unchanged; resolved: 409."""
    with _http_errors():
        return alerts.acknowledge(alert_id, (actor or ActorIn()).by)


@router.post("/{alert_id}/resolve")
async def resolve_alert(alert_id: str, alerts: Alerts, actor: ActorIn | None = None) -> dict[str, Any]:
    """active or acknowledged -> resolved; already resolved: 409."""
    with _http_errors():
        return alerts.resolve(alert_id, (actor or ActorIn()).by)
