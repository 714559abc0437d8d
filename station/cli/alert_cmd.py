"""`firefly alert ...`: list, show, create, ack, resolve. Thin: the station's API validates
and keeps the state machine; exit codes come from the client (2 bad input, 4 not found,
1 an invalid transition)."""

from __future__ import annotations

import getpass
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from station.cli.client import ApiClient
from station.cli.output import console, emit_json, table

app = typer.Typer(help="Raise, list, acknowledge and resolve station alerts.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who does it (default: your user name).")]
SHOWN_FIELDS = (
    "id", "severity", "status", "title", "message", "source", "node_id", "dedup_key", "occurrences",
    "created_at", "updated_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
)


@app.command("list")
def list_alerts(
    status: Annotated[str | None, typer.Option("--status", help="active, acknowledged or resolved.")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="info, warning or critical.")] = None,
    limit: Annotated[int, typer.Option(help="How many alerts, newest first.")] = 50,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Alerts, newest first, with how many are in each status."""
    report = ApiClient(as_json, api).get("/alerts", status=status, severity=severity, limit=limit)
    if as_json:
        emit_json(report["alerts"])
        return
    table("Alerts", ["id", "severity", "status", "title", "source", "node", "times", "raised"], [
        [a["id"], a["severity"], a["status"], a["title"], a["source"], a["node_id"], a["occurrences"],
         _ago(a["created_at"])] for a in report["alerts"]])
    counts = report["counts"]
    console.print(f"{counts['active']} active, {counts['acknowledged']} acknowledged, "
                  f"{counts['resolved']} resolved")


@app.command()
def show(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """One alert, every field (exit 4 if there is no such alert)."""
    _print_alert(ApiClient(as_json, api).get(f"/alerts/{alert_id}"), as_json)


@app.command()
def create(
    title: Annotated[str, typer.Argument(help="One line, up to 200 characters.")],
    severity: Annotated[str, typer.Option("--severity", "-s", help="info, warning or critical.")] = "warning",
    message: Annotated[str, typer.Option("--message", "-m", help="Details, up to 2000 characters.")] = "",
    source: Annotated[str, typer.Option("--source", help="Who raises it.")] = "operator",
    node: Annotated[str | None, typer.Option("--node", help="The mesh node it is about: !a1b2c3d4.")] = None,
    dedup_key: Annotated[str | None, typer.Option(
        "--dedup-key", help="Fold into the unresolved alert with this key, not raise another.")] = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Raise an alert (exit 2 on bad input, nothing stored)."""
    alert = ApiClient(as_json, api).post("/alerts", {
        "severity": severity, "title": title, "message": message, "source": source,
        "node_id": node, "dedup_key": dedup_key,
    })
    if as_json:
        emit_json(alert)
    elif alert["deduplicated"]:
        console.print(f"{alert['id']} {alert['status']} (duplicate folded in: "
                      f"{alert['occurrences']} occurrences)", highlight=False)
    else:
        console.print(f"{alert['id']} {alert['status']}", highlight=False)


@app.command()
def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    by: ByOption = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Acknowledge an active alert (exit 1 if it is resolved, 4 if there is no such alert)."""
    alert = ApiClient(as_json, api).post(f"/alerts/{alert_id}/acknowledge", {"by": by or _user()})
    _print_outcome(alert, as_json)


@app.command()
def resolve(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    by: ByOption = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Resolve an alert (exit 1 if it is already resolved, 4 if there is no such alert)."""
    alert = ApiClient(as_json, api).post(f"/alerts/{alert_id}/resolve", {"by": by or _user()})
    _print_outcome(alert, as_json)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "operator"


def _print_outcome(alert: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(alert)
    else:
        console.print(f"{alert['id']} {alert['status']}", highlight=False)


def _print_alert(alert: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(alert)
        return
    for name in SHOWN_FIELDS:
        value = alert.get(name)
        if value is None or value == "":
            continue
        if name.endswith("_at"):
            value = datetime.fromtimestamp(value).isoformat(timespec="seconds")
        console.print(f"{name:>16}: {value}", highlight=False, markup=False)


def _ago(stamp: float) -> str:
    seconds = max(0, int(time.time() - stamp))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
