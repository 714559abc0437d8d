"""Node groups: set/add/remove/members, NodeGroupChanged, and input refused naming the field."""

from __future__ import annotations

import pytest

from station.bus import EventBus
from station.presence import GroupNotFound, InvalidNodeInput, NodeGroupChanged, NodeGroups
from station.store import Database
from station.store import mesh as mesh_store

ANN, BOB = "!000000a1", "!000000b2"


@pytest.fixture
def groups(database: Database) -> tuple[NodeGroups, list[NodeGroupChanged]]:
    bus = EventBus()
    changes: list[NodeGroupChanged] = []
    bus.subscribe(NodeGroupChanged, changes.append)
    return NodeGroups(database, bus, clock=lambda: 1000.0), changes


def test_set_add_remove_and_members(groups: tuple[NodeGroups, list[NodeGroupChanged]]) -> None:
    node_groups, changes = groups
    assert node_groups.groups_of(ANN) == []
    assert node_groups.set_groups(ANN, ["rangers", "medics", "rangers"]) == ["medics", "rangers"]
    assert (changes[-1].added, changes[-1].removed, changes[-1].groups) == (
        ["medics", "rangers"], [], ["medics", "rangers"])
    assert node_groups.add(BOB, "rangers") == ["rangers"]
    assert node_groups.members("rangers") == [ANN, BOB]
    assert node_groups.set_groups(ANN, ["rangers", "sensors"]) == ["rangers", "sensors"]
    assert (changes[-1].added, changes[-1].removed) == (["sensors"], ["medics"])
    assert node_groups.remove(ANN, "rangers") == ["sensors"]
    assert node_groups.members("rangers") == [BOB]
    assert node_groups.members("medics") == []
    assert node_groups.counts() == {"rangers": 1, "sensors": 1}


def test_no_change_publishes_nothing(groups: tuple[NodeGroups, list[NodeGroupChanged]]) -> None:
    node_groups, changes = groups
    node_groups.set_groups(ANN, ["rangers"])
    node_groups.set_groups(ANN, ["rangers"])
    node_groups.add(ANN, "rangers")
    node_groups.remove(ANN, "medics")
    assert len(changes) == 1


def test_node_ids_are_canonical(groups: tuple[NodeGroups, list[NodeGroupChanged]]) -> None:
    node_groups, changes = groups
    node_groups.set_groups("!000000A1", ["rangers"])
    assert node_groups.groups_of(ANN) == ["rangers"] and changes[0].node_id == ANN


@pytest.mark.parametrize(
    ("node", "wanted", "field"),
    [
        ("bob", ["rangers"], "node_id"),
        ("!12345", ["rangers"], "node_id"),
        (ANN, ["bad name"], "groups"),
        (ANN, [""], "groups"),
        (ANN, [f"g{i}" for i in range(33)], "groups"),
    ],
)
def test_bad_input_names_the_field(groups: tuple[NodeGroups, list[NodeGroupChanged]], node: str,
                                   wanted: list[str], field: str) -> None:
    node_groups, changes = groups
    with pytest.raises(InvalidNodeInput) as caught:
        node_groups.set_groups(node, wanted)
    assert caught.value.field == field and str(caught.value).startswith(field)
    assert changes == []


def test_member_rows_carry_names_and_an_empty_group_is_not_found(
    groups: tuple[NodeGroups, list[NodeGroupChanged]], database: Database,
) -> None:
    node_groups, _ = groups
    mesh_store.upsert_node(database, 0xA1, {"node_id": ANN, "long_name": "Ann"})
    node_groups.set_groups(ANN, ["rangers"])
    node_groups.set_groups(BOB, ["rangers"])  # a node not heard yet can be put in a group
    rows = node_groups.member_rows("rangers")
    assert [(r["node_id"], r["long_name"], r["added_at"]) for r in rows] == [(ANN, "Ann", 1000.0),
                                                                             (BOB, None, 1000.0)]
    with pytest.raises(GroupNotFound):
        node_groups.member_rows("nobody")
