"""Scenario scripts: timed steps replayed against the simulated mesh.

A script is a TOML file (read with tomllib) holding an array of `[[step]]` tables. `at`
is seconds after the simulator printed its ready line; steps run in `at` order (file
order for equal times). Each step has exactly one action:

    [[step]]
    at = 2.0
    node = 3               # node list index 0..n-1, node number, or "!a1b2c3d4"
    text = "hello"         # a TEXT_MESSAGE_APP from that node
    to = "local"           # optional: "broadcast" (default), "local" (our node) or a node

    [[step]]
    at = 5
    node = 2
    position = [46.56, 6.78]   # move the node there and broadcast its position

    [[step]]
    at = 5.5
    node = 2
    telemetry = true       # also: nodeinfo = true

    [[step]]
    at = 6
    set_loss = 0.5         # unicast loss probability from now on

    [[step]]
    at = 7
    set_latency_ms = 800   # extra transit latency from now on

    [[step]]
    at = 8
    disconnect = true      # drop every client connection (a pty is replaced)

Owns parsing, validation (before the simulator reports ready) and replay timing.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.mesh.sim.errors import ScriptError
from station.mesh.sim.packets import BROADCAST_NUM
from station.mesh.sim.radio import SimRadio
from station.mesh.sim.world import World

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 233  # firmware's DATA_PAYLOAD_LEN
NODE_ACTIONS = frozenset({"text", "position", "telemetry", "nodeinfo"})
ACTIONS = NODE_ACTIONS | {"set_loss", "set_latency_ms", "disconnect"}
_KNOWN_KEYS = ACTIONS | {"at", "node", "to"}

NodeRef = int | str


@dataclass(frozen=True, slots=True)
class Step:
    number: int  # 1-based position in the file, for messages
    at: float
    action: str
    value: Any
    node: NodeRef | None = None
    to: NodeRef | None = None  # text only; None = broadcast


def load_script(path: Path) -> list[Step]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ScriptError(path, 0, exc.strerror or str(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(path, 0, f"not valid TOML: {exc}") from exc
    unknown = set(document) - {"step"}
    if unknown:
        raise ScriptError(path, 0, f"unknown top-level keys {sorted(unknown)}; use [[step]]")
    raw_steps = document.get("step", [])
    if not isinstance(raw_steps, list):
        raise ScriptError(path, 0, "'step' must be an array of tables ([[step]])")
    steps = [_parse_step(path, number, raw) for number, raw in enumerate(raw_steps, 1)]
    return sorted(steps, key=lambda step: step.at)


def _parse_step(path: Path, number: int, raw: dict[str, Any]) -> Step:
    def fail(reason: str) -> ScriptError:
        return ScriptError(path, number, reason)

    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    at = raw.get("at")
    if not isinstance(at, int | float) or isinstance(at, bool) or at < 0:
        raise fail("'at' must be a number of seconds >= 0")
    actions = [key for key in raw if key in ACTIONS]
    if len(actions) != 1:
        raise fail(f"needs exactly one action of {sorted(ACTIONS)}, has {actions}")
    action = actions[0]
    value = _check_value(action, raw[action], fail)
    node = raw.get("node")
    if (action in NODE_ACTIONS) != (node is not None):
        raise fail(f"'node' is {'required' if node is None else 'not allowed'} with '{action}'")
    if node is not None and (isinstance(node, bool) or not isinstance(node, int | str)):
        raise fail("'node' must be an index, a node number or '!a1b2c3d4'")
    to = raw.get("to")
    if to is not None and action != "text":
        raise fail("'to' only goes with 'text'")
    if to is not None and (isinstance(to, bool) or not isinstance(to, int | str)):
        raise fail("'to' must be 'broadcast', 'local' or a node")
    return Step(number, float(at), action, value, node, to)


def _check_value(action: str, value: Any, fail: Callable[[str], ScriptError]) -> Any:
    if action == "text":
        if not isinstance(value, str) or not 0 < len(value.encode()) <= MAX_TEXT_BYTES:
            raise fail(f"'text' must be a string of 1..{MAX_TEXT_BYTES} bytes")
    elif action == "position":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180)
        ):
            raise fail("'position' must be [latitude, longitude] in degrees")
        return (float(value[0]), float(value[1]))
    elif action == "set_loss":
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            raise fail("'set_loss' must be a probability 0..1")
    elif action == "set_latency_ms":
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise fail("'set_latency_ms' must be a number >= 0")
    elif value is not True:
        raise fail(f"'{action}' must be true")
    return value


def check_references(path: Path, steps: list[Step], world: World) -> None:
    """Fail before the simulator is ready if a step names a node the world lacks."""
    for step in steps:
        for ref in (step.node, step.to):
            if ref is None or ref in ("broadcast", "local"):
                continue
            try:
                world.resolve(ref)
            except LookupError as exc:
                raise ScriptError(path, step.number, str(exc)) from None


async def replay(
    steps: list[Step],
    world: World,
    radio: SimRadio,
    disconnect: Callable[[], Awaitable[None]],
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in steps:
        await asyncio.sleep(max(0.0, start + step.at - loop.time()))
        logger.info("script step", extra={"step": step.number, "action": step.action})
        await _apply(step, world, radio, disconnect)


async def _apply(
    step: Step, world: World, radio: SimRadio, disconnect: Callable[[], Awaitable[None]]
) -> None:
    node = world.resolve(step.node) if step.node is not None else None
    if step.action == "set_loss":
        radio.loss = float(step.value)
    elif step.action == "set_latency_ms":
        radio.latency_s = float(step.value) / 1000.0
    elif step.action == "disconnect":
        await disconnect()
    elif node is None:
        raise AssertionError(f"step {step.number}: '{step.action}' without a node")
    elif step.action == "text":
        world.send_text(node, step.value, _destination(step.to, world))
    elif step.action == "position":
        world.move_to(node, *step.value)
    elif step.action == "telemetry":
        world.send_telemetry(node)
    else:
        world.send_nodeinfo(node)


def _destination(to: NodeRef | None, world: World) -> int:
    if to is None or to == "broadcast":
        return BROADCAST_NUM
    if to == "local":
        return world.local.num
    return world.resolve(to).num
