"""Command line and boot entry of the agent (MicroPython has no argparse).

    micropython -m edge_agent.agent --profile boards/unix-sim.toml --state-dir DIR \\
        --transport stdio|uart|tcp:HOST:PORT --auth session|off

--auth session: once enrolled, each connection runs the session handshake
(authenticate.py) and every later message is sealed; off: plain messages (test stations
that do not speak the handshake). Defaults to the profile's [link] auth, else "off".

--state-dir and --transport default to the profile's [flash] state_dir and [link]
transport. Exit codes: 0 the link ended, 2 usage, 78 unusable profile or state, and
_port.EXIT_REBOOT / EXIT_WATCHDOG when the process stands in for a reboot. Owns
argument parsing and assembling the agent; micropython/main.py calls run() on a board.
"""

import asyncio

from edge_agent.agent import _port, config
from edge_agent.agent.authenticate import make_authenticate
from edge_agent.agent.handlers import HandlerError
from edge_agent.agent.profile import ProfileError, load_profile
from edge_agent.agent.runtime import Agent
from edge_agent.agent.sensors import SensorError
from edge_agent.agent.storage import Storage, StorageError
from edge_agent.agent.transport import TransportError, open_transport, parse_spec

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

USAGE = ("usage: micropython -m edge_agent.agent --profile FILE [--state-dir DIR]"
         " [--transport stdio|uart|tcp:HOST:PORT] [--auth session|off]")
EXIT_USAGE = 2
EXIT_CONFIG = 78  # sysexits EX_CONFIG: a supervisor should not restart this in a loop
OPTIONS = ("--profile", "--state-dir", "--transport", "--auth")
AUTH_MODES = ("session", "off")
# Off until every station the agents meet speaks the handshake (the runtime tests' stand-in
# station does not); boards in the field set [link] auth = "session" in their profile.
DEFAULT_AUTH = "off"


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> dict[str, str]:
    """--name value pairs (and --name=value) into {"profile": ..., "state_dir": ..., ...}."""
    parsed: dict[str, str] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        name, eq, value = arg.partition("=")
        if name not in OPTIONS:
            raise UsageError(f"unknown argument {arg!r}")
        if not eq:
            if index + 1 >= len(argv):
                raise UsageError(f"{name} needs a value")
            index += 1
            value = argv[index]
        parsed[name[2:].replace("-", "_")] = value
        index += 1
    if "profile" not in parsed:
        raise UsageError("--profile is required")
    return parsed


def default_transport(link: dict[str, Any]) -> str:
    kind = str(link.get("transport", "stdio"))
    if kind == "tcp":
        return f"tcp:{link.get('host', '127.0.0.1')}:{link.get('port', 0)}"
    return kind


def build_agent(args: dict[str, str]) -> Agent:
    """Profile, state and options assembled into an agent; raises on unusable input."""
    profile = load_profile(args["profile"])
    storage = Storage(args.get("state_dir") or str(profile.flash.get("state_dir", "state")))
    storage.ensure()
    options = config.merge(profile.agent, storage.load_config())
    spec = args.get("transport") or default_transport(profile.link)
    parse_spec(spec)  # refuse a bad spec now, not at the first connection attempt
    auth = args.get("auth") or str(profile.link.get("auth", DEFAULT_AUTH))
    if auth not in AUTH_MODES:
        raise UsageError("--auth must be session or off, not " + repr(auth))

    async def connect() -> Any:
        return await open_transport(spec, profile.link)

    authenticate = make_authenticate(storage) if auth == "session" else None
    return Agent(profile, storage, options, connect, authenticate=authenticate)


def run(argv: list[str]) -> int:
    """Parse `argv` (without the program name), run the agent, return the exit code."""
    try:
        agent = build_agent(parse_args(argv))
    except UsageError as exc:
        _port.log(f"{exc}\n{USAGE}")
        return EXIT_USAGE
    except (ProfileError, StorageError, config.ConfigError, HandlerError, SensorError, TransportError,
            OSError) as exc:
        _port.log(f"cannot start: {exc}")
        return EXIT_CONFIG
    code: int = asyncio.run(agent.run())
    return code
