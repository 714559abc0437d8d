"""`firefly radio sim`: the Meshtastic radio simulator (options: `firefly radio sim --help`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Radio tools.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def sim(ctx: typer.Context) -> None:
    """Run the radio simulator (a Meshtastic stream-protocol peer over TCP and a pty)."""
    from station.mesh.sim import run

    raise SystemExit(run(list(ctx.args)))
