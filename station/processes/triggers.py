"""Trigger types: which bus event each one listens to, what its config may say, and whether
an event matches a trigger's config. The engine indexes triggers by type with this.

Owns trigger semantics; must not evaluate conditions or start executions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from station.processes.errors import DefinitionError
from station.processes.schedule import parse_schedule

MAX_PATTERN_LENGTH = 500  # a text_regex longer than this is a program, not a filter
MATCHED_TEXT_LIMIT = 4096  # regexes see at most this much text (Python's re has no timeout)

# Bus event class name -> trigger type. Matching by name keeps the engine free of imports
# from every subsystem; the names are part of each subsystem's public surface.
EVENT_TRIGGERS: dict[str, str] = {
    "MeshMessageReceived": "message_received",
    "NodeUpdated": "node_updated",
    "ZoneEntered": "zone_entry",
    "ZoneExited": "zone_exit",
    "AlertCreated": "alert_created",
    "AlertAcknowledged": "alert_acknowledged",
    "AlertResolved": "alert_resolved",
    "NodeOnline": "user_online",
    "NodeOffline": "user_offline",
    "NodeRegistered": "user_registered",
    "NodeGroupChanged": "user_group_changed",
    "BotTriggerFired": "bot_trigger_fired",
    "MqttMessageReceived": "mqtt_message",
    "BoardOnline": "board_online",
    "BoardOffline": "board_offline",
    "BoardTelemetry": "board_telemetry",
    "BoardEventReceived": "board_event",
    "AppEvent": "wasm_event",
}
SCHEDULE = "time_schedule"
MANUAL = "manual"
MQTT = "mqtt_message"


@dataclass(frozen=True)
class _Field:
    kind: type | tuple[type, ...]
    check: Callable[[Any], str | None] | None = None  # returns an error message or None


def _node_list(value: Any) -> str | None:
    nodes = [value] if isinstance(value, str) else value
    if not all(isinstance(n, str) and re.fullmatch(r"![0-9a-f]{8}", n) for n in nodes):
        return "must be node ids like '!a1b2c3d4'"
    return None


def _listed(value: str | list[Any]) -> list[Any]:
    """A filter given as one value or a list of them, as a list."""
    return [value] if isinstance(value, str) else value


def _text_list(value: Any) -> str | None:
    # An empty list would silently match nothing; leaving the filter out matches everything.
    if not _listed(value):
        return "must name at least one (leave the option out to match any)"
    if not all(isinstance(item, str) and item for item in _listed(value)):
        return "must be a list of non-empty texts"
    return None


def _regex(value: str) -> str | None:
    if len(value) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


def _topic_filter(value: str) -> str | None:
    levels = value.split("/")
    if not value or any(
        ("#" in level and level != "#") or ("+" in level and level != "+") for level in levels
    ):
        return "not a valid MQTT topic filter"
    if "#" in levels[:-1]:
        return "'#' may only be the last level"
    return None


def _channel(value: int) -> str | None:
    return None if 0 <= value <= 7 else "must be 0..7"


_NODES = _Field((str, list), _node_list)
# Board ids are not checked against the boards' id syntax: matching by name keeps this module
# free of the boards package, and an id that names no board simply never matches.
_BOARDS = _Field((str, list), _text_list)
_TEXTS = _Field((str, list), _text_list)
_SEVERITIES = _Field(
    list,
    lambda v: None if set(v) <= {"info", "warning", "critical"} else "severities are info, warning, critical",
)
TRIGGER_FIELDS: dict[str, dict[str, _Field]] = {
    "message_received": {
        "channel": _Field(int, _channel),
        "from": _NODES,
        "text_contains": _Field(str),
        "text_regex": _Field(str, _regex),
        "direct_only": _Field(bool),
        "radio": _Field(str),
    },
    "zone_entry": {"zone": _Field(str), "nodes": _NODES},
    "zone_exit": {"zone": _Field(str), "nodes": _NODES},
    "alert_created": {"severity": _SEVERITIES, "source": _Field(str)},
    "alert_acknowledged": {"severity": _SEVERITIES, "source": _Field(str)},
    "alert_resolved": {"severity": _SEVERITIES, "source": _Field(str)},
    "node_updated": {"nodes": _NODES, "fields": _Field(list)},
    "user_online": {"nodes": _NODES},
    "user_offline": {"nodes": _NODES},
    "user_registered": {"nodes": _NODES},
    "user_group_changed": {"group": _Field(str), "nodes": _NODES},
    "bot_trigger_fired": {"bot": _Field(str)},
    "mqtt_message": {"topic": _Field(str, _topic_filter)},
    "board_online": {"board_ids": _BOARDS},
    "board_offline": {"board_ids": _BOARDS, "reasons": _TEXTS},
    "board_telemetry": {"board_ids": _BOARDS, "sensors": _TEXTS},
    "board_event": {"board_ids": _BOARDS, "names": _TEXTS},
    # Nor are app names checked against the manifest's syntax: this module stays free of station.wasm.
    "wasm_event": {"apps": _TEXTS, "kinds": _TEXTS},
    MANUAL: {},
}
TRIGGER_TYPES = {*TRIGGER_FIELDS, SCHEDULE}
REQUIRED = {"mqtt_message": {"topic"}}


def validate_trigger_config(trigger_type: str, config: dict[str, Any], path: str) -> None:
    if trigger_type == SCHEDULE:
        parse_schedule(config, path)
        return
    fields = TRIGGER_FIELDS[trigger_type]
    for key in REQUIRED.get(trigger_type, set()) - set(config):
        raise DefinitionError(f"{path}.{key}", "is required")
    for key, value in config.items():
        spec = fields.get(key)
        if spec is None:
            known = ", ".join(sorted(fields)) or "none"
            raise DefinitionError(f"{path}.{key}", f"unknown option for {trigger_type} (known: {known})")
        if (isinstance(value, bool) and spec.kind is int) or not isinstance(value, spec.kind):
            raise DefinitionError(f"{path}.{key}", f"has the wrong type {type(value).__name__}")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise DefinitionError(f"{path}.{key}", problem)


def matches(trigger_type: str, config: dict[str, Any], event: dict[str, Any]) -> bool:
    """Does this event satisfy the trigger's own filter (before any condition tree)?"""
    matcher = _MATCHERS.get(trigger_type)
    return True if matcher is None else matcher(config, event)


