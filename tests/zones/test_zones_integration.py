"""The real station and the radio simulator: a scripted node walks into two zones (one from
the config file, one made with the CLI) and out again, goes silent (offline) and speaks
again (online). Observed through the API and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness import Sim, Station, free_port, wait_for

CAMP = (46.60, 6.80)  # well away from the simulator's other nodes
NORTH_1KM = 1000 / 111_195.0
OFFLINE_AFTER_S = 3.0
INSIDE_STEPS = range(3, 13)  # repeated, so a slow connect still sees the node inside
OUTSIDE_STEPS = range(14, 17)
BACK_AT_S = 26  # after the node went offline (last report at 16 + 3 s threshold)


@dataclass
class ZoneStation(Station):
    top: str = ""  # top-level keys go before every table
    tables: str = ""

    def write_config(self) -> Path:
        path = super().write_config()
        path.write_text(f"{self.top}\n{path.read_text()}\n{self.tables}\n")
        return path


def write_script(tmp: Path) -> Path:
    steps = [f"[[step]]\nat = {at}\nnode = 0\nposition = [{CAMP[0]}, {CAMP[1]}]\n" for at in INSIDE_STEPS]
    steps += [f"[[step]]\nat = {at}\nnode = 0\nposition = [{CAMP[0] + NORTH_1KM}, {CAMP[1]}]\n"
              for at in OUTSIDE_STEPS]
    steps.append(f"[[step]]\nat = {BACK_AT_S}\nnode = 0\ntelemetry = true\n")
    path = tmp / "walk.toml"
    path.write_text("\n".join(steps))
    return path


def test_a_node_walks_into_and_out_of_zones_and_goes_offline(  # type: ignore[no-untyped-def]
    tmp_path: Path, make_sim, station_factory,
) -> None:
    sim_port = free_port()
    station = ZoneStation(
        tmp_path, [("sim", f"tcp://127.0.0.1:{sim_port}")], top="zones_hysteresis_m = 25",
        tables=(f"[mesh]\nnode_offline_after_s = {OFFLINE_AFTER_S}\n"
                f"[[zones]]\nname = \"camp\"\ncenter = [{CAMP[0]}, {CAMP[1]}]\nradius_m = 200\n"))
    station_factory.append(station)
    station.start(wait_connected=False)  # the station first: the script's clock starts with the sim
    polygon = ";".join(f"{CAMP[0] + dlat},{CAMP[1] + dlon}"
                       for dlat, dlon in ((-0.002, -0.003), (0.002, -0.003), (0.002, 0.003), (-0.002, 0.003)))
    created = station.cli("zone", "create", "field", "--polygon", polygon, "--description", "the pasture",
                          "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["kind"] == "polygon"

    sim: Sim = make_sim("--nodes", "3", "--no-airtime", "--position-interval", "0",
                        "--telemetry-interval", "0", "--nodeinfo-interval", "0", "--chatter", "0",
                        "--script", str(write_script(tmp_path)), port=sim_port)
    station.wait_radios_connected()
    walker = sim.node_ids()[0]

    def inside(zone: str) -> bool:
        return walker in [n["node_id"] for n in station.get(f"/zones/{zone}/nodes")["nodes"]]

    wait_for(lambda: inside("camp") and inside("field"), 20, "the walker inside both zones")
    listed = station.cli("zone", "nodes", "camp", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [n["node_id"] for n in json.loads(listed.stdout)] == [walker]

    def crossings(zone: str) -> list[str]:
        return [e["kind"] for e in station.get(f"/zones/{zone}/events")["events"] if e["node_id"] == walker]

    both = ["entered", "exited"]
    wait_for(lambda: crossings("camp") == both and crossings("field") == both, 20, "one entry, one exit each")
    assert not inside("camp") and not inside("field")
    services = httpx.get(f"{station.api}/api/v1/health", timeout=5).json()["services"]
    assert (services["zones"]["entries"], services["zones"]["exits"]) == (2, 2)

    def presence() -> dict[str, bool]:
        return {n["node_id"]: n["online"] for n in station.get("/mesh/presence")["nodes"]}

    wait_for(lambda: presence().get(walker) is False, 20, "the silent walker offline")
    wait_for(lambda: presence().get(walker) is True, 30, "the walker online again")
    assert crossings("camp") == ["entered", "exited"]  # repeated reports inside did not re-enter
    assert "Traceback" not in station.log()


def test_zone_and_group_commands(make_sim, make_station) -> None:  # type: ignore[no-untyped-def]
    sim = make_sim("--nodes", "2", "--no-airtime")
    station = make_station([("sim", sim.url)])
    node = sim.node_ids()[0]

    made = station.cli("zone", "create", "spring", "--circle", "46.56,6.78,150")
    assert made.returncode == 0, made.stderr
    shown = station.cli("zone", "show", "spring", "--json")
    assert json.loads(shown.stdout)["radius_m"] == 150
    changed = station.cli("zone", "update", "spring", "--radius", "300", "--inactive", "--json")
    assert changed.returncode == 0, changed.stderr
    assert (json.loads(changed.stdout)["radius_m"], json.loads(changed.stdout)["active"]) == (300, False)
    listed = station.cli("zone", "list", "--json")
    assert [z["name"] for z in json.loads(listed.stdout)] == ["spring"]
    assert station.cli("zone", "list").returncode == 0
    usage = [
        station.cli("zone", "create", "x", "--circle", "46.56,6.78"),
        station.cli("zone", "create", "x", "--circle", "46.56,6.78,0"),
        station.cli("zone", "create", "x", "--polygon", "1,1;1,2"),
        station.cli("zone", "create", "x"),
        station.cli("mesh", "groups", "bob", "--set", "rangers"),
    ]
    assert [r.returncode for r in usage] == [2, 2, 2, 2, 2], [r.stderr for r in usage]
    assert "radius_m" in usage[1].stderr and "points" in usage[2].stderr
    assert station.cli("zone", "show", "nope").returncode == 4
    assert station.cli("zone", "create", "spring", "--circle", "1,1,10").returncode == 1  # 409: exists
    deleted = station.cli("zone", "delete", "spring", "--json")
    assert json.loads(deleted.stdout) == {"deleted": "spring"}

    grouped = station.cli("mesh", "groups", node, "--set", "rangers,medics", "--json")
    assert grouped.returncode == 0, grouped.stderr
    assert json.loads(grouped.stdout)["groups"] == ["medics", "rangers"]
    shown_groups = station.cli("mesh", "groups", node)
    assert shown_groups.returncode == 0 and "medics, rangers" in shown_groups.stdout
    assert station.get("/groups/rangers")["members"][0]["node_id"] == node
    cleared = station.cli("mesh", "groups", node, "--set", "", "--json")
    assert json.loads(cleared.stdout)["groups"] == []
