"""`firefly board ...`: list, show, enroll (a one-time code), revoke, command, and `sim`
(simulated boards; options: `firefly board sim --help`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from station.cli.client import ApiClient
from station.cli.output import Exit, console, emit_json, fail, table

app = typer.Typer(help="Microcontroller boards: enrollment, links, commands, simulation.", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def sim(ctx: typer.Context) -> None:
    """Run simulated boards: MicroPython agents (the unix port) on ptys, until SIGTERM/SIGINT."""
    from station.boards.sim import run

    raise SystemExit(run(list(ctx.args)))


JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]


@app.command("list")
def list_boards(state: Annotated[str | None, typer.Option("--state")] = None,
                as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Enrolled boards and the station's board links."""
    listing = ApiClient(as_json, api).get("/boards", state=state)
    if as_json:
        emit_json(listing)
        return
    table("Boards", ["id", "profile", "state", "last seen", "agent", "cert until"], [
        [b["id"], b["profile"], b["state"], _when(b["last_seen"]), b["agent_version"], _when(b["cert_not_after"])]
        for b in listing["boards"]])
    table("Links", ["name", "url", "state", "board"], [
        [link.get("name"), link.get("url"), link.get("state"), link.get("board_id")] for link in listing["links"]])


@app.command()
def show(board_id: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """One board: its registry record and live link."""
    record = ApiClient(as_json, api).get(f"/boards/{board_id}")
    if as_json:
        emit_json(record)
        return
    for key, value in record.items():
        console.print(f"{key}: {value}", markup=False, highlight=False)


@app.command()
def enroll(
    profile: Annotated[str | None, typer.Option("--profile", help="Only a board of this profile.")] = None,
    ttl: Annotated[float | None, typer.Option("--ttl", help="Seconds the code is valid.")] = None,
    reenroll: Annotated[str | None, typer.Option("--reenroll", help="A reflashed board's id.")] = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Make a one-time enrollment code (for scripts/flash-board --enroll-code); shown once."""
    code = ApiClient(as_json, api).post("/boards/enrollment-codes", {
        "profile": profile, "ttl_s": ttl, "reenroll_board_id": reenroll})
    if as_json:
        emit_json(code)
    else:
        console.print(f"{code['code']}  (valid until {_when(code['expires_at'])})", markup=False)


@app.command()
def revoke(board_id: str, reason: Annotated[str, typer.Option("--reason")] = "revoked by an operator",
           as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Refuse a board from now on; its session is closed at once."""
    record = ApiClient(as_json, api).post(f"/boards/{board_id}/revoke", {"reason": reason})
    emit_json(record) if as_json else console.print(f"{board_id} revoked: {record['revoked_reason']}")


@app.command()
def command(
    board_id: str,
    cmd: Annotated[str, typer.Argument(help="read_config, write_config, reboot, run, read_sensor")],
    args: Annotated[str, typer.Option("--args", help="Arguments as JSON.")] = "{}",
    timeout: Annotated[float, typer.Option("--timeout")] = 10.0,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Run a command on a connected board (exit 1 when the board answers not ok)."""
    try:
        parsed = json.loads(args)
    except ValueError as exc:
        fail(Exit.USAGE, f"--args is not JSON: {exc}", as_json)
    result = ApiClient(as_json, api).post(f"/boards/{board_id}/commands",
                                          {"cmd": cmd, "args": parsed, "timeout_s": timeout})
    emit_json(result) if as_json else console.print(json.dumps(result["value"] if result["ok"] else result["error"]))
    if not result["ok"]:
        raise SystemExit(int(Exit.FAILURE))


def _when(stamp: float | None) -> str:
    return "" if not stamp else datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
