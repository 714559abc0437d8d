"""Options of the radio simulator: the `SimOptions` value and its argparse front end.

Owns every simulator default and limit and checks them when a SimOptions is built, so
`serve()` can trust what it gets (from argv here, or from the `firefly radio sim` CLI).
Must not open files, sockets or terminals.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from station.mesh.airtime import ModemPreset, parse_preset
from station.mesh.sim.errors import OptionsError

DEFAULT_TCP = "127.0.0.1:4403"  # the port real Meshtastic devices listen on
DEFAULT_LAT = 46.5588  # a pasture above Lake Geneva: plausible, clearly not anyone's home
DEFAULT_LON = 6.7812
DEFAULT_NODES = 8
MAX_NODES = 200  # the whole node DB goes out in one handshake; real radios keep ~100-250
MAX_SECONDARY_CHANNELS = 7  # channel slots 1..7
MAX_CHANNEL_NAME = 11  # firmware's ChannelSettings.name limit (bytes)
DEFAULT_POSITION_INTERVAL_S = 60.0
DEFAULT_TELEMETRY_INTERVAL_S = 120.0
DEFAULT_NODEINFO_INTERVAL_S = 900.0  # firmware rebroadcasts NodeInfo every 15 min at most
DEFAULT_CHATTER_S = 300.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class SimOptions:
    tcp: str | None = DEFAULT_TCP  # HOST:PORT to listen on, port 0 = any free port; None = off
    pty: bool = False
    pty_link: Path | None = None  # stable symlink to the pty's slave (implies pty)
    nodes: int = DEFAULT_NODES
    seed: int = 1
    lat: float = DEFAULT_LAT
    lon: float = DEFAULT_LON
    position_interval_s: float = DEFAULT_POSITION_INTERVAL_S  # 0 disables
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S  # 0 disables
    nodeinfo_interval_s: float = DEFAULT_NODEINFO_INTERVAL_S  # 0 disables
    chatter_s: float = DEFAULT_CHATTER_S  # mean interval between node texts; 0 disables
    loss: float = 0.0  # probability a unicast packet, or its ACK, is lost
    latency_ms: float = 0.0  # extra transit latency per direction
    preset: ModemPreset = ModemPreset.LONG_FAST
    airtime: bool = True  # False: instant transmit, no airtime model at all
    duty_cycle_percent: float = 0.0  # airtime budget per rolling hour; 0 = unlimited
    record: Path | None = None
    script: Path | None = None
    channels: tuple[str, ...] = ()  # names of secondary channels 1..n
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.tcp is None and not self.listens_on_pty:
            raise OptionsError("--no-tcp", "needs --pty, or the simulator has no transport")
        if self.tcp is not None:
            parse_host_port(self.tcp)
        _check_range("--nodes", self.nodes, 0, MAX_NODES)
        _check_range("--lat", self.lat, -90.0, 90.0)
        _check_range("--lon", self.lon, -180.0, 180.0)
        for option, interval in (
            ("--position-interval", self.position_interval_s),
            ("--telemetry-interval", self.telemetry_interval_s),
            ("--nodeinfo-interval", self.nodeinfo_interval_s),
            ("--chatter", self.chatter_s),
            ("--latency-ms", self.latency_ms),
        ):
            _check_range(option, interval, 0.0, math.inf)
        _check_range("--loss", self.loss, 0.0, 1.0)
        _check_range("--duty-cycle", self.duty_cycle_percent, 0.0, 100.0)
        if len(self.channels) > MAX_SECONDARY_CHANNELS:
            raise OptionsError("--channel", f"at most {MAX_SECONDARY_CHANNELS} secondary channels")
        for name in self.channels:
            if not name or len(name.encode()) > MAX_CHANNEL_NAME:
                raise OptionsError("--channel", f"{name!r} must be 1..{MAX_CHANNEL_NAME} bytes")
        if self.log_level not in LOG_LEVELS:
            raise OptionsError("--log-level", f"{self.log_level!r} is not one of {LOG_LEVELS}")

    @property
    def listens_on_pty(self) -> bool:
        return self.pty or self.pty_link is not None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return None if self.tcp is None else parse_host_port(self.tcp)


def parse_host_port(text: str) -> tuple[str, int]:
    """'127.0.0.1:4403' or '[::1]:4403' -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise OptionsError("--tcp", f"{text!r} is not HOST:PORT (port 0..65535)")
    return host, int(port_text)


