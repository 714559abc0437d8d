"""`firefly app ...`: deploy, list, show, start, stop, rollback, remove, logs, call, pack (for app
developers) and `keys` (the signing keys the station trusts)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from station.cli.client import ApiClient
from station.cli.output import Exit, console, emit_json, fail, local_time, table

app = typer.Typer(help="WebAssembly apps: signed, sandboxed, deployed and run on the station.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys the station trusts for app bundles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]
FOLLOW_POLL_S = 1.0


@app.command()
def deploy(bundle: Annotated[Path, typer.Argument(help="An app bundle (.fapp).", exists=True, dir_okay=False,
                                                  readable=True)],
           as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Deploy a bundle: checked, loaded, health-checked. Exit 2 when refused (nothing stored), 1 when
    the new version failed (the previous one keeps running)."""
    result = ApiClient(as_json, api).request("POST", "/apps", content=bundle.read_bytes())
    if as_json:
        emit_json(result)
    elif result["ok"]:
        console.print(f"{result['name']} {result['deployed']} running", markup=False)
    else:
        running = result["running_version"]
        console.print(f"{result['name']} {result['deployed']} failed: {result['error']}"
                      + (f"; {running} keeps running" if running else ""), markup=False)
    if not result["ok"]:
        raise SystemExit(int(Exit.FAILURE))


