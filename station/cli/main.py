"""The `firefly` entry point: the command groups and the errors every command maps to exit codes."""

from __future__ import annotations

import typer

from station.cli import (
    alert_cmd,
    app_cmd,
    board_cmd,
    mesh_cmd,
    process_cmd,
    radio_cmd,
    station_cmd,
    token_cmd,
    zone_cmd,
)

app = typer.Typer(help="Firefly station: the runtime of off-grid field stations.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(station_cmd.app, name="station")
app.add_typer(mesh_cmd.app, name="mesh")
app.add_typer(radio_cmd.app, name="radio")
app.add_typer(alert_cmd.app, name="alert")
app.add_typer(token_cmd.app, name="token")
app.add_typer(process_cmd.app, name="process")
app.add_typer(zone_cmd.app, name="zone")
app.add_typer(board_cmd.app, name="board")
app.add_typer(app_cmd.app, name="app")


def main() -> None:
    app()
