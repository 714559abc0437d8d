"""`firefly mesh ...`: send, messages, nodes, status."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer

from station.cli.client import ApiClient, wait_final
from station.cli.output import Exit, console, emit_json, table

app = typer.Typer(help="Send and watch Meshtastic mesh messages.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]
FINAL = ("delivered", "failed", "expired")
FOLLOW_POLL_S = 1.0  # new messages show within a second; the API is local and cheap


@app.command()
def send(
    text: Annotated[str, typer.Argument(help="Text to send (long texts are split into parts).")],
    to: Annotated[str, typer.Option("--to", help="'broadcast' or a node id like !a1b2c3d4.")] = "broadcast",
    channel: Annotated[int, typer.Option("--channel", help="Channel index 0..7.")] = 0,
    want_ack: Annotated[bool, typer.Option("--want-ack", help="Ask the mesh for an ACK.")] = False,
    radio: Annotated[str | None, typer.Option("--radio", help="Send through this radio only.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until delivered, failed or expired.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 300.0,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Queue a message in the station's durable outbox (exit 2 on bad input, nothing queued)."""
    client = ApiClient(as_json, api)
    message = client.post("/mesh/messages", {"text": text, "to": to, "channel": channel,
                                             "want_ack": want_ack, "radio": radio})
    if wait:
        message = wait_final(client, f"/mesh/messages/{message['id']}", FINAL, wait_timeout,
                             f"message {message['id']}")
    if as_json:
        emit_json(message)
    else:
        console.print(f"{message['id']} {message['status']}"
                      + (f" ({message['reason']})" if message.get("reason") else ""))
    if wait and message["status"] != "delivered":
        raise SystemExit(int(Exit.FAILURE))


@app.command()
def messages(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new messages.")] = False,
    limit: Annotated[int, typer.Option(help="How many recent messages to show.")] = 20,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Received texts and the outbox, oldest first."""
    client = ApiClient(as_json, api)
    seen_out: dict[str, str] = {}
    cursor = 0.0
    received = client.get("/mesh/received", limit=1000)["messages"]
    rows = [_in_row(m) for m in received if m["text"] is not None][-limit:]
    rows += [_out_row(m) for m in client.get("/mesh/messages", limit=limit)["messages"]]
    if received:
        cursor = received[-1]["created_at"]
    for row in sorted(rows, key=lambda r: r["at"]):
        _print_row(row, as_json)
        if row["direction"] == "out":
            seen_out[row["id"]] = row["status"]
    while follow:
        time.sleep(FOLLOW_POLL_S)
        for message in client.get("/mesh/received", after=cursor, limit=1000)["messages"]:
            cursor = message["created_at"]
            if message["text"] is not None:
                _print_row(_in_row(message), as_json)
        for message in reversed(client.get("/mesh/messages", limit=100)["messages"]):
            if seen_out.get(message["id"]) != message["status"]:
                seen_out[message["id"]] = message["status"]
                _print_row(_out_row(message), as_json)


def _in_row(message: dict[str, Any]) -> dict[str, Any]:
    return {"direction": "in", "at": message["created_at"], "id": message["id"],
            "from": message["from_node"], "to": message["to_node"], "channel": message["channel"],
            "text": message["text"], "status": "received", "snr": message["snr"], "hops": message["hops"]}


def _out_row(message: dict[str, Any]) -> dict[str, Any]:
    return {"direction": "out", "at": message["created_at"], "id": message["id"], "from": "me",
            "to": message["to_node"], "channel": message["channel"], "text": message["text"],
            "status": message["status"], "reason": message["reason"]}


def _print_row(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(row)
        return
    stamp = datetime.fromtimestamp(row["at"]).strftime("%H:%M:%S")
    arrow = "<-" if row["direction"] == "in" else "->"
    peer = row["from"] if row["direction"] == "in" else row["to"]
    console.print(f"{stamp} {arrow} {peer} ch{row['channel']} [{row['status']}] {row['text']}",
                  highlight=False, markup=False)


@app.command()
def nodes(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Nodes heard on the mesh, most recent first."""
    found = ApiClient(as_json, api).get("/mesh/nodes")["nodes"]
    if as_json:
        emit_json(found)
        return
    table("Mesh nodes", ["id", "name", "short", "last heard", "snr", "hops", "position", "battery"], [
        [n["node_id"], n["long_name"], n["short_name"], _ago(n["last_heard"]), n["snr"], n["hops_away"],
         _position(n), n["battery_level"]] for n in found])


@app.command()
def status(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Radio links and the outbox (exit 1 when a radio is not connected)."""
    report = ApiClient(as_json, api).get("/mesh/status")
    down = [r for r in report["radios"] if r["state"] != "connected"]
    if as_json:
        emit_json(report)
    else:
        table("Radios", ["name", "url", "state", "node", "reconnects", "last error"], [
            [r["name"], r["url"], r["state"], r["node"], r["reconnects"], r["last_error"]]
            for r in report["radios"]])
        outbox = report["outbox"]
        totals = ", ".join(f"{count} {state}" for state, count in sorted(outbox["messages"].items()))
        console.print(f"outbox: {outbox['inflight']} in flight; messages: {totals or 'none'}")
    if down or not report["radios"]:
        raise SystemExit(int(Exit.FAILURE))


@app.command()
def groups(
    node_id: Annotated[str, typer.Argument(help="Node id like !a1b2c3d4.")],
    set_to: Annotated[str | None, typer.Option("--set", help="Replace its groups: a,b ('' = none).")] = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """A node's groups; --set replaces them (exit 2 on a bad id or group name)."""
    client = ApiClient(as_json, api)
    path = f"/mesh/nodes/{node_id}/groups"
    if set_to is None:
        result = client.get(path)
    else:
        wanted = [group.strip() for group in set_to.split(",") if group.strip()]
        result = client.request("PUT", path, json={"groups": wanted})
    if as_json:
        emit_json(result)
    else:
        console.print(f"{result['node_id']}: {', '.join(result['groups']) or '(no groups)'}",
                      highlight=False, markup=False)


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "never"
    seconds = max(0, int(time.time() - stamp))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _position(node: dict[str, Any]) -> str:
    if node["latitude"] is None:
        return ""
    return f"{node['latitude']:.5f},{node['longitude']:.5f}"