def _in_nodes(config: dict[str, Any], node: Any) -> bool:
    nodes = config.get("nodes")
    if nodes is None:
        return True
    return node in ([nodes] if isinstance(nodes, str) else nodes)


def _message(config: dict[str, Any], event: dict[str, Any]) -> bool:
    text = str(event.get("text", ""))[:MATCHED_TEXT_LIMIT]
    senders = config.get("from")
    return not (
        ("channel" in config and event.get("channel") != config["channel"])
        or (
            senders is not None
            and event.get("from_node") not in ([senders] if isinstance(senders, str) else senders)
        )
        or ("text_contains" in config and config["text_contains"].lower() not in text.lower())
        or ("text_regex" in config and re.search(config["text_regex"], text) is None)
        or (config.get("direct_only") and event.get("to_node") == "broadcast")
        or ("radio" in config and event.get("radio") != config["radio"])
    )


def _zone(config: dict[str, Any], event: dict[str, Any]) -> bool:
    zone = event.get("zone")
    zone_name = zone.get("name") if isinstance(zone, dict) else zone
    return ("zone" not in config or zone_name == config["zone"]) and _in_nodes(config, event.get("node_id"))


def _alert(config: dict[str, Any], event: dict[str, Any]) -> bool:
    return ("severity" not in config or event.get("severity") in config["severity"]) and (
        "source" not in config or event.get("source") == config["source"]
    )


def _group_changed(config: dict[str, Any], event: dict[str, Any]) -> bool:
    group = config.get("group")
    touched = [*event.get("added", []), *event.get("removed", [])]
    return (group is None or group in touched) and _in_nodes(config, event.get("node_id"))


def _node_updated(config: dict[str, Any], event: dict[str, Any]) -> bool:
    changes = event.get("changes") or {}
    fields = config.get("fields")
    wanted = fields is None or any(changes.get(name) is not None for name in fields)
    return wanted and _in_nodes(config, event.get("node_id"))


def _listed_in(config: dict[str, Any], key: str, value: Any) -> bool:
    """The event's `value` is one of the config's `key` filter (no filter: any value)."""
    wanted = config.get(key)
    return wanted is None or value in _listed(wanted)


def _in_boards(config: dict[str, Any], event: dict[str, Any]) -> bool:
    return _listed_in(config, "board_ids", event.get("board_id"))


def _board_telemetry(config: dict[str, Any], event: dict[str, Any]) -> bool:
    values = event.get("values") or {}
    sensors = config.get("sensors")
    carried = sensors is None or any(values.get(name) is not None for name in _listed(sensors))
    return carried and _in_boards(config, event)


def _app_event(config: dict[str, Any], event: dict[str, Any]) -> bool:
    payload = event.get("payload")
    kind = payload.get("kind") if isinstance(payload, dict) else None
    return _listed_in(config, "apps", event.get("app")) and _listed_in(config, "kinds", kind)


def topic_matches(topic_filter: str, topic: str) -> bool:
    wanted, actual = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(actual) or (level != "+" and level != actual[index]):
            return False
    return len(wanted) == len(actual)


_MATCHERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], bool]] = {
    "message_received": _message,
    "zone_entry": _zone,
    "zone_exit": _zone,
    "alert_created": _alert,
    "alert_acknowledged": _alert,
    "alert_resolved": _alert,
    "node_updated": _node_updated,
    "user_online": lambda c, e: _in_nodes(c, e.get("node_id")),
    "user_offline": lambda c, e: _in_nodes(c, e.get("node_id")),
    "user_registered": lambda c, e: _in_nodes(c, e.get("node_id")),
    "user_group_changed": _group_changed,
    "bot_trigger_fired": lambda c, e: "bot" not in c or e.get("bot") == c["bot"],
    "mqtt_message": lambda c, e: topic_matches(c["topic"], str(e.get("topic", ""))),
    "board_online": _in_boards,
    "board_offline": lambda c, e: _in_boards(c, e) and _listed_in(c, "reasons", e.get("reason")),
    "board_telemetry": _board_telemetry,
    "board_event": lambda c, e: _in_boards(c, e) and _listed_in(c, "names", e.get("name")),
    "wasm_event": _app_event,
}
