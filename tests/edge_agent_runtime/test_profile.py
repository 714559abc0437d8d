"""The TOML subset reader against tomllib: every board profile, accepted syntax, and the
constructs it refuses rather than misreads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge_agent.agent.profile import Profile, ProfileError, load_profile, loads

BOARDS = sorted((Path(__file__).resolve().parents[2] / "boards").glob("*.toml"))


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_every_board_profile_reads_as_tomllib_reads_it(path: Path) -> None:
    text = path.read_text()
    assert loads(text) == tomllib.loads(text)
    profile = load_profile(str(path))
    assert profile.name == path.stem
    assert profile.link["transport"] in ("stdio", "uart", "tcp")
    assert {"heartbeat_s", "telemetry_s", "watchdog_s", "sensors"} <= set(profile.agent)


def test_all_four_boards_exist() -> None:
    assert [p.stem for p in BOARDS] == ["esp32", "qemu-riscv32", "rp2040", "unix-sim"]
    esp32 = load_profile(str(BOARDS[0]))
    assert (esp32.link["uart_id"], esp32.link["tx"], esp32.link["rx"], esp32.link["baud"]) == (1, 17, 16, 115200)
    rp2040 = load_profile(str(BOARDS[2]))
    assert (rp2040.link["uart_id"], rp2040.link["tx"], rp2040.link["rx"], rp2040.link["baud"]) == (0, 0, 1, 115200)


SUBSET = [
    'a = "x"', "a = 'lit\\eral'", 'a = "esc \\" \\\\ \\n \\t \\u00e9 \\U0001F600"', "a = 1", "a = -17", "a = +3",
    "a = 1_000", "a = 0x1F", "a = 0o17", "a = 0b101", "a = 0", "a = 1.5", "a = -0.25", "a = 1e3", "a = 2.5E-2",
    "a = inf", "a = -inf", "a = true", "a = false", "a = []", "a = [1, 2, 3]", 'a = ["x", "y",]',
    'a = [\n  1,  # one\n  2,\n]', 'a = "has # hash" # comment', "[t]\nb = 1\n[u]\nc = [true]",
    "a-b_c = 1", 'a = ["]"]',
]


@pytest.mark.parametrize("text", SUBSET)
def test_subset_matches_tomllib(text: str) -> None:
    assert loads(text) == tomllib.loads(text)


REFUSED = [
    "a.b = 1", '"quoted" = 1', "a = {x = 1}", "[[arr]]\nx = 1", "[a.b]", "a = 1979-05-27", "a = 01", "a = 1__0",
    "a = _1", "a = 1.", "a = .5", 'a = """x"""', "a = [[1]]", "a = 1\na = 2", "[t]\n[t]", "a = tru", "a",
    'a = "open', "a = [1, 2", "a = 1 2", "a = -0x1", 'a = "\\q"', "a = 0xZZ",
]


@pytest.mark.parametrize("text", REFUSED)
def test_outside_the_subset_is_refused_not_misread(text: str) -> None:
    with pytest.raises(ProfileError):
        loads(text)


def test_errors_name_the_line() -> None:
    with pytest.raises(ProfileError) as caught:
        loads('name = "x"\n\n[agent]\nheartbeat_s = 5 s\n')
    assert caught.value.line == 4


def test_profile_needs_a_name_and_a_known_transport() -> None:
    with pytest.raises(ProfileError):
        Profile({})
    with pytest.raises(ProfileError):
        Profile({"name": "x", "link": {"transport": "carrier-pigeon"}})
