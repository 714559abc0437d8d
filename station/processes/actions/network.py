"""Network actions: webhook (an HTTP request with a timeout) and mqtt_publish (to the broker
of the station's [mqtt] config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.processes.actions import ActionContext, ActionFailed, action

RESPONSE_PREVIEW_BYTES = 2048  # what a step keeps of a webhook's answer


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=300)


@action("webhook", Webhook)
async def webhook(config: Webhook, context: ActionContext) -> dict[str, Any]:
    import httpx  # here, not at the top: an idle station does not pay for ssl and httpx

    headers = {"Idempotency-Key": context.idempotency_key, **config.headers}
    try:
        async with httpx.AsyncClient(timeout=config.timeout_s) as client:
            response = await client.request(config.method, config.url, json=config.json_body, headers=headers)
    except httpx.HTTPError as exc:
        raise ActionFailed(f"{config.method} {config.url}: {type(exc).__name__}: {exc}") from exc
    result = {"status_code": response.status_code, "body": response.text[:RESPONSE_PREVIEW_BYTES]}
    if response.status_code >= 400:
        raise ActionFailed(f"{config.method} {config.url} answered HTTP {response.status_code}", result)
    return result


class MqttPublish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=1, max_length=1024)
    payload: Any = ""
    qos: Literal[0, 1, 2] = 0
    retain: bool = False


@action("mqtt_publish", MqttPublish)
async def mqtt_publish(config: MqttPublish, context: ActionContext) -> dict[str, Any]:
    if "+" in config.topic or "#" in config.topic:
        raise ActionFailed(f"cannot publish to a topic filter {config.topic!r}")
    mqtt = context.service("mqtt")
    await mqtt.publish(config.topic, config.payload, config.qos, config.retain)
    return {"topic": config.topic}
