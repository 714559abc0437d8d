"""`firefly token create|list|revoke`: API tokens with permissions (needs the admin token)."""

from __future__ import annotations

from typing import Annotated

import typer

from station.cli.client import ApiClient
from station.cli.output import console, emit_json, table

app = typer.Typer(help="API tokens with permissions.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Unique name for the token.")],
    permission: Annotated[list[str], typer.Option("--permission", "-p", help="Repeat for each.")],
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Create a token; it is printed once and never shown again."""
    created = ApiClient(as_json, api).post("/tokens", {"name": name, "permissions": permission})
    if as_json:
        emit_json(created)
    else:
        console.print(created["token"], markup=False, highlight=False)


@app.command("list")
def list_tokens(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Tokens (never their secrets) and the permissions there are."""
    listing = ApiClient(as_json, api).get("/tokens")
    if as_json:
        emit_json(listing)
        return
    table("API tokens", ["name", "permissions", "revoked"], [
        [t["name"], ", ".join(t["permissions"]), "yes" if t["revoked_at"] else ""] for t in listing["tokens"]])


@app.command()
def revoke(name: str, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Revoke a token at once."""
    result = ApiClient(as_json, api).request("DELETE", f"/tokens/{name}")
    if as_json:
        emit_json(result)
    else:
        console.print(f"{name} revoked")
