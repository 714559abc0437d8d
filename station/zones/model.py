"""What a zone is (name, shape, description, active flag, where it came from) and how a
zone given by an operator is validated: by the same rules as a `[[zones]]` config table.
Must not store or evaluate anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from station.config import ZoneConfig
from station.zones.errors import InvalidZone
from station.zones.geometry import Circle, Polygon, Shape

Source = Literal["config", "api"]


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    shape: Shape
    description: str = ""
    active: bool = True
    source: Source = "api"
    id: str | None = None  # stable record id of an API zone; config zones have none
    created_at: float | None = None
    updated_at: float | None = None

    @property
    def kind(self) -> Literal["circle", "polygon"]:
        return "circle" if isinstance(self.shape, Circle) else "polygon"

    def spec(self) -> dict[str, Any]:
        """The fields an operator gives, as accepted by `validate_zone`."""
        fields: dict[str, Any] = {"name": self.name, "description": self.description, "active": self.active}
        if isinstance(self.shape, Circle):
            fields |= {"center": [self.shape.latitude, self.shape.longitude], "radius_m": self.shape.radius_m}
        else:
            fields["points"] = [list(point) for point in self.shape.points]
        return fields

    def to_dict(self) -> dict[str, Any]:
        return {**{"center": None, "radius_m": None, "points": None}, **self.spec(), "kind": self.kind,
                "source": self.source, "id": self.id, "created_at": self.created_at,
                "updated_at": self.updated_at}


def validate_zone(fields: Mapping[str, Any]) -> ZoneConfig:
    """Check operator input by the config file's rules; InvalidZone names the first bad field."""
    try:
        return ZoneConfig.model_validate(dict(fields))
    except ValidationError as exc:
        first = exc.errors()[0]
        context = first.get("ctx") or {}
        if first["type"] == "zone_shape":
            raise InvalidZone(str(context["field"]), str(context["reason"])) from None
        field = ".".join(str(part) for part in first["loc"]) or "zone"
        reason = first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "unknown field"
        raise InvalidZone(field, reason) from None


def zone_from_config(spec: ZoneConfig, source: Source, record_id: str | None = None,
                     created_at: float | None = None, updated_at: float | None = None) -> Zone:
    shape: Shape
    if spec.points is not None:
        shape = Polygon(tuple((float(lat), float(lon)) for lat, lon in spec.points))
    else:
        assert spec.center is not None and spec.radius_m is not None  # ZoneConfig guarantees it
        shape = Circle(spec.center[0], spec.center[1], spec.radius_m)
    return Zone(spec.name, shape, spec.description, spec.active, source, record_id, created_at, updated_at)
