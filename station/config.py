"""Station configuration: one TOML file, `FIREFLY_*` environment overrides, typed settings.

Owns every default and limit an operator can change (documented in docs/configuration.md).
Must not open files other than the config file, start anything or touch the network.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

ENV_PREFIX = "FIREFLY_"
ENV_NESTING = "__"  # FIREFLY_API__PORT=9000 sets [api] port = 9000
CONFIG_ENV = "FIREFLY_CONFIG"  # path of the TOML file when --config is not given

MAX_TEXT_PAYLOAD_BYTES = 233  # Meshtastic firmware's DATA_PAYLOAD_LEN for a text packet
MAX_CHANNEL_INDEX = 7  # a Meshtastic radio has eight channel slots, 0..7
ZONE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # goes unquoted into URLs and CLI arguments
MAX_ZONE_POINTS = 500  # each point is an edge checked per position report inside the zone's box
MIN_ZONE_RADIUS_M = 1.0
MAX_ZONE_RADIUS_M = 1_000_000.0  # beyond 1000 km a "zone" is a region; the sphere model drifts
MAX_ZONE_DESCRIPTION = 500  # characters; a note for operators, not a document
MAX_ZONE_HYSTERESIS_M = 10_000.0


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"config error: {key} = {value!r}: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Section):
    host: str = "127.0.0.1"  # loopback by default: the API is for this station's operators
    port: int = Field(default=8080, ge=0, le=65535)


class StoreConfig(_Section):
    # FULL survives power loss (a field station's normal failure); NORMAL only a crash.
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class RadioConfig(_Section):
    name: str = Field(default="radio0", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: str  # serial:///dev/ttyUSB0 or tcp://host:4403

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not (url.startswith("serial://") or url.startswith("tcp://")):
            raise ValueError("must be serial:///dev/DEVICE or tcp://HOST:PORT")
        return url


class LinkConfig(_Section):
    connect_timeout_s: float = Field(default=15.0, gt=0)  # want_config handshake of a busy radio
    health_interval_s: float = Field(default=10.0, gt=0)  # how often a heartbeat probes the link
    health_timeout_s: float = Field(default=25.0, gt=0)  # silence after a probe = dead link
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)


class OutboxConfig(_Section):
    max_message_bytes: int = Field(default=2048, ge=1, le=65536)  # longest text accepted
    max_attempts: int = Field(default=3, ge=1, le=20)  # sends of one part, each with a new id
    ack_timeout_s: float = Field(default=60.0, gt=0)  # multi-hop ACKs on LongFast take tens of s
    min_text_interval_s: float = Field(default=2.0, ge=0)  # firmware drops texts sent faster
    duty_cycle_percent: float = Field(default=0.0, ge=0, le=100)  # airtime budget/hour; 0 = off
    modem_preset: str = "LONG_FAST"  # for the airtime estimate
    max_in_flight: int = Field(default=8, ge=1, le=64)  # upper bound on top of the radio's queue
    message_ttl_s: float = Field(default=86400.0, gt=0)  # undelivered messages expire after this
    retry_delay_s: float = Field(default=5.0, ge=0)  # wait after a NAK before the next attempt


class MeshConfig(_Section):
    radios: list[RadioConfig] = Field(default_factory=list)
    link: LinkConfig = LinkConfig()
    outbox: OutboxConfig = OutboxConfig()
    # Firmware's own NUM_ONLINE_SECS: the radio's screen and apps call a node online if heard in 2 h.
    # Default nodes send a position every 15 min and telemetry every 30, so 2 h is several misses.
    node_offline_after_s: float = Field(default=7200.0, gt=0)


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class ZoneConfig(_Section):
    """A geofence: a circle (`center` + `radius_m`) or a polygon (`points`), never both."""

    name: str = Field(pattern=ZONE_NAME_PATTERN)
    description: str = Field(default="", max_length=MAX_ZONE_DESCRIPTION)
    active: bool = True
    center: tuple[Latitude, Longitude] | None = None
    radius_m: float | None = Field(default=None, ge=MIN_ZONE_RADIUS_M, le=MAX_ZONE_RADIUS_M)
    points: list[tuple[Latitude, Longitude]] | None = Field(default=None, min_length=3,
                                                            max_length=MAX_ZONE_POINTS)

    @field_validator("points")
    @classmethod
    def _distinct_points(cls, points: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if points is not None and len(set(points)) < 3:
            raise ValueError("a polygon needs at least 3 distinct points")
        return points

    @model_validator(mode="after")
    def _one_shape(self) -> ZoneConfig:
        problem = _zone_shape_problem(self.center is not None, self.radius_m is not None,
                                      self.points is not None)
        if problem is not None:
            # ctx.field lets the API name the field; the message names it for the config file
            raise PydanticCustomError("zone_shape", "{field}: {reason}",
                                      {"field": problem[0], "reason": problem[1]})
        return self


def _zone_shape_problem(center: bool, radius: bool, points: bool) -> tuple[str, str] | None:
    if points and (center or radius):
        return "center" if center else "radius_m", "not allowed with points (a circle or a polygon, not both)"
    if not points and not center:
        return "center", "required: give center and radius_m (a circle) or points (a polygon)"
    if not points and not radius:
        return "radius_m", "required with center (a circle)"
    return None


class BotConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    pattern: str = Field(min_length=1, max_length=256)  # regex searched in received mesh texts
    reply: str | None = Field(default=None, max_length=200)  # sent back to the sender, if given

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern


class ProcessesConfig(_Section):
    max_chain_depth: int = Field(default=5, ge=0, le=50)  # runs started by runs, then by theirs...
    max_subprocess_depth: int = Field(default=5, ge=1, le=50)  # call_process nesting
    alert_on_failure: bool = True  # a failed execution raises a (deduplicated) station alert
    keep_executions_days: float = Field(default=30.0, gt=0, le=3650)  # finished runs older are pruned
    bots: list[BotConfig] = Field(default_factory=list)  # keyword bots fired by mesh texts


class MqttConfig(_Section):
    enabled: bool = False  # automation over MQTT is opt-in: a station often has no broker
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="firefly-station", min_length=1, max_length=64)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive_s: float = Field(default=30.0, ge=5, le=3600)  # a dead broker is noticed within 1.5x
    reconnect_max_s: float = Field(default=60.0, ge=1, le=3600)


class BoardLinkConfig(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: str  # serial:///dev/ttyUSB0?baud=115200, pty:///dev/pts/7 or tcp://host:port

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        from station.boards.transport import check_url  # the transport module owns the URL forms

        return check_url(url)


class BoardsConfig(_Section):
    cert_valid_days: int = Field(default=365, ge=1, le=3650)  # renewed with a fifth left
    enrollment_code_ttl_s: float = Field(default=900.0, ge=60, le=86400)  # walk to the board, type the code
    # Agents send a heartbeat every 5 s: three missed ones (a GC pause, a busy handler) is stale...
    heartbeat_timeout_s: float = Field(default=15.0, gt=0)
    # ...and a minute of silence is a board that is gone: the link is closed and rebuilt.
    offline_after_s: float = Field(default=60.0, gt=0)
    backoff_initial_s: float = Field(default=1.0, gt=0)  # a board resetting is back within seconds
    backoff_max_s: float = Field(default=60.0, gt=0)  # also the wait after a refused authentication
    # Log lines kept per board (`firefly board logs`): a day of a board logging every minute,
    # about 0.5 MB of SQLite per board at the 200-character cap.
    log_lines_per_board: int = Field(default=2000, ge=10, le=100_000)
    links: list[BoardLinkConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> BoardsConfig:
        if self.offline_after_s <= self.heartbeat_timeout_s:
            raise ValueError("offline_after_s must be longer than heartbeat_timeout_s")
        names = [link.name for link in self.links]
        if len(set(names)) != len(names):
            raise ValueError("board link names must be unique")
        return self


class WasmConfig(_Section):
    enabled: bool = True
    allow_unsigned: bool = False  # True: run apps nobody signed (a development station only)
    max_concurrent_calls: int = Field(default=4, ge=1, le=64)  # calls running at once; more wait their turn
    health_check_timeout_ms: int = Field(default=2000, ge=10, le=60_000)
    # The most any app's manifest may ask for: a Pi 4 with 2 GB runs a handful of apps at these.
    max_memory_bytes: int = Field(default=64 << 20, ge=1 << 16, le=1 << 32)
    max_fuel_per_call: int = Field(default=2_000_000_000, ge=1000)
    max_timeout_ms: int = Field(default=10_000, ge=10, le=600_000)
    max_kv_bytes: int = Field(default=1 << 20, ge=0)
    max_mesh_per_minute: int = Field(default=60, ge=0, le=600)


class StationConfig(_Section):
    data_dir: Path = Path("/var/lib/firefly-station")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api: ApiConfig = ApiConfig()
    store: StoreConfig = StoreConfig()
    mesh: MeshConfig = MeshConfig()
    processes: ProcessesConfig = ProcessesConfig()
    mqtt: MqttConfig = MqttConfig()
    boards: BoardsConfig = BoardsConfig()
    wasm: WasmConfig = WasmConfig()
    zones_hysteresis_m: float = Field(default=25.0, ge=0, le=MAX_ZONE_HYSTERESIS_M)  # handheld GPS error
    zones: list[ZoneConfig] = Field(default_factory=list)

    @field_validator("zones")
    @classmethod
    def _unique_zone_names(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        names = [zone.name for zone in zones]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"zone names must be unique; repeated: {', '.join(duplicates)}")
        return zones


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> StationConfig:
    """Read the TOML file (if any), apply environment overrides, validate."""
    env = dict(os.environ) if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path)
    _apply_env_overrides(raw, env)
    return validate_config(raw)


def validate_config(raw: dict[str, Any]) -> StationConfig:
    try:
        return StationConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        allowed = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = "unknown option (see docs/configuration.md)"
        raise ConfigError(key, first.get("input"), allowed) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("--config", str(path), "file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", str(path), f"not valid TOML: {exc}") from None


def _apply_env_overrides(raw: dict[str, Any], env: dict[str, str]) -> None:
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        if keys[0] not in StationConfig.model_fields:
            continue  # FIREFLY_API_URL and friends belong to the CLI, not the station
        section = raw
        for key in keys[:-1]:
            section = section.setdefault(key, {})
            if not isinstance(section, dict):
                raise ConfigError(".".join(keys), text, "cannot override a value with a section")
        section[keys[-1]] = _parse_env_value(text)


def _parse_env_value(text: str) -> Any:
    """Environment values are TOML scalars or arrays when they parse as such, else strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
