"""`firefly board sim`: simulated boards (options: `firefly board sim --help`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Board tools.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def sim(ctx: typer.Context) -> None:
    """Run simulated boards: MicroPython agents (the unix port) on ptys, until SIGTERM/SIGINT."""
    from station.boards.sim import run

    raise SystemExit(run(list(ctx.args)))