@app.command("list")
def list_apps(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Apps, their state and the version that runs."""
    listing = ApiClient(as_json, api).get("/apps")
    if as_json:
        emit_json(listing)
        return
    table("Apps", ["name", "state", "running", "active", "versions", "capabilities"], [
        [a["name"], a["state"], a["running_version"] or "", a["active_version"] or "", len(a["versions"]),
         ", ".join(a["capabilities"])] for a in listing["apps"]])


@app.command()
def show(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """One app: state, entry points, capabilities and every version with its state."""
    shown = ApiClient(as_json, api).get(f"/apps/{name}")
    if as_json:
        emit_json(shown)
        return
    _print_app(shown)


@app.command()
def start(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Start the app's active version."""
    _print_or_emit(ApiClient(as_json, api).post(f"/apps/{name}/start", {}), as_json)


@app.command()
def stop(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Stop the app (it stays stopped across restarts until started)."""
    _print_or_emit(ApiClient(as_json, api).post(f"/apps/{name}/stop", {}), as_json)


@app.command()
def rollback(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Run the version that ran before the active one again."""
    _print_or_emit(ApiClient(as_json, api).post(f"/apps/{name}/rollback", {}), as_json)


@app.command()
def remove(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Stop the app and forget its versions and key-value store (its history stays)."""
    result = ApiClient(as_json, api).request("DELETE", f"/apps/{name}")
    emit_json(result) if as_json else console.print(f"{name} removed", markup=False)


@app.command()
def logs(name: str,
         limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
         only_log: Annotated[bool, typer.Option("--log-only", help="The app's own log lines, not its history.")]
         = False,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new entries until Ctrl-C.")]
         = False,
         as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """The app's history (deploys, state changes, failures) and the lines it logged, oldest first."""
    client = ApiClient(as_json, api)
    params: dict[str, Any] = {"limit": limit, "kind": ["log"] if only_log else None}
    page = client.get(f"/apps/{name}/logs", **params)
    if as_json and not follow:
        emit_json(page)
        return
    try:
        while True:
            for entry in page["entries"]:
                if as_json:
                    emit_json(entry)
                else:
                    console.print(f"{local_time(entry['at'])} {entry['level']:<8} {entry['kind']:<9} "
                                  f"{entry['version'] or '':<8} {entry['message']}", markup=False, highlight=False)
            if not follow:
                return
            time.sleep(FOLLOW_POLL_S)
            page = client.get(f"/apps/{name}/logs", after=page["last_id"], limit=1000, kind=params["kind"])
    except KeyboardInterrupt:
        return


@app.command()
def call(name: str, entry_point: str,
         input_json: Annotated[str, typer.Option("--input", help="JSON passed to the entry point.")] = "null",
         as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Call an entry point of a running app and print its output (exit 1 when it traps or times out)."""
    try:
        payload = json.loads(input_json)
    except ValueError as exc:
        fail(Exit.USAGE, f"--input is not JSON: {exc}", as_json)
    result = ApiClient(as_json, api).post(f"/apps/{name}/call", {"entry_point": entry_point, "input": payload})
    emit_json(result) if as_json else console.print(json.dumps(result["output"]), markup=False, highlight=False)


@app.command()
def pack(app_dir: Annotated[Path, typer.Argument(help="A folder with manifest.json and app.wat or app.wasm.",
                                                 exists=True, file_okay=False)],
         key: Annotated[Path | None, typer.Option("--key", help="Ed25519 private key (PEM) to sign with.",
                                                  exists=True, dir_okay=False)] = None,
         output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the bundle.")] = None,
         as_json: JsonFlag = False) -> None:
    """Build a bundle (.fapp) from an app folder, signed with --key (unsigned without it). Runs locally."""
    from station.wasm.errors import AppError
    from station.wasm.pack import load_private_key, pack_app

    try:
        packed = pack_app(app_dir, None if key is None else load_private_key(key))
    except (AppError, OSError, ValueError) as exc:
        fail(Exit.USAGE, str(exc), as_json)
    target = output or app_dir / f"{packed.name}-{packed.version}.fapp"
    target.write_bytes(packed.bundle)
    summary = {"bundle": str(target), "name": packed.name, "version": packed.version, "key_id": packed.key_id,
               "bytes": len(packed.bundle)}
    emit_json(summary) if as_json else console.print(
        f"{target}: {packed.name} {packed.version}, " + (f"signed by {packed.key_id}" if packed.key_id else "unsigned"),
        markup=False)


@keys_app.command("add")
def keys_add(public_key: Annotated[Path, typer.Argument(help="Ed25519 public key: PEM, OpenSSH or hex.",
                                                        exists=True, dir_okay=False, readable=True)],
             name: Annotated[str, typer.Option("--name", help="Who signs with it.")],
             as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Trust app bundles signed with this key."""
    added = ApiClient(as_json, api).post("/apps/keys", {"name": name, "public_key": public_key.read_text().strip()})
    emit_json(added) if as_json else console.print(f"trusted key {added['key_id']} ({added['name']})", markup=False)


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    listing = ApiClient(as_json, api).get("/apps/keys")
    if as_json:
        emit_json(listing)
        return
    table("Trusted keys", ["key id", "name", "added by", "added"], [
        [k["key_id"], k["name"], k["added_by"], local_time(k["added_at"])] for k in listing["keys"]])


@keys_app.command("remove")
def keys_remove(key_id: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Stop trusting a key for new deploys."""
    removed = ApiClient(as_json, api).request("DELETE", f"/apps/keys/{key_id}")
    emit_json(removed) if as_json else console.print(f"key {key_id} no longer trusted", markup=False)


def _print_or_emit(shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(shown)
    else:
        _print_app(shown)


def _print_app(shown: dict[str, Any]) -> None:
    console.print(f"{shown['name']}: {shown['state']}, running {shown['running_version'] or '-'}, "
                  f"active {shown['active_version'] or '-'}, wanted {shown['desired']}", markup=False)
    console.print(f"entry points: {', '.join(shown['entry_points'])}; capabilities: "
                  f"{', '.join(shown['capabilities']) or '-'}", markup=False)
    table("Versions", ["version", "state", "signed by", "deployed", "by", "error"], [
        [v["version"], v["state"], v["key_id"] or "unsigned", local_time(v["deployed_at"]), v["deployed_by"],
         v["error"] or ""] for v in shown["versions"]])
