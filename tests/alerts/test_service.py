"""AlertService against a real SQLite database and a real EventBus: validation, dedup folding,
the state machine, and events published only after the change is committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from station.alerts import (
    AlertAcknowledged,
    AlertCreated,
    AlertEvent,
    AlertNotFound,
    AlertResolved,
    AlertService,
    InvalidAlert,
    InvalidTransition,
)
from station.alerts.service import MAX_LIST_LIMIT, MESSAGE_MAX_CHARS, TITLE_MAX_CHARS
from station.bus import EventBus
from station.store import Database, open_database

NODE = "!a1b2c3d4"




@pytest.fixture
def events(bus: EventBus) -> list[AlertEvent]:
    seen: list[AlertEvent] = []
    bus.subscribe(AlertEvent, seen.append)
    return seen


@pytest.fixture
def alerts(database: Database, bus: EventBus) -> AlertService:
    return AlertService(database, bus)


def committed_status(database: Database, alert_id: str) -> str | None:
    """Read through a second connection: sees only what was committed."""
    other = sqlite3.connect(database.path)
    try:
        row = other.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    finally:
        other.close()
    return None if row is None else str(row[0])


# ---- create and validation ------------------------------------------------------------

async def test_create_stores_an_active_alert_and_publishes_alert_created(
        alerts: AlertService, events: list[AlertEvent]) -> None:
    alert = alerts.create("warning", "Battery low", "3.41 V", source="mesh", node_id="!A1B2C3D4")

    assert alert["status"] == "active"
    assert alert["deduplicated"] is False
    assert alert["occurrences"] == 1
    assert alert["node_id"] == NODE  # canonical lower case
    assert alerts.get(alert["id"])["title"] == "Battery low"
    [event] = events
    assert isinstance(event, AlertCreated)
    assert (event.alert_id, event.severity, event.node_id, event.source) == (
        alert["id"], "warning", NODE, "mesh")
    assert event.alert["message"] == "3.41 V"


@pytest.mark.parametrize(("kwargs", "field", "says"), [
    ({"severity": "urgent"}, "severity", "must be one of info, warning, critical"),
    ({"title": ""}, "title", f"1 to {TITLE_MAX_CHARS} characters"),
    ({"title": "   "}, "title", f"1 to {TITLE_MAX_CHARS} characters"),
    ({"title": "x" * (TITLE_MAX_CHARS + 1)}, "title", f"(is {TITLE_MAX_CHARS + 1})"),
    ({"title": "two\nlines"}, "title", "single line"),
    ({"message": "m" * (MESSAGE_MAX_CHARS + 1)}, "message", f"0 to {MESSAGE_MAX_CHARS} characters"),
    ({"source": ""}, "source", "1 to 100 characters"),
    ({"node_id": "node-7"}, "node_id", "'!a1b2c3d4'"),
    ({"node_id": "broadcast"}, "node_id", "'!a1b2c3d4'"),
    ({"dedup_key": ""}, "dedup_key", "1 to 200 characters"),
])
async def test_bad_input_names_the_field_and_stores_nothing(
        alerts: AlertService, events: list[AlertEvent], kwargs: dict[str, str], field: str,
        says: str) -> None:
    arguments = {"severity": "info", "title": "t", **kwargs}
    with pytest.raises(InvalidAlert) as caught:
        alerts.create(**arguments)

    assert caught.value.field == field
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"{field} = ")
    assert alerts.list() == []
    assert events == []


async def test_limits_are_inclusive(alerts: AlertService) -> None:
    alert = alerts.create("info", "x" * TITLE_MAX_CHARS, "m" * MESSAGE_MAX_CHARS)
    assert len(alert["title"]) == TITLE_MAX_CHARS


# ---- dedup ----------------------------------------------------------------------------

async def test_duplicate_key_folds_into_the_unresolved_alert(
        alerts: AlertService, events: list[AlertEvent]) -> None:
    first = alerts.create("warning", "Board offline", dedup_key="board:7:offline")
    again = alerts.create("warning", "Board offline", dedup_key="board:7:offline")
    third = alerts.create("critical", "Board offline still", dedup_key="board:7:offline")

    assert again["id"] == third["id"] == first["id"]
    assert (again["deduplicated"], third["deduplicated"]) == (True, True)
    assert third["occurrences"] == 3
    assert third["updated_at"] >= first["updated_at"]
    assert third["severity"] == "warning"  # a fold counts; it does not rewrite the alert
    assert len(alerts.list()) == 1
    assert [type(e) for e in events] == [AlertCreated]  # no AlertCreated for a fold


async def test_a_fold_keeps_an_acknowledged_alert_acknowledged(alerts: AlertService) -> None:
    first = alerts.create("warning", "Board offline", dedup_key="k")
    alerts.acknowledge(first["id"], "ana")
    again = alerts.create("warning", "Board offline", dedup_key="k")
    assert (again["id"], again["status"], again["occurrences"]) == (first["id"], "acknowledged", 2)


async def test_after_resolve_the_same_key_raises_a_new_alert(
        alerts: AlertService, events: list[AlertEvent]) -> None:
    first = alerts.create("warning", "Board offline", dedup_key="k")
    alerts.resolve(first["id"], "ana")
    second = alerts.create("warning", "Board offline", dedup_key="k")

    assert second["id"] != first["id"]
    assert second["deduplicated"] is False
    assert [type(e) for e in events] == [AlertCreated, AlertResolved, AlertCreated]


async def test_alerts_without_a_key_or_with_other_keys_never_fold(alerts: AlertService) -> None:
    alerts.create("info", "same title")
    alerts.create("info", "same title")
    alerts.create("info", "same title", dedup_key="a")
    alerts.create("info", "same title", dedup_key="b")
    assert len(alerts.list()) == 4


# ---- transitions ----------------------------------------------------------------------

async def test_active_acknowledged_resolved(alerts: AlertService, events: list[AlertEvent]) -> None:
    alert = alerts.create("critical", "Process failed", source="process:p1")
    acknowledged = alerts.acknowledge(alert["id"], "ana")
    resolved = alerts.resolve(alert["id"], "process:p2")

    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_by"] == "ana"
    assert acknowledged["acknowledged_at"] is not None
    assert resolved["status"] == "resolved"
    assert (resolved["resolved_by"], resolved["acknowledged_by"]) == ("process:p2", "ana")
    assert [type(e) for e in events] == [AlertCreated, AlertAcknowledged, AlertResolved]
    assert isinstance(events[1], AlertAcknowledged) and events[1].by == "ana"
    assert isinstance(events[2], AlertResolved) and events[2].by == "process:p2"
    assert events[2].alert["status"] == "resolved"


async def test_active_can_be_resolved_without_acknowledging(alerts: AlertService) -> None:
    alert = alerts.create("info", "Operator note")
    resolved = alerts.resolve(alert["id"], "ana")
    assert resolved["status"] == "resolved"
    assert resolved["acknowledged_at"] is None


async def test_acknowledging_twice_is_a_no_op(alerts: AlertService, events: list[AlertEvent]) -> None:
    alert = alerts.create("warning", "Battery low")
    first = alerts.acknowledge(alert["id"], "ana")
    second = alerts.acknowledge(alert["id"], "bo")

    assert second == first  # still ana's acknowledgement, same time
    assert [type(e) for e in events] == [AlertCreated, AlertAcknowledged]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_nothing_leaves_resolved(alerts: AlertService, events: list[AlertEvent], action: str) -> None:
    alert = alerts.create("warning", "Battery low")
    alerts.resolve(alert["id"], "ana")
    with pytest.raises(InvalidTransition) as caught:
        getattr(alerts, action)(alert["id"], "bo")

    assert (caught.value.alert_id, caught.value.status, caught.value.action) == (
        alert["id"], "resolved", action)
    assert "is resolved" in str(caught.value)
    assert alerts.get(alert["id"])["resolved_by"] == "ana"
    assert len(events) == 2


@pytest.mark.parametrize("action", ["get", "acknowledge", "resolve"])
async def test_unknown_ids_raise_alert_not_found(alerts: AlertService, action: str) -> None:
    arguments = ("nope",) if action == "get" else ("nope", "ana")
    with pytest.raises(AlertNotFound) as caught:
        getattr(alerts, action)(*arguments)
    assert caught.value.alert_id == "nope"


async def test_an_actor_is_required(alerts: AlertService) -> None:
    alert = alerts.create("info", "x")
    with pytest.raises(InvalidAlert) as caught:
        alerts.acknowledge(alert["id"], " ")
    assert caught.value.field == "by"
    assert alerts.get(alert["id"])["status"] == "active"


async def test_every_change_is_committed_before_its_event(database: Database, bus: EventBus) -> None:
    alerts = AlertService(database, bus)
    seen: list[tuple[str, str | None]] = []
    bus.subscribe(AlertEvent,
                  lambda e: seen.append((type(e).__name__, committed_status(database, e.alert_id))))

    alert = alerts.create("warning", "Battery low")
    alerts.acknowledge(alert["id"], "ana")
    alerts.resolve(alert["id"], "ana")

    assert seen == [("AlertCreated", "active"), ("AlertAcknowledged", "acknowledged"),
                    ("AlertResolved", "resolved")]


# ---- reading, counts, health ----------------------------------------------------------

async def test_list_filters_newest_first_and_bounds_limit(alerts: AlertService) -> None:
    info = alerts.create("info", "one")
    critical = alerts.create("critical", "two")
    warning = alerts.create("warning", "three")
    alerts.acknowledge(critical["id"], "ana")

    assert [a["id"] for a in alerts.list()] == [warning["id"], critical["id"], info["id"]]
    assert [a["id"] for a in alerts.list(status="acknowledged")] == [critical["id"]]
    assert [a["id"] for a in alerts.list(severity="info")] == [info["id"]]
    assert alerts.list(status="active", severity="critical") == []
    assert len(alerts.list(limit=2)) == 2
    for bad in ({"status": "open"}, {"severity": "loud"}, {"limit": 0}, {"limit": MAX_LIST_LIMIT + 1}):
        with pytest.raises(InvalidAlert) as caught:
            alerts.list(**bad)
        assert caught.value.field == next(iter(bad))


async def test_counts_and_health_detail(alerts: AlertService) -> None:
    await alerts.start()
    assert alerts.health.detail == {"active": 0, "acknowledged": 0}
    first = alerts.create("warning", "a")
    second = alerts.create("warning", "b")
    alerts.create("warning", "c")
    alerts.acknowledge(first["id"], "ana")
    alerts.resolve(second["id"], "ana")

    assert alerts.counts() == {"active": 1, "acknowledged": 1, "resolved": 1}
    assert alerts.health.detail == {"active": 1, "acknowledged": 1}


async def test_alerts_survive_reopening_the_database(tmp_path: Path) -> None:
    database = open_database(tmp_path / "station.db")
    alert = AlertService(database, EventBus()).create("critical", "Board offline", dedup_key="k")
    database.close()

    reopened = open_database(tmp_path / "station.db")
    alerts = AlertService(reopened, EventBus())
    assert alerts.get(alert["id"])["status"] == "active"
    assert alerts.create("critical", "Board offline", dedup_key="k")["id"] == alert["id"]
    reopened.close()


async def test_the_table_refuses_two_unresolved_alerts_with_one_key(database: Database) -> None:
    """The partial unique index backs the dedup rule even against a writer that skips it."""
    row = ("warning", "t", "", "operator", "active", 0.0, 0.0)
    insert = ("INSERT INTO alerts (id, severity, title, message, source, status, created_at, updated_at,"
              " dedup_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'k')")
    with database.transaction() as db:
        db.execute(insert, ("a", *row))
    with pytest.raises(sqlite3.IntegrityError), database.transaction() as db:
        db.execute(insert, ("b", *row))
