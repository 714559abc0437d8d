"""Definition validation names the path of the bad field; trigger filters match the events
their subsystems publish."""

from __future__ import annotations

from typing import Any

import pytest

from station.processes.actions import load_builtin_actions
from station.processes.definition import (
    ProcessDefinition,
    check_subprocess_graph,
    count_steps,
    parse_definition,
)
from station.processes.errors import DefinitionError
from station.processes.templates import BUILTIN, instantiate
from station.processes.triggers import matches, topic_matches

load_builtin_actions()
NOOP = [{"type": "log", "config": {"message": "x"}}]


def bad(definition: dict[str, Any]) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    return caught.value


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"name": "p", "triggers": [{"type": "message_received", "config": {"channel": 9}}], "actions": NOOP},
         "triggers.0.config.channel"),
        ({"name": "p", "triggers": [{"type": "message_received", "config": {"text_regex": "("}}], "actions": NOOP},
         "triggers.0.config.text_regex"),
        ({"name": "p", "triggers": [{"type": "mqtt_message", "config": {}}], "actions": NOOP},
         "triggers.0.config.topic"),
        ({"name": "p", "triggers": [{"type": "mqtt_message", "config": {"topic": "a/#/b"}}], "actions": NOOP},
         "triggers.0.config.topic"),
        ({"name": "p", "triggers": [{"type": "zone_entry", "config": {"nodes": ["bob"]}}], "actions": NOOP},
         "triggers.0.config.nodes"),
        ({"name": "p", "triggers": [{"type": "time_schedule", "config": {"every": "0s", "tz": "UTC"}}],
          "actions": NOOP}, "triggers.0.config"),
        ({"name": "p", "triggers": [{"type": "time_schedule", "config": {"cron": "0 7 * * *", "tz": "Mars/Olympus"}}],
          "actions": NOOP}, "triggers.0.config.tz"),
        ({"name": "p", "actions": [{"type": "send_message", "config": {"text": "x", "channel": 12}}]},
         "actions.0.config.channel"),
        ({"name": "p", "actions": [{"type": "delay", "config": {"seconds": 1, "extra": True}}]},
         "actions.0.config.extra"),
        ({"name": "p", "actions": [{"type": "parallel", "config": {"branches": [[{"type": "nope"}]]}}]},
         "actions.0.config.branches.0.0.type"),
        ({"name": "p", "actions": [{"id": "a", **NOOP[0]}, {"id": "a", **NOOP[0]}]}, "actions.1.id"),
        ({"name": "p", "actions": NOOP, "rate_limit": {"max_runs": 0, "per_seconds": 1}}, "rate_limit.max_runs"),
        ({"name": "p", "actions": NOOP, "mode": "sometimes"}, "mode"),
    ],
)
def test_bad_definitions_name_the_path(definition: dict[str, Any], path: str) -> None:
    assert bad(definition).path.startswith(path)


def test_templated_values_are_checked_when_they_run_not_when_created() -> None:
    definition = parse_definition({"name": "p", "actions": [
        {"type": "send_message", "config": {"text": "hi", "channel": "{{ vars.channel }}"}}],
        "variables": {"channel": 2}})
    assert definition.actions[0].config["channel"] == "{{ vars.channel }}"


def test_subprocess_graph_finds_cycles_and_unknown_processes() -> None:
    known = {
        "a": parse_definition({"name": "a", "actions": [{"type": "call_process", "config": {"process": "b"}}]}),
        "b": parse_definition({"name": "b", "actions": NOOP}),
    }
    closing = parse_definition({"name": "b", "actions": [{"type": "call_process", "config": {"process": "a"}}]})
    with pytest.raises(DefinitionError, match="cycle: b -> a -> b"):
        check_subprocess_graph(closing, known.get)
    orphan = parse_definition({"name": "c", "actions": [{"type": "call_process", "config": {"process": "zz"}}]})
    with pytest.raises(DefinitionError, match="unknown process 'zz'"):
        check_subprocess_graph(orphan, known.get)
    check_subprocess_graph(known["a"], known.get)


def test_step_count_includes_parallel_branches() -> None:
    definition = parse_definition({"name": "p", "actions": [
        *NOOP, {"type": "parallel", "config": {"branches": [NOOP, NOOP + NOOP]}}]})
    assert count_steps(definition.actions) == 5


@pytest.mark.parametrize("template", BUILTIN, ids=[t["name"] for t in BUILTIN])
def test_every_builtin_template_is_a_valid_definition(template: dict[str, Any]) -> None:
    made = instantiate({"template_data": template["definition"]}, {"name": f"my-{template['name']}"})
    assert isinstance(parse_definition(made), ProcessDefinition)


def test_topic_filters() -> None:
    assert topic_matches("a/+/c", "a/b/c")
    assert topic_matches("a/#", "a/b/c/d")
    assert topic_matches("a/#", "a")
    assert not topic_matches("a/+", "a/b/c")
    assert not topic_matches("a/b", "a/b/c")


def test_trigger_filters() -> None:
    text = {"from_node": "!0000000a", "to_node": "broadcast", "channel": 0, "text": "Need HELP now", "radio": "r"}
    assert matches("message_received", {"text_contains": "help"}, text)
    assert matches("message_received", {"text_regex": "(?i)help", "from": ["!0000000a"]}, text)
    assert not matches("message_received", {"direct_only": True}, text)
    assert not matches("message_received", {"channel": 1}, text)
    zone = {"node_id": "!0000000a", "zone": "camp"}
    assert matches("zone_entry", {"zone": "camp"}, zone)
    assert not matches("zone_entry", {"zone": "ridge"}, zone)
    alert = {"severity": "critical", "source": "operator"}
    assert matches("alert_created", {"severity": ["critical"]}, alert)
    assert not matches("alert_created", {"severity": ["info"]}, alert)
    group = {"node_id": "!0000000a", "added": ["rangers"], "removed": []}
    assert matches("user_group_changed", {"group": "rangers"}, group)
    assert not matches("user_group_changed", {"group": "sensors"}, group)
    telemetry = {"node_id": "!0000000a", "changes": {"battery_level": 12, "latitude": None}}
    assert matches("node_updated", {"fields": ["battery_level"]}, telemetry)
    assert not matches("node_updated", {"fields": ["latitude"]}, telemetry)


def test_every_event_trigger_names_a_real_bus_event() -> None:
    import station.alerts.events
    import station.boards.events
    import station.mesh.events
    import station.mqtt.events
    import station.presence.events
    import station.processes.events
    import station.wasm.events
    import station.zones.events
    from station.bus import Event
    from station.processes.triggers import EVENT_TRIGGERS

    def subclasses(cls: type) -> set[str]:
        found = set()
        for sub in cls.__subclasses__():
            found |= {sub.__name__, *subclasses(sub)}
        return found

    modules = (station.alerts.events, station.boards.events, station.mesh.events, station.mqtt.events,
               station.presence.events, station.processes.events, station.wasm.events, station.zones.events)
    assert modules
    assert set(EVENT_TRIGGERS) <= subclasses(Event)
