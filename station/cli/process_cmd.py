"""`firefly process ...`: list, show, create/update from YAML or JSON, execute, runs, trace,
templates, instantiate, analytics, deactivate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from station.cli.client import ApiClient, wait_final
from station.cli.output import Exit, console, emit_json, fail, local_time, table

app = typer.Typer(help="Firefly processes: automation rules.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]
FINAL = ("completed", "failed", "skipped", "timeout")


def _read_definition(path: Path, as_json: bool) -> Any:
    import yaml  # here, not at the top: every `firefly` command would pay for it

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(Exit.USAGE, f"cannot read {path}: {exc.strerror}", as_json)
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        fail(Exit.USAGE, f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}", as_json)


@app.command("list")
def list_processes(active_only: Annotated[bool, typer.Option("--active")] = False,
                   as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Processes with their run counts."""
    listing = ApiClient(as_json, api).get("/processes", active_only=active_only, limit=1000)
    if as_json:
        emit_json(listing)
        return
    table("Processes", ["name", "active", "version", "triggers", "runs", "last run"], [
        [p["name"], "yes" if p["is_active"] else "no", p["version"],
         ", ".join(t["type"] for t in p["definition"]["triggers"]) or "manual",
         p["execution_count"], local_time(p["last_executed"])] for p in listing["processes"]])


