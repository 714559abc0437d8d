"""`[[zones]]`, `zones_hysteresis_m` and `[mesh] node_offline_after_s` in the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config(None, env={})
    assert config.zones == [] and config.zones_hysteresis_m == 25.0
    assert config.mesh.node_offline_after_s == 7200.0


def test_zone_tables_are_typed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
zones_hysteresis_m = 10
[mesh]
node_offline_after_s = 600
[[zones]]
name = "camp"
center = [46.56, 6.78]
radius_m = 250
description = "base camp"
[[zones]]
name = "pasture"
points = [[46.55, 6.77], [46.56, 6.77], [46.56, 6.79]]
active = false
"""), env={"FIREFLY_ZONES_HYSTERESIS_M": "15"})
    assert config.zones_hysteresis_m == 15
    assert config.mesh.node_offline_after_s == 600
    camp, pasture = config.zones
    assert (camp.center, camp.radius_m, camp.description) == ((46.56, 6.78), 250, "base camp")
    assert pasture.points is not None and len(pasture.points) == 3 and not pasture.active


@pytest.mark.parametrize(
    ("text", "key", "mentioned"),
    [
        ('[[zones]]\nname = "a"\ncenter = [91, 0]\nradius_m = 5\n', "zones.0.center.0", "90"),
        ('[[zones]]\nname = "a"\ncenter = [0, -181]\nradius_m = 5\n', "zones.0.center.1", "-180"),
        ('[[zones]]\nname = "a"\ncenter = [0, 0]\nradius_m = 1000001\n', "zones.0.radius_m", "1000000"),
        ('[[zones]]\nname = "a"\ncenter = [0, 0]\n', "zones.0", "radius_m"),
        ('[[zones]]\nname = "a"\npoints = [[0, 0], [0, 1]]\n', "zones.0.points", "3"),
        ('[[zones]]\nname = "a"\npoints = [[0, 0], [0, 1], [0, 0]]\n', "zones.0.points", "distinct"),
        ('[[zones]]\nname = "a"\nradius = 5\n', "zones.0.radius", "unknown option"),
        ('[[zones]]\nname = "a"\ncenter = [0, 0]\nradius_m = 5\n[[zones]]\nname = "a"\ncenter = [0, 0]\n'
         'radius_m = 5\n', "zones", "repeated: a"),
        ("zones_hysteresis_m = -1\n", "zones_hysteresis_m", "0"),
        ("[mesh]\nnode_offline_after_s = 0\n", "mesh.node_offline_after_s", "0"),
    ],
)
def test_bad_zone_config_names_the_key(tmp_path: Path, text: str, key: str, mentioned: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert caught.value.key == key
    assert mentioned in str(caught.value)
