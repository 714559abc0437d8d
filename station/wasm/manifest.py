"""The app manifest (manifest.json): its schema, parsing with errors that name the field and the
rule, and the check of an app's limits against the station's maxima.

Owns the manifest rules only; it never reads a bundle (bundle.py), a module (validate.py) or
the configuration file (the caller passes StationLimits built from `[wasm]`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from station.wasm.errors import InvalidManifest, LimitTooHigh
from station.wasm.host import CAPABILITIES

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
VERSION_PATTERN = r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$"  # semver, no pre-release
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"  # an export name a WAT, C or Rust author can write
SHA256_PATTERN = r"^[0-9a-f]{64}$"
BOARD_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"  # a board profile name (boards/<name>.toml)
MAX_ENTRY_POINTS = 16
MAX_DESCRIPTION_CHARS = 200
MAX_BOARDS = 32
MAX_SUBSCRIPTIONS = 32
WASM_PAGE_BYTES = 65536  # a memory limit below one page could not even hold the module's memory

# Events an app may subscribe to: a board's telemetry sample, a board's event, a mesh text message.
SubscriptionEvent = Literal["board_telemetry", "board_event", "mesh_message"]

DEFAULT_MEMORY_BYTES = 2 * 1024 * 1024
DEFAULT_FUEL_PER_CALL = 50_000_000  # ~tens of ms of plain wasm on a Raspberry Pi 4
DEFAULT_TIMEOUT_MS = 1000
DEFAULT_KV_BYTES = 64 * 1024
DEFAULT_MESH_PER_MINUTE = 4  # a LoRa channel carries a few short messages a minute for everyone


class _FieldRule(ValueError):
    """A cross-field rule broken: carries the field path so parse_manifest can name it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    memory_bytes: int = Field(default=DEFAULT_MEMORY_BYTES, ge=WASM_PAGE_BYTES)
    fuel_per_call: int = Field(default=DEFAULT_FUEL_PER_CALL, ge=1)
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, ge=1)
    kv_bytes: int = Field(default=DEFAULT_KV_BYTES, ge=0)
    mesh_per_minute: int = Field(default=DEFAULT_MESH_PER_MINUTE, ge=0)


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event: SubscriptionEvent
    entry_point: str
    boards: tuple[str, ...] = Field(default=("*",), min_length=1, max_length=MAX_BOARDS)  # "*": every board


class Manifest(BaseModel):
    """manifest.json as signed. Unknown fields are refused: a field this station does not know
    could be a restriction the author relies on."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    host_api: int = Field(ge=1)
    module_sha256: str = Field(pattern=SHA256_PATTERN)
    entry_points: tuple[str, ...] = Field(min_length=1, max_length=MAX_ENTRY_POINTS)
    health_check: str | None = None
    capabilities: tuple[str, ...] = ()
    limits: Limits = Field(default_factory=Limits)
    boards: tuple[str, ...] = Field(default=(), max_length=MAX_BOARDS)  # () = any board
    subscriptions: tuple[Subscription, ...] = Field(default=(), max_length=MAX_SUBSCRIPTIONS)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Manifest:
        _check_names("entry_points", self.entry_points, IDENTIFIER_PATTERN, "an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        if self.health_check is not None and self.health_check not in self.entry_points:
            raise _FieldRule("health_check", f"{self.health_check!r} is not one of entry_points")
        _check_names("capabilities", self.capabilities, None, "")
        for index, capability in enumerate(self.capabilities):
            if capability not in CAPABILITIES:
                raise _FieldRule(f"capabilities[{index}]",
                                 f"unknown capability {capability!r} (known: {', '.join(CAPABILITIES)})")
        _check_names("boards", self.boards, BOARD_PATTERN, "a board profile name")
        for index, subscription in enumerate(self.subscriptions):
            if subscription.entry_point not in self.entry_points:
                raise _FieldRule(f"subscriptions[{index}].entry_point",
                                 f"{subscription.entry_point!r} is not one of entry_points")
            for board_index, board in enumerate(subscription.boards):
                if board != "*" and not re.match(BOARD_PATTERN, board):
                    raise _FieldRule(f"subscriptions[{index}].boards[{board_index}]",
                                     f"{board!r} is neither '*' nor a board id")
        return self


def _check_names(field: str, names: tuple[str, ...], pattern: str | None, what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if pattern is not None and not re.match(pattern, name):
            raise _FieldRule(f"{field}[{index}]", f"{name!r} is not {what}")
        if name in seen:
            raise _FieldRule(f"{field}[{index}]", f"{name!r} appears twice")
        seen.add(name)


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in `data` (the exact bytes that were signed), or InvalidManifest naming the
    first broken field and its rule. Duplicate keys are refused: two JSON parsers could pick
    different values from the same signed bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidManifest("(file)", f"not UTF-8 (byte {exc.start})") from exc
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _FieldRule as exc:
        raise InvalidManifest(exc.field, exc.reason) from None
    except ValueError as exc:
        raise InvalidManifest("(file)", f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidManifest("(file)", "must be a JSON object")
    try:
        return Manifest.model_validate_json(text, strict=True)
    except ValidationError as exc:
        field, reason = _describe(exc.errors(include_url=False))
        raise InvalidManifest(field, reason) from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _FieldRule(key, "appears twice in the same object")
        result[key] = value
    return result


def _describe(errors: list[ErrorDetails]) -> tuple[str, str]:
    """The first error as (field path, rule), in words; pydantic's own dump is for developers."""
    error = errors[0]
    context = error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, _FieldRule):
        field, reason = cause.field, cause.reason
    else:
        field, reason = _path(error["loc"]), _rule(error)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return field, reason


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(file)"


_RULES = {
    "name": "must be 1-40 characters: a lowercase letter, then lowercase letters, digits or '-'",
    "version": "must be a semantic version MAJOR.MINOR.PATCH, such as 1.2.0",
    "module_sha256": "must be the module's sha256 as 64 lowercase hex characters",
}


def _rule(error: ErrorDetails) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    top = str(error["loc"][0]) if error["loc"] else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a manifest field"
    if kind == "string_pattern_mismatch":
        return _RULES.get(top, f"must match {context.get('pattern')}")
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return "must be a whole number"
    if kind == "string_type":
        return "must be a string"
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be an object"
    if kind == "too_short":
        return f"must have at least {context.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {context.get('max_length')} items"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {context.get('ge', context.get('gt'))}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    return str(error["msg"]).lower()


@dataclass(frozen=True)
class StationLimits:
    """The station's maxima for any app's limits (config `[wasm]`); the defaults are the shipped ones."""

    memory_bytes: int = 64 * 1024 * 1024
    fuel_per_call: int = 2_000_000_000
    timeout_ms: int = 10_000
    kv_bytes: int = 1024 * 1024
    mesh_per_minute: int = 60


def check_limits(manifest: Manifest, maxima: StationLimits) -> None:
    """Raise LimitTooHigh for the first of the manifest's limits above the station's maximum."""
    for limit in fields(StationLimits):
        asked, allowed = getattr(manifest.limits, limit.name), getattr(maxima, limit.name)
        if asked > allowed:
            raise LimitTooHigh(limit.name, asked, allowed)