def _check_range(option: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high) or math.isnan(value):
        raise OptionsError(option, f"{value} is outside {low:g}..{high:g}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise OptionsError("", message)


def build_parser(prog: str = "python -m station.mesh.sim") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Simulated Meshtastic radio and mesh (stream API).")
    add = p.add_argument
    add("--tcp", default=DEFAULT_TCP, metavar="HOST:PORT", help="listen here (port 0: any)")
    add("--no-tcp", action="store_true", help="no TCP listener (needs --pty)")
    add("--pty", action="store_true", help="also serve a pseudo-terminal (serial port)")
    add("--pty-link", type=Path, metavar="PATH", help="symlink to the pty (implies --pty)")
    add("--nodes", type=int, default=DEFAULT_NODES, help="simulated nodes besides ours")
    add("--seed", type=int, default=1, help="names, numbers and randomness derive from it")
    add("--lat", type=float, default=DEFAULT_LAT, help="centre of the simulated area")
    add("--lon", type=float, default=DEFAULT_LON)
    add("--position-interval", type=float, default=DEFAULT_POSITION_INTERVAL_S, metavar="S")
    add("--telemetry-interval", type=float, default=DEFAULT_TELEMETRY_INTERVAL_S, metavar="S")
    add("--nodeinfo-interval", type=float, default=DEFAULT_NODEINFO_INTERVAL_S, metavar="S")
    add("--chatter", type=float, default=DEFAULT_CHATTER_S, metavar="SECONDS",
        help="mean interval between texts from nodes (0: none)")  # fmt: skip
    add("--loss", type=float, default=0.0, help="loss probability of a unicast packet or ACK")
    add("--latency-ms", type=float, default=0.0, help="extra transit latency")
    add("--preset", default=ModemPreset.LONG_FAST.value, help="modem preset, e.g. SHORT_FAST")
    add("--no-airtime", action="store_true", help="transmit instantly (benchmarks)")
    add("--duty-cycle", type=float, default=0.0, metavar="PERCENT",
        help="airtime budget per rolling hour (0: unlimited)")  # fmt: skip
    add("--record", type=Path, metavar="FILE", help="append delivered packets as JSON lines")
    add("--script", type=Path, metavar="FILE", help="TOML scenario to replay")
    add("--channel", action="append", default=[], metavar="NAME", help="secondary channel")
    add("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    return p


def parse_options(argv: list[str] | None = None) -> SimOptions:
    """argv (without the program name) -> SimOptions; raises OptionsError on bad input."""
    ns = build_parser().parse_args(argv)
    try:
        preset = parse_preset(ns.preset)
    except ValueError as exc:
        raise OptionsError("--preset", str(exc)) from None
    return SimOptions(
        tcp=None if ns.no_tcp else ns.tcp,
        pty=ns.pty,
        pty_link=ns.pty_link,
        nodes=ns.nodes,
        seed=ns.seed,
        lat=ns.lat,
        lon=ns.lon,
        position_interval_s=ns.position_interval,
        telemetry_interval_s=ns.telemetry_interval,
        nodeinfo_interval_s=ns.nodeinfo_interval,
        chatter_s=ns.chatter,
        loss=ns.loss,
        latency_ms=ns.latency_ms,
        preset=preset,
        airtime=not ns.no_airtime,
        duty_cycle_percent=ns.duty_cycle,
        record=ns.record,
        script=ns.script,
        channels=tuple(ns.channel),
        log_level=ns.log_level,
    )
