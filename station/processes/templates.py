"""Process templates: the built-in library for field stations, and making a process from a
template with customisations (a name and values for the template's variables).

Templates are ordinary definitions whose configs refer to `{{ vars.* }}`; instantiating
merges the given variables over the template's defaults.
"""

from __future__ import annotations

import copy
from typing import Any

from station.processes.errors import DefinitionError
from station.store import Database
from station.store import processes as store

CATEGORIES = ("emergency", "maintenance", "communication", "monitoring")

BUILTIN: list[dict[str, Any]] = [
    {
        "name": "low-battery-alert",
        "category": "monitoring",
        "description": "A node reports a battery below 20 %: raise an alert and tell a channel.",
        "definition": {
            "name": "low-battery-alert",
            "triggers": [{"type": "node_updated", "config": {"fields": ["battery_level"]}}],
            "conditions": {"field": "event.changes.battery_level", "op": "lt", "value": 20},
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "warning",
                        "title": "Low battery on {{ event.node_id }}",
                        "message": "{{ event.changes.battery_level }} % left",
                        "node_id": "{{ event.node_id }}",
                        "dedup_key": "low-battery:{{ event.node_id }}",
                    },
                },
                {
                    "type": "send_message",
                    "config": {
                        "text": "Low battery on {{ event.node_id }}: {{ event.changes.battery_level }} %",
                        "to": "broadcast",
                        "channel": "{{ vars.channel }}",
                        "want_ack": False,
                    },
                },
            ],
            "mode": "parallel",
            "rate_limit": {"max_runs": 10, "per_seconds": 3600},
            "variables": {"channel": 0},
        },
    },
    {
        "name": "geofence-entry-notice",
        "category": "communication",
        "description": "A node enters a zone: broadcast a notice on a channel.",
        "definition": {
            "name": "geofence-entry-notice",
            "triggers": [{"type": "zone_entry", "config": {}}],
            "actions": [
                {
                    "type": "send_message",
                    "config": {
                        "text": "{{ event.node_id }} entered {{ event.zone }}",
                        "to": "broadcast",
                        "channel": "{{ vars.channel }}",
                        "want_ack": False,
                    },
                }
            ],
            "mode": "parallel",
            "variables": {"channel": 0},
        },
    },
    {
        "name": "geofence-exit-alert",
        "category": "emergency",
        "description": "A node leaves a zone (a ranger leaves the safe area): raise a critical alert.",
        "definition": {
            "name": "geofence-exit-alert",
            "triggers": [{"type": "zone_exit", "config": {}}],
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "critical",
                        "title": "{{ event.node_id }} left {{ event.zone }}",
                        "node_id": "{{ event.node_id }}",
                        "dedup_key": "zone-exit:{{ event.node_id }}",
                    },
                }
            ],
            "mode": "parallel",
        },
    },
    {
        "name": "node-offline-escalation",
        "category": "maintenance",
        "description": "A node goes silent: alert, wait, and escalate by mesh if it is still offline.",
        "definition": {
            "name": "node-offline-escalation",
            "triggers": [{"type": "user_offline", "config": {}}],
            "actions": [
                {
                    "id": "alert",
                    "type": "create_alert",
                    "config": {
                        "severity": "warning",
                        "title": "{{ event.node_id }} went offline",
                        "node_id": "{{ event.node_id }}",
                        "dedup_key": "offline:{{ event.node_id }}",
                    },
                },
                {"type": "delay", "config": {"seconds": "{{ vars.escalate_after_s }}"}},
                {
                    "type": "send_notification",
                    "config": {
                        "title": "{{ event.node_id }} still offline",
                        "message": "No word from {{ event.node_id }} for {{ vars.escalate_after_s }} s",
                        "severity": "warning",
                    },
                },
            ],
            "mode": "parallel",
            "variables": {"escalate_after_s": 1800},
        },
    },
    {
        "name": "board-offline-escalation",
        "category": "maintenance",
        "description": "A field board's link drops: alert (one per board) and tell a channel.",
        "definition": {
            "name": "board-offline-escalation",
            "triggers": [{"type": "board_offline", "config": {}}],
            # The station stopping, or an operator revoking or re-enrolling a board, is not an outage.
            "conditions": {
                "field": "event.reason",
                "op": "not_in",
                "value": ["station_stopping", "revoked", "reenrolled"],
            },
            "actions": [
                {
                    "id": "alert",
                    "type": "create_alert",
                    "config": {
                        "severity": "warning",
                        "title": "Board {{ event.board_id }} went offline",
                        "message": "reason: {{ event.reason }}",
                        "dedup_key": "board-offline:{{ event.board_id }}",
                    },
                },
                {
                    "type": "send_message",
                    "config": {
                        "text": "Board {{ event.board_id }} offline ({{ event.reason }})",
                        "to": "broadcast",
                        "channel": "{{ vars.channel }}",
                        "want_ack": False,
                    },
                },
            ],
            "mode": "parallel",
            "rate_limit": {"max_runs": 20, "per_seconds": 3600},
            "variables": {"channel": 0},
        },
    },
    {
        "name": "board-telemetry-threshold",
        "category": "monitoring",
        "description": "A board reports a temperature above 45: raise an alert (one per board).",
        "definition": {
            "name": "board-telemetry-threshold",
            "triggers": [{"type": "board_telemetry", "config": {"sensors": ["temperature"]}}],
            "conditions": {"field": "event.values.temperature", "op": "gt", "value": 45},
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "{{ vars.severity }}",
                        "title": "Board {{ event.board_id }} is hot",
                        "message": "temperature {{ event.values.temperature }}",
                        "dedup_key": "board-hot:{{ event.board_id }}",
                    },
                }
            ],
            "mode": "parallel",
            # telemetry comes every 30 s per board: the dedup key folds repeats into one alert
            "rate_limit": {"max_runs": 60, "per_seconds": 3600},
            "variables": {"severity": "warning"},
        },
    },
    {
        "name": "app-alert",
        "category": "monitoring",
        "description": "A WebAssembly app (telemetry-filter) reports a hot board: raise an alert (one per board).",
        "definition": {
            "name": "app-alert",
            "triggers": [{"type": "wasm_event", "config": {"kinds": ["temperature_alert"]}}],
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "{{ vars.severity }}",
                        "title": "Board {{ event.payload.board_id }} is hot",
                        "message": "{{ event.payload.temperature }} above {{ event.payload.threshold }}"
                        " (app {{ event.app }} {{ event.version }})",
                        "dedup_key": "app-alert:{{ event.app }}:{{ event.payload.board_id }}",
                    },
                }
            ],
            "mode": "parallel",
            # the app publishes on every hot reading: the dedup key folds repeats into one alert
            "rate_limit": {"max_runs": 60, "per_seconds": 3600},
            "variables": {"severity": "warning"},
        },
    },
    {
        "name": "daily-status-broadcast",
        "category": "communication",
        "description": "Every morning, broadcast that the station is up.",
        "definition": {
            "name": "daily-status-broadcast",
            "triggers": [{"type": "time_schedule", "config": {"cron": "0 7 * * *", "tz": "UTC"}}],
            "actions": [
                {
                    "type": "send_message",
                    "config": {
                        "text": "{{ vars.station_name }}: station up, {{ event.scheduled_for }}",
                        "to": "broadcast",
                        "channel": "{{ vars.channel }}",
                        "want_ack": False,
                    },
                }
            ],
            "catch_up": {"policy": "once"},
            "variables": {"station_name": "firefly", "channel": 0},
        },
    },
    {
        "name": "sos-keyword-alert",
        "category": "emergency",
        "description": "A mesh text says SOS or help: critical alert, and acknowledge to the sender.",
        "definition": {
            "name": "sos-keyword-alert",
            "triggers": [
                {"type": "message_received", "config": {"text_regex": "(?i)\\b(sos|help|mayday)\\b"}}
            ],
            "actions": [
                {
                    "type": "create_alert",
                    "config": {
                        "severity": "critical",
                        "title": "SOS from {{ event.from_node }}",
                        "message": "{{ event.text }}",
                        "node_id": "{{ event.from_node }}",
                        "dedup_key": "sos:{{ event.from_node }}",
                    },
                },
                {
                    "type": "send_message",
                    "config": {
                        "text": "Station received your SOS. Help is being organised.",
                        "to": "{{ event.from_node }}",
                        "want_ack": True,
                    },
                    "retry_count": 2,
                },
            ],
            "mode": "parallel",
        },
    },
    {
        "name": "welcome-new-node",
        "category": "communication",
        "description": "A node joins the mesh for the first time: greet it and put it in a group.",
        "definition": {
            "name": "welcome-new-node",
            "triggers": [{"type": "user_registered", "config": {}}],
            "actions": [
                {
                    "type": "update_user_group",
                    "config": {"node_id": "{{ event.node_id }}", "add": ["{{ vars.group }}"]},
                },
                {
                    "type": "send_message",
                    "config": {
                        "text": "Welcome to the {{ vars.site }} mesh",
                        "to": "{{ event.node_id }}",
                        "want_ack": True,
                    },
                },
            ],
            "mode": "parallel",
            "variables": {"group": "newcomers", "site": "field"},
        },
    },
    {
        "name": "alert-relay-webhook",
        "category": "monitoring",
        "description": "Relay every critical alert to an HTTP endpoint when the uplink is there.",
        "definition": {
            "name": "alert-relay-webhook",
            "triggers": [{"type": "alert_created", "config": {"severity": ["critical"]}}],
            "actions": [
                {
                    "type": "webhook",
                    "config": {
                        "url": "{{ vars.url }}",
                        "json": {"title": "{{ event.alert.title }}", "severity": "{{ event.severity }}"},
                    },
                    "retry_count": 3,
                    "retry_backoff_s": 10,
                }
            ],
            "mode": "queued",
            "variables": {"url": "http://127.0.0.1:9000/alerts"},
        },
    },
    {
        "name": "ping-responder",
        "category": "communication",
        "description": "Answer 'ping' sent to the station with 'pong' and the link quality.",
        "definition": {
            "name": "ping-responder",
            "triggers": [
                {"type": "message_received", "config": {"text_regex": "(?i)^ping$", "direct_only": True}}
            ],
            "actions": [
                {
                    "type": "send_message",
                    "config": {
                        "text": "pong from the station",
                        "to": "{{ event.from_node }}",
                        "want_ack": False,
                    },
                }
            ],
            "mode": "parallel",
            "rate_limit": {"max_runs": 30, "per_seconds": 60},
        },
    },
]


def seed_builtin(database: Database) -> None:
    for template in BUILTIN:
        store.upsert_builtin_template(database, template)


def instantiate(template: dict[str, Any], customizations: dict[str, Any]) -> dict[str, Any]:
    """The definition a template makes with these customisations (validated by the caller)."""
    allowed = {"name", "description", "variables", "triggers", "mode", "rate_limit", "catch_up"}
    unknown = sorted(set(customizations) - allowed)
    if unknown:
        raise DefinitionError(
            f"customizations.{unknown[0]}", f"cannot be customised (allowed: {sorted(allowed)})"
        )
    definition: dict[str, Any] = copy.deepcopy(template["template_data"])
    variables = customizations.get("variables", {})
    if not isinstance(variables, dict):
        raise DefinitionError("customizations.variables", "must be an object")
    definition["variables"] = {**definition.get("variables", {}), **variables}
    for key in allowed - {"variables"}:
        if key in customizations:
            definition[key] = customizations[key]
    return definition
