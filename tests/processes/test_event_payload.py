"""What conditions, templates and the journal see of a bus event."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from station.mqtt.events import MqttMessageReceived
from station.processes.engine import event_payload

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(payload=JSON_VALUES, topic=st.text(max_size=10), qos=st.integers(0, 2), retain=st.booleans())
def test_the_payload_is_every_field_and_the_event_type(payload: object, topic: str, qos: int, retain: bool) -> None:
    event = MqttMessageReceived(topic=topic, payload=payload, qos=qos, retain=retain)
    assert event_payload(event) == {**dataclasses.asdict(event), "type": "MqttMessageReceived"}


def test_a_run_changing_a_nested_value_does_not_change_the_event() -> None:
    event = MqttMessageReceived(topic="t", payload={"levels": [1, 2]}, qos=0, retain=False)
    event_payload(event)["payload"]["levels"].append(3)
    assert event.payload == {"levels": [1, 2]}
