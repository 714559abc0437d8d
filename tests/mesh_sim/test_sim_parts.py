"""The simulator's pure parts: options, scripts, dedup, duty cycle, world and handshake."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshtastic.protobuf import channel_pb2

from station.mesh.airtime import ModemPreset
from station.mesh.sim import SimOptions, parse_options, run
from station.mesh.sim.dedup import RecentPackets
from station.mesh.sim.dutycycle import DutyCycleBudget
from station.mesh.sim.errors import OptionsError, ScriptError
from station.mesh.sim.handshake import config_sequence
from station.mesh.sim.script import check_references, load_script
from station.mesh.sim.world import World


def test_defaults() -> None:
    options = parse_options([])
    assert options.tcp_address == ("127.0.0.1", 4403)
    assert (options.nodes, options.preset, options.airtime) == (8, ModemPreset.LONG_FAST, True)
    assert (options.position_interval_s, options.telemetry_interval_s) == (60.0, 120.0)


def test_options_from_argv() -> None:
    options = parse_options(
        ["--tcp", "[::1]:0", "--pty-link", "/tmp/x", "--preset", "short-fast", "--no-airtime",
         "--duty-cycle", "10", "--loss", "0.25", "--channel", "ops", "--log-level", "debug"]
    )  # fmt: skip
    assert options.tcp_address == ("::1", 0)
    assert options.listens_on_pty
    assert options.preset is ModemPreset.SHORT_FAST
    assert (options.airtime, options.duty_cycle_percent, options.loss) == (False, 10.0, 0.25)
    assert options.channels == ("ops",)
    assert options.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--nodes", "x"], "--nodes"),
        (["--nodes", "-1"], "--nodes"),
        (["--loss", "1.5"], "--loss"),
        (["--tcp", "nohost"], "HOST:PORT"),
        (["--tcp", "h:70000"], "HOST:PORT"),
        (["--preset", "WARP"], "unknown modem preset"),
        (["--no-tcp"], "needs --pty"),
        (["--lat", "91"], "--lat"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_options_are_refused(argv: list[str], fragment: str) -> None:
    with pytest.raises(OptionsError, match=fragment.replace("-", r"\-")):
        parse_options(argv)


def test_run_exits_2_with_one_line_on_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--duty-cycle", "150"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("firefly radio sim: error: --duty-cycle")


def test_options_object_checks_itself() -> None:
    with pytest.raises(OptionsError):
        SimOptions(chatter_s=-1)


def test_dedup_remembers_the_last_1000() -> None:
    seen = RecentPackets()
    assert not seen.seen_before(1, 42)
    assert seen.seen_before(1, 42)
    assert not seen.seen_before(2, 42)  # same id from another sender is another packet
    for packet_id in range(1000, 2000):
        seen.seen_before(3, packet_id)
    assert len(seen) == 1000
    assert not seen.seen_before(1, 42)  # forgotten


def test_duty_cycle_budget_rolls_over_the_hour() -> None:
    budget = DutyCycleBudget(percent=1.0)  # 36 s per hour
    assert budget.allows(30.0, now=0.0)
    budget.spend(30.0, now=0.0)
    assert not budget.allows(10.0, now=100.0)
    assert budget.allows(6.0, now=100.0)
    assert budget.allows(10.0, now=3600.5)  # the first transmission left the window
    assert DutyCycleBudget(percent=0).allows(1e9, now=0.0)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_script_is_parsed_and_sorted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [[step]]
        at = 6
        set_loss = 0.5
        [[step]]
        at = 2.0
        node = 3
        text = "hello"
        to = "local"
        [[step]]
        at = 5
        node = 2
        position = [46.5, 6.7]
        [[step]]
        at = 8
        disconnect = true
        """,
    )
    steps = load_script(path)
    assert [(s.at, s.action) for s in steps] == [
        (2.0, "text"), (5.0, "position"), (6.0, "set_loss"), (8.0, "disconnect")
    ]  # fmt: skip
    assert steps[1].value == (46.5, 6.7)
    check_references(path, steps, World(SimOptions(nodes=4), now=0.0))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("[[step]]\nat = -1\nset_loss = 0.1", "'at'"),
        ("[[step]]\nat = 1\nnode = 1", "exactly one action"),
        ("[[step]]\nat = 1\ntext = 'x'", "'node' is required"),
        ("[[step]]\nat = 1\nset_loss = 3", "probability"),
        ("[[step]]\nat = 1\nnode = 0\nposition = [100, 0]", "latitude"),
        ("[[step]]\nat = 1\ndisconnect = false", "must be true"),
        ("[[step]]\nat = 1\nfly = true", "unknown keys"),
        ("[step]\nat = 1", "array of tables"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_scripts_name_the_step(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(ScriptError, match=fragment.replace("[", r"\[")):
        load_script(_write(tmp_path, body))


def test_script_naming_a_missing_node_fails_before_start(tmp_path: Path) -> None:
    path = _write(tmp_path, "[[step]]\nat = 1\nnode = '!00000001'\ntelemetry = true")
    with pytest.raises(ScriptError, match="step 1"):
        check_references(path, load_script(path), World(SimOptions(nodes=2), now=0.0))


def test_world_is_deterministic_from_the_seed() -> None:
    first = World(SimOptions(nodes=8, seed=7), now=1000.0)
    again = World(SimOptions(nodes=8, seed=7), now=1000.0)
    other = World(SimOptions(nodes=8, seed=8), now=1000.0)
    names = [(n.num, n.long_name, n.short_name, n.hw_model, n.lat) for n in first.nodes]
    assert names == [(n.num, n.long_name, n.short_name, n.hw_model, n.lat) for n in again.nodes]
    assert names != [(n.num, n.long_name, n.short_name, n.hw_model, n.lat) for n in other.nodes]
    assert len({n.num for n in first.nodes} | {first.local.num}) == 9
    assert first.resolve(0) is first.nodes[0]
    assert first.resolve(first.nodes[3].node_id) is first.nodes[3]


def test_handshake_order_and_content() -> None:
    world = World(SimOptions(nodes=3), now=1000.0)
    sequence = config_sequence(1234, world.local, world.nodes, 1000.0, ModemPreset.LONG_FAST, ("ops",))
    kinds = [m.WhichOneof("payload_variant") for m in sequence]
    assert kinds[0] == "my_info" and kinds[-1] == "config_complete_id"
    assert sequence[-1].config_complete_id == 1234
    infos = [m.node_info for m in sequence if m.HasField("node_info")]
    assert [i.num for i in infos] == [world.local.num] + [n.num for n in world.nodes]
    assert infos[1].user.id == f"!{world.nodes[0].num:08x}"
    assert infos[1].position.latitude_i != 0
    lora = next(m.config.lora for m in sequence if m.config.HasField("lora"))
    assert lora.hop_limit == 3
    channels = [m.channel for m in sequence if m.HasField("channel")]
    assert [c.index for c in channels] == list(range(8))
    assert channels[0].settings.name == "LongFast"
    assert channels[0].role == channel_pb2.Channel.Role.Value("PRIMARY")
    assert channels[1].settings.name == "ops"
    assert channels[7].role == 0  # DISABLED
