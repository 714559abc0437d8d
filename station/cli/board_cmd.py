"""`firefly board ...`: list, show, enroll (a one-time code), revoke, command, push (config and
files), deploys, cancel-deploy, logs, and `sim`
(simulated boards; options: `firefly board sim --help`)."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from station.cli.client import ApiClient
from station.cli.output import Exit, console, emit_json, errors, fail, local_time, table

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
        [b["id"], b["profile"], b["state"], local_time(b["last_seen"]), b["agent_version"],
         local_time(b["cert_not_after"])]
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
        console.print(f"{code['code']}  (valid until {local_time(code['expires_at'])})", markup=False)


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


FOLLOW_POLL_S = 1.0  # new lines show within a second; the API is local and cheap


@app.command()
def logs(
    board_id: str,
    level: Annotated[str | None, typer.Option("--level", help="This level and above: debug, info, warning, error.")]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many recent lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The API's answer; with --follow, one line per JSON object.")]
    = False,
    api: ApiOption = None,
) -> None:
    """Log lines and errors the board sent, oldest first."""
    if level is not None and level not in ("debug", "info", "warning", "error"):
        fail(Exit.USAGE, f"--level must be debug, info, warning or error, not {level!r}", as_json)
    client = ApiClient(as_json, api)
    page = client.get(f"/boards/{board_id}/logs", limit=limit, level=level)
    if as_json and not follow:
        emit_json(page)
        return
    try:
        while True:
            for line in page["lines"]:
                _print_line(board_id, line, as_json)
            if not follow:
                return
            time.sleep(FOLLOW_POLL_S)
            page = client.get(f"/boards/{board_id}/logs", after=page["last_id"], limit=1000, level=level)
    except KeyboardInterrupt:
        return


def _print_line(board_id: str, line: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"board_id": board_id, **line})
    else:
        console.print(f"{local_time(line['received_at'])} {line['level']:<8} {line['message']}", markup=False,
                      highlight=False)


DEPLOY_POLL_S = 0.5
OPEN_DEPLOY_STATES = ("queued", "sending")


@app.command()
def push(
    board_id: str,
    file: Annotated[Path | None, typer.Argument(help="A file to deploy to the board.", exists=True, dir_okay=False,
                                                readable=True)] = None,
    to: Annotated[str | None, typer.Option("--to", help="Path on the board (default: the file's name).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Agent options from a .json or .toml file.",
                                                exists=True, dir_okay=False, readable=True)] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="An agent option, KEY=VALUE (VALUE as JSON if it "
                                                                 "parses, else text); repeatable.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the board holds it.")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait (the deploy stays queued after).")]
    = 600.0,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Deploy a file or agent options to a board: queued at once, sent when the board is connected,
    resumed after a broken link. Exit 0 when the board holds it, 1 when it failed or is still waiting."""
    options = _options(config, sets or [], as_json)
    if (file is None) == (options is None):
        fail(Exit.USAGE, "give either a FILE or agent options (--config / --set), not both or neither", as_json)
    client = ApiClient(as_json, api)
    if file is not None:
        deploy = client.request("POST", f"/boards/{board_id}/files", params={"path": to or file.name},
                                content=file.read_bytes())
    else:
        deploy = client.post(f"/boards/{board_id}/config", {"options": options})
    if wait:
        deploy = _follow_deploy(client, deploy, timeout, as_json)
    if as_json:
        emit_json(deploy)
    else:
        console.print(_deploy_line(deploy), markup=False, highlight=False)
    if wait and deploy["state"] != "done":
        raise SystemExit(int(Exit.FAILURE))


@app.command()
def deploys(board_id: str, limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
            as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """The board's config and file deploys, newest first."""
    listing = ApiClient(as_json, api).get(f"/boards/{board_id}/deploys", limit=limit)
    if as_json:
        emit_json(listing)
        return
    table("Deploys", ["id", "kind", "what", "state", "sent", "attempts", "created", "error"], [
        [d["id"], d["kind"], d["path"] or ", ".join(sorted(d["config"] or {})), d["state"], f"{d['sent']}/{d['size']}",
         d["attempts"], local_time(d["created_at"]), d["error"] or ""] for d in listing["deploys"]])


@app.command("cancel-deploy")
def cancel_deploy(deploy_id: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Stop a queued or sending deploy (a half-sent file is never switched in on the board)."""
    deploy = ApiClient(as_json, api).post(f"/boards/deploys/{deploy_id}/cancel", {})
    emit_json(deploy) if as_json else console.print(_deploy_line(deploy), markup=False, highlight=False)


def _options(config: Path | None, sets: list[str], as_json: bool) -> dict[str, Any] | None:
    if config is None and not sets:
        return None
    options: dict[str, Any] = {}
    if config is not None:
        try:
            text = config.read_text()
            loaded = tomllib.loads(text) if config.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            fail(Exit.USAGE, f"{config}: not valid {config.suffix.lstrip('.') or 'JSON'}: {exc}", as_json)
        if not isinstance(loaded, dict):
            fail(Exit.USAGE, f"{config}: must hold a map of options", as_json)
        options.update(loaded)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(Exit.USAGE, f"--set {item!r}: expected KEY=VALUE", as_json)
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def _follow_deploy(client: ApiClient, deploy: dict[str, Any], timeout: float, as_json: bool) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = None
    while deploy["state"] in OPEN_DEPLOY_STATES and time.monotonic() < deadline:
        if not as_json and (deploy["state"], deploy["sent"]) != shown:
            shown = (deploy["state"], deploy["sent"])
            errors.print(_deploy_line(deploy), markup=False, highlight=False)
        time.sleep(DEPLOY_POLL_S)
        deploy = client.get(f"/boards/deploys/{deploy['id']}")
    return deploy


def _deploy_line(deploy: dict[str, Any]) -> str:
    what = deploy["path"] if deploy["kind"] == "file" else "options " + ", ".join(sorted(deploy["config"] or {}))
    percent = 100 * deploy["sent"] // deploy["size"] if deploy["size"] else 100
    line = f"{deploy['id']} {what}: {deploy['state']} ({deploy['sent']}/{deploy['size']} bytes, {percent}%)"
    if deploy["state"] in OPEN_DEPLOY_STATES and deploy["error"]:
        line += f", waiting: {deploy['error']}"
    elif deploy["error"]:
        line += f": {deploy['error']}"
    return line
