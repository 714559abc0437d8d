"""Composition root of the radio simulator: `serve()` builds and runs it, `run()` is the
command line (exit codes, signals). Owns start-up order, the ready line and staged
shutdown; all behaviour lives in the modules it wires together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from station.logs import configure_logging
from station.mesh.sim.errors import OptionsError, ScriptError, SimError
from station.mesh.sim.options import SimOptions, parse_options
from station.mesh.sim.radio import SimRadio
from station.mesh.sim.record import PacketRecorder
from station.mesh.sim.script import Step, check_references, load_script, replay
from station.mesh.sim.server import SimServer
from station.mesh.sim.world import World

PROG = "firefly radio sim"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

ReadyCallback = Callable[[dict[str, Any]], None]


def print_ready(event: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed: test harnesses and scripts wait for it."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def ready_event(server: SimServer, world: World, options: SimOptions) -> dict[str, Any]:
    return {
        "event": "ready",
        **server.describe(),
        "node_num": world.local.num,
        "node_id": world.local.node_id,
        "preset": options.preset.value,
        "airtime": options.airtime,
        "nodes": [
            {
                "num": node.num,
                "id": node.node_id,
                "long_name": node.long_name,
                "short_name": node.short_name,
                "hw_model": node.hw_model,
                "hops": node.hops,
            }
            for node in world.nodes
        ],
    }


async def serve(options: SimOptions, on_ready: ReadyCallback | None = None) -> None:
    """Run the simulator until cancelled. Raises SimError subclasses if it cannot start."""
    world = World(options, time.time())
    steps: list[Step] = []
    if options.script is not None:
        steps = load_script(options.script)
        check_references(options.script, steps, world)
    recorder = _open_recorder(options)
    radio = SimRadio(options, world, recorder)
    server = SimServer(radio)
    try:
        await server.start(options.tcp_address, options.listens_on_pty, options.pty_link)
        (on_ready or print_ready)(ready_event(server, world, options))
        async with asyncio.TaskGroup() as group:
            group.create_task(world.run(radio.deliver_from_mesh))
            if steps:
                group.create_task(replay(steps, world, radio, server.disconnect_clients))
    finally:
        await server.aclose()  # clients first: nothing new arrives while packets wind down
        await radio.aclose()
        if recorder is not None:
            recorder.close()


def _open_recorder(options: SimOptions) -> PacketRecorder | None:
    if options.record is None:
        return None
    try:
        return PacketRecorder.open(options.record)
    except OSError as exc:
        raise OptionsError("--record", f"cannot open {options.record}: {exc.strerror}") from exc


async def serve_until_signal(options: SimOptions) -> None:
    """serve() until SIGTERM or SIGINT, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(serve(options))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    if serving.done():
        serving.result()  # it stopped by itself: surface why
        return
    serving.cancel()
    try:
        await serving
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves, not just stopping serve()


def run(argv: list[str] | None = None) -> int:
    """Command line entry: 0 after a clean stop, 2 for bad input, 1 if it cannot run."""
    try:
        options = parse_options(argv)
    except OptionsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    configure_logging(options.log_level)
    try:
        asyncio.run(serve_until_signal(options))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return 0
    except (OptionsError, ScriptError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SimError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    return 0