@app.command()
def show(process: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """One process: its definition and analytics."""
    client = ApiClient(as_json, api)
    row = client.get(f"/processes/{process}")
    stats = client.get(f"/processes/{process}/analytics")
    if as_json:
        emit_json({**row, "analytics": stats})
        return
    import yaml  # here, not at the top: every `firefly` command would pay for it

    console.print(yaml.safe_dump(row["definition"], sort_keys=False), markup=False, highlight=False)
    console.print(f"runs: {stats['total_executions']}, success rate: {stats['success_rate']}, "
                  f"avg {stats['avg_execution_time_ms']} ms, p95 {stats['p95_execution_time_ms']} ms")


@app.command()
def create(file: Annotated[Path, typer.Option("--file", "-f", help="Definition (YAML or JSON).")],
           as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Create a process (exit 2 with the path of the bad field when invalid)."""
    created = ApiClient(as_json, api).post("/processes", _read_definition(file, as_json))
    emit_json(created) if as_json else console.print(f"{created['process_id']} {created['name']} created")


@app.command()
def update(process: str, file: Annotated[Path, typer.Option("--file", "-f")],
           as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Replace a process's definition (a new version; running executions keep theirs)."""
    updated = ApiClient(as_json, api).request("PUT", f"/processes/{process}",
                                              json=_read_definition(file, as_json))
    emit_json(updated) if as_json else console.print(f"{updated['name']} updated to version {updated['version']}")


@app.command()
def deactivate(process: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Deactivate a process (it keeps its history)."""
    result = ApiClient(as_json, api).request("DELETE", f"/processes/{process}")
    emit_json(result) if as_json else console.print(f"{result['name']} deactivated")


@app.command()
def execute(
    process: str,
    data: Annotated[str, typer.Option("--data", help="trigger_data as JSON.")] = "{}",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 300.0,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Run a process by hand (exit 1 when the run fails or is skipped)."""
    try:
        trigger_data = json.loads(data)
    except ValueError as exc:
        fail(Exit.USAGE, f"--data is not JSON: {exc}", as_json)
    client = ApiClient(as_json, api)
    started = client.post(f"/processes/{process}/execute", {"trigger_data": trigger_data})
    result = started
    if wait and started["status"] != "skipped":
        result = wait_final(client, f"/executions/{started['execution_id']}", FINAL, wait_timeout,
                            f"execution {started['execution_id']}")
    emit_json(result) if as_json else console.print(f"{started['execution_id']} {result['status']}")
    if result["status"] in ("failed", "skipped", "timeout"):
        raise SystemExit(int(Exit.FAILURE))


@app.command()
def runs(process: Annotated[str | None, typer.Argument()] = None,
         status: Annotated[str | None, typer.Option("--status")] = None,
         limit: int = 20, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Recent executions (of one process, or all)."""
    client = ApiClient(as_json, api)
    path = f"/processes/{process}/executions" if process else "/executions"
    listing = client.get(path, status=status, limit=limit)
    if as_json:
        emit_json(listing)
        return
    table("Executions", ["id", "process", "status", "trigger", "started", "ms", "error"], [
        [e["id"], e.get("process_name", e["process_id"]), e["status"], e["trigger_type"],
         local_time(e["started_at"]), _ms(e["execution_time_ms"]), (e["error_message"] or "")[:60]]
        for e in listing["executions"]])


@app.command()
def trace(run_id: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """An execution's trace: the event, condition results, each step's input, output and timing."""
    client = ApiClient(as_json, api)
    execution = client.get(f"/executions/{run_id}")
    logs = client.get(f"/executions/{run_id}/logs")["logs"]
    if as_json:
        emit_json({**execution, "logs": logs})
        return
    console.print(f"execution {execution['id']} of {execution['process_name']}: {execution['status']}"
                  f" ({_ms(execution['execution_time_ms'])} ms)", markup=False)
    console.print("event: " + json.dumps(execution["trigger_event"], default=str)[:500], markup=False)
    if execution.get("trace"):
        console.print("trace: " + json.dumps(execution["trace"], default=str)[:2000], markup=False)
    for step in execution["steps"]:
        console.print(f"  step {step['action_path']} {step['action_type']}: {step['status']}"
                      f" in {_ms(step['execution_time_ms'])} ms, retries {step['retry_count']}", markup=False)
        console.print(f"    input:  {json.dumps(step['input'], default=str)[:300]}", markup=False)
        console.print(f"    result: {json.dumps(step['result'], default=str)[:300]}"
                      + (f"  error: {step['error_message']}" if step["error_message"] else ""), markup=False)
    for line in logs:
        console.print(f"  [{line['level']}] {line['message']}", markup=False)


@app.command("templates")
def list_templates(category: Annotated[str | None, typer.Option("--category")] = None,
                   as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Templates to start a process from."""
    listing = ApiClient(as_json, api).get("/process-templates", category=category)
    if as_json:
        emit_json(listing)
        return
    table("Process templates", ["name", "category", "used", "description"], [
        [t["name"], t["category"], t["usage_count"], t["description"]] for t in listing["templates"]])


@app.command()
def instantiate(
    template: str,
    name: Annotated[str | None, typer.Option("--name", help="Name of the new process.")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="KEY=VALUE (VALUE parsed as JSON).")] = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Create a process from a template, with its variables set."""
    customizations: dict[str, Any] = {}
    if name:
        customizations["name"] = name
    variables = {}
    for item in var or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(Exit.USAGE, f"--var {item!r} is not KEY=VALUE", as_json)
        try:
            variables[key] = json.loads(value)
        except ValueError:
            variables[key] = value
    if variables:
        customizations["variables"] = variables
    created = ApiClient(as_json, api).post(f"/process-templates/{template}/instantiate",
                                           {"customizations": customizations})
    emit_json(created) if as_json else console.print(f"{created['process_id']} {created['name']} created")


@app.command()
def analytics(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Engine-wide figures: runs, success rate, average and p95 duration, failure reasons."""
    overview = ApiClient(as_json, api).get("/processes/analytics")
    if as_json:
        emit_json(overview)
        return
    console.print(f"processes: {overview['active_processes']} active of {overview['total_processes']}; "
                  f"runs: {overview['total_executions']} {overview['by_status']}; success rate "
                  f"{overview['success_rate']}; avg {overview['avg_execution_time_ms']} ms, "
                  f"p95 {overview['p95_execution_time_ms']} ms", markup=False)
    for reason in overview["failure_reasons"]:
        console.print(f"  {reason['count']} x {reason['reason']}", markup=False)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
