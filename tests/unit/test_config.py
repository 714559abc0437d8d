from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    config = load_config(None, env={})
    assert config.api.port == 8080
    assert config.store.synchronous == "FULL"
    assert config.mesh.outbox.min_text_interval_s == 2.0


def test_file_values_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path, '[api]\nport = 9000\n[[mesh.radios]]\nname = "lora0"\nurl = "serial:///dev/ttyUSB0"\n')
    config = load_config(path, env={})
    assert config.api.port == 9000
    assert config.mesh.radios[0].url == "serial:///dev/ttyUSB0"


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = 9000\n")
    config = load_config(path, env={"FIREFLY_API__PORT": "9100", "FIREFLY_DATA_DIR": "/srv/ff",
                                    "FIREFLY_MESH__OUTBOX__MAX_ATTEMPTS": "5"})
    assert config.api.port == 9100
    assert config.data_dir == Path("/srv/ff")
    assert config.mesh.outbox.max_attempts == 5


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "log_level = 'DEBUG'\n")
    assert load_config(None, env={"FIREFLY_CONFIG": str(path)}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("[api]\nport = 70000\n", "api.port", 70000),
        ("[api]\nprot = 1\n", "api.prot", 1),
        ('log_level = "LOUD"\n', "log_level", "LOUD"),
        ('[[mesh.radios]]\nurl = "usb://x"\n', "mesh.radios.0.url", "usb://x"),
        ("[mesh.outbox]\nmax_attempts = 0\n", "mesh.outbox.max_attempts", 0),
    ],
)
def test_invalid_value_names_key_value_and_rule(tmp_path: Path, text: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert caught.value.key == key
    assert caught.value.value == value
    message = str(caught.value)
    assert key in message and repr(value) in message and caught.value.allowed in message


def test_unknown_option_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        load_config(write(tmp_path, "colour = 'red'\n"), env={})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[api\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
