"""The [boards] section: defaults, links, and what is refused at start-up."""

from __future__ import annotations

import pytest

from station.config import ConfigError, validate_config


def test_defaults_and_links() -> None:
    config = validate_config({"boards": {"links": [{"name": "bench", "url": "serial:///dev/ttyUSB0?baud=115200"},
                                                   {"name": "qemu", "url": "tcp://127.0.0.1:5555"},
                                                   {"name": "sim", "url": "pty:///dev/pts/7"}]}})
    boards = config.boards
    assert boards.cert_valid_days == 365 and boards.enrollment_code_ttl_s == 900.0
    assert boards.heartbeat_timeout_s < boards.offline_after_s
    assert [link.name for link in boards.links] == ["bench", "qemu", "sim"]


@pytest.mark.parametrize(("boards", "key"), [
    ({"links": [{"name": "x", "url": "http://host/"}]}, "boards.links.0.url"),
    ({"links": [{"name": "x", "url": "tcp://host"}]}, "boards.links.0.url"),
    ({"links": [{"name": "x", "url": "pty://"}]}, "boards.links.0.url"),
    ({"links": [{"name": "x", "url": "pty:///dev/pts/1"}, {"name": "x", "url": "pty:///dev/pts/2"}]}, "boards"),
    ({"heartbeat_timeout_s": 30, "offline_after_s": 30}, "boards"),
    ({"cert_valid_days": 0}, "boards.cert_valid_days"),
    ({"enrollment_code_ttl_s": 10}, "boards.enrollment_code_ttl_s"),
    ({"unknown": 1}, "boards.unknown"),
])
def test_refused(boards: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config({"boards": boards})
    assert caught.value.key == key
