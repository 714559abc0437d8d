"""`firefly zone ...`: list, show, create, update, delete zones and list the nodes inside one."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from station.cli.client import ApiClient
from station.cli.output import Exit, console, emit_json, fail, local_time, table

app = typer.Typer(help="Zones (geofences) that mesh nodes enter and leave.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApiOption = Annotated[str | None, typer.Option("--api", help="Station API URL.")]
NameArg = Annotated[str, typer.Argument(help="Zone name.")]
CircleOption = Annotated[str | None, typer.Option("--circle", help="LAT,LON,RADIUS_M")]
PolygonOption = Annotated[str | None, typer.Option("--polygon", help='"LAT,LON;LAT,LON;LAT,LON;..."')]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="A note for operators.")]


def _numbers(option: str, text: str, count: int, as_json: bool) -> list[float]:
    parts = [part.strip() for part in text.split(",")]
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        fail(Exit.USAGE, f"{option}: {text!r} must be {count} comma-separated numbers", as_json)
    return numbers


def _shape(circle: str | None, polygon: str | None, as_json: bool) -> dict[str, Any]:
    if circle is not None and polygon is not None:
        fail(Exit.USAGE, "--circle and --polygon: give one, a zone is a circle or a polygon", as_json)
    if circle is not None:
        lat, lon, radius = _numbers("--circle", circle, 3, as_json)
        return {"center": [lat, lon], "radius_m": radius}
    if polygon is not None:
        points = [_numbers("--polygon", point, 2, as_json) for point in polygon.split(";") if point.strip()]
        return {"points": points}
    return {}


def _print_zone(zone: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(zone)
        return
    console.print(f"{zone['name']} ({zone['kind']}, {'active' if zone['active'] else 'inactive'}, "
                  f"from the {'config file' if zone['source'] == 'config' else 'API'}): {_summary(zone)}",
                  highlight=False, markup=False)
    if zone["description"]:
        console.print(zone["description"], highlight=False, markup=False)


def _summary(zone: dict[str, Any]) -> str:
    if zone["kind"] == "circle":
        lat, lon = zone["center"]
        return f"{zone['radius_m']:g} m around {lat:.5f},{lon:.5f}"
    return f"{len(zone['points'])} points"


@app.command("list")
def list_zones(as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Every zone, from the config file and the API."""
    zones = ApiClient(as_json, api).get("/zones")["zones"]
    if as_json:
        emit_json(zones)
        return
    table("Zones", ["name", "kind", "shape", "active", "source", "description"], [
        [z["name"], z["kind"], _summary(z), "yes" if z["active"] else "no", z["source"], z["description"]]
        for z in zones])


@app.command()
def show(name: NameArg, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """One zone (exit 4 if there is none by that name)."""
    _print_zone(ApiClient(as_json, api).get(f"/zones/{name}"), as_json)


@app.command()
def create(
    name: NameArg,
    circle: CircleOption = None,
    polygon: PolygonOption = None,
    description: DescriptionOption = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Create a zone: --circle LAT,LON,RADIUS_M or --polygon "LAT,LON;LAT,LON;..." (exit 2 on bad input)."""
    shape = _shape(circle, polygon, as_json)
    if not shape:
        fail(Exit.USAGE, "--circle or --polygon: one is required", as_json)
    body = {"name": name, **shape, "description": description or "", "active": not inactive}
    _print_zone(ApiClient(as_json, api).post("/zones", body), as_json)


@app.command()
def update(
    name: NameArg,
    circle: CircleOption = None,
    polygon: PolygonOption = None,
    radius: Annotated[float | None, typer.Option("--radius", help="New radius of a circle (m).")] = None,
    description: DescriptionOption = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Switch it on or off.")] = None,
    as_json: JsonFlag = False,
    api: ApiOption = None,
) -> None:
    """Change some of a zone's fields; the others stay (config-file zones cannot be changed)."""
    body: dict[str, Any] = _shape(circle, polygon, as_json)
    if radius is not None:
        body["radius_m"] = radius
    if description is not None:
        body["description"] = description
    if active is not None:
        body["active"] = active
    if not body:
        fail(Exit.USAGE, "nothing to change: give --circle, --polygon, --radius, --description or --active",
             as_json)
    _print_zone(ApiClient(as_json, api).request("PUT", f"/zones/{name}", json=body), as_json)


@app.command()
def delete(name: NameArg, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """Delete an API zone (config-file zones cannot be deleted here)."""
    result = ApiClient(as_json, api).request("DELETE", f"/zones/{name}")
    if as_json:
        emit_json(result)
    else:
        console.print(f"deleted {name}", highlight=False, markup=False)


@app.command()
def nodes(name: NameArg, as_json: JsonFlag = False, api: ApiOption = None) -> None:
    """The nodes inside a zone now."""
    found = ApiClient(as_json, api).get(f"/zones/{name}/nodes")["nodes"]
    if as_json:
        emit_json(found)
        return
    table(f"Nodes in {name}", ["id", "name", "entered at", "position"], [
        [n["node_id"], n["long_name"], local_time(n["entered_at"]),
         "" if n["latitude"] is None else f"{n['latitude']:.5f},{n['longitude']:.5f}"] for n in found])
