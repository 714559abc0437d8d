"""`firefly station run`: the daemon, on a config file or on the demo's embedded defaults."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from station.cli.output import Exit, fail
from station.config import ConfigError, load_config
from station.services import Service

app = typer.Typer(help="Run the station daemon.", no_args_is_help=True)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Embedded defaults + the radio and board simulators.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Log one JSON object per line.")] = False,
) -> None:
    """Start the station and run until SIGTERM/SIGINT."""
    from station.daemon import run_station
    from station.demo import (
        DEMO_BOARDS,
        DEMO_SIM_PORT,
        BoardSimProcess,
        SimulatorProcess,
        demo_config,
        free_port,
        free_port_range,
    )

    try:
        settings = load_config(config)
        services: list[Service] = []
        if demo:
            base = settings.model_dump(mode="json", exclude_unset=True)
            port = free_port(DEMO_SIM_PORT)
            board_port = free_port_range(DEMO_BOARDS)
            settings = demo_config(base, port, board_port)
            services += [SimulatorProcess(port, settings.data_dir),
                         BoardSimProcess(settings.boards, settings.data_dir, board_port)]
    except ConfigError as exc:
        fail(Exit.USAGE, str(exc), as_json)
    os.umask(0o077)  # tokens, keys and the database are the operator's alone
    raise SystemExit(asyncio.run(run_station(settings, services, as_json)))
