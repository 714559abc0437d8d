"""The agent's options: defaults here, then the profile's [agent] table, then the overrides
written by the station (command write_config, stored by storage.py as config.json).

Owns the option names, their kinds and bounds, and the merge; it does no I/O. Every
option, its default and its bound appear here once.
"""

from edge_agent.protocol import LOG_LEVELS

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

HEARTBEAT_S = 5.0  # board agents wake this often on battery; the station times out after three
TELEMETRY_S = 30.0  # sensor readings change slowly; 0 turns periodic telemetry off
WATCHDOG_S = 30.0  # a loop stalled this long is rebooted; at least two heartbeats; read at boot
ENROLL_TIMEOUT_S = 10.0  # wait this long for enroll_response before running unenrolled
MIN_INTERVAL_S = 0.1  # below this a heartbeat or telemetry tick would starve the link
MAX_INTERVAL_S = 86400.0  # a day: anything longer is a typo, not a duty cycle

DEFAULTS: dict[str, Any] = {
    "heartbeat_s": HEARTBEAT_S,
    "telemetry_s": TELEMETRY_S,
    "watchdog_s": WATCHDOG_S,
    "enroll_timeout_s": ENROLL_TIMEOUT_S,
    "enroll_token": "",  # one-time enrollment token, dropped once the board is enrolled
    "board_id": "",  # empty: derived from machine.unique_id() or the public key at first boot
    "sensors": [],  # names from sensors.py, read for telemetry and read_sensor
    "sensor_seed": 1,  # seeds the simulated sensors of the unix-sim board
    "log_level": "info",  # the lowest level sent to the station as log messages
}
SECRET = ("enroll_token",)  # never returned by read_config
READ_ONLY = ("board_id",)  # fixed at first boot: identity.json holds the real one


class ConfigError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config {key}: {reason}")
        self.key = key
        self.reason = reason


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(key: str, value: Any, default: Any) -> Any:
    """`value` converted to the kind of `default`, or ConfigError."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, "must be true or false")
        return value
    if isinstance(default, float):
        if not _is_number(value):
            raise ConfigError(key, "must be a number")
        value = float(value)
        if value != 0 and not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
            raise ConfigError(key, f"must be 0 or between {MIN_INTERVAL_S} and {MAX_INTERVAL_S}")
        return value
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(key, "must be an integer")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(key, "must be text")
        if key == "log_level" and value not in LOG_LEVELS:
            raise ConfigError(key, "must be one of " + ", ".join(LOG_LEVELS))
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(key, "must be a list of text")
        return list(value)
    return value


def _check_consistent(merged: dict[str, Any]) -> None:
    heartbeat = merged["heartbeat_s"]
    if heartbeat <= 0:
        raise ConfigError("heartbeat_s", "must be positive")
    watchdog = merged["watchdog_s"]
    if watchdog and watchdog < 2 * heartbeat:
        raise ConfigError("watchdog_s", f"must be 0 (off) or at least two heartbeats ({2 * heartbeat} s)")


def merge(profile_agent: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The effective options: DEFAULTS < profile [agent] < stored overrides. Unknown keys
    in the profile are kept (board-specific handlers read them). A stored override that
    no longer validates is ignored, and if the overrides together contradict each other
    (watchdog shorter than two heartbeats) all are: a bad config.json cannot keep a
    board offline. A bad profile raises ConfigError."""
    merged = dict(DEFAULTS)
    for key, value in profile_agent.items():
        merged[key] = _check(key, value, DEFAULTS[key]) if key in DEFAULTS else value
    _check_consistent(merged)
    candidate = dict(merged)
    for key, value in overrides.items():  # all at once: MicroPython dicts have no order
        if key in DEFAULTS:
            try:
                candidate[key] = _check(key, value, DEFAULTS[key])
            except ConfigError:
                continue
    try:
        _check_consistent(candidate)
    except ConfigError:
        return merged
    return candidate


def apply_changes(current_overrides: dict[str, Any], profile_agent: dict[str, Any],
                  changes: dict[str, Any]) -> dict[str, Any]:
    """The new overrides after write_config(changes); ConfigError names the first bad key."""
    overrides = dict(current_overrides)
    for key, value in changes.items():
        if not isinstance(key, str) or key not in DEFAULTS:
            raise ConfigError(str(key), "unknown option")
        if key in READ_ONLY:
            raise ConfigError(key, "is fixed at first boot")
        overrides[key] = _check(key, value, DEFAULTS[key])
    merged = dict(DEFAULTS)
    merged.update(profile_agent)
    merged.update(overrides)
    _check_consistent(merged)
    return overrides


def public(options: dict[str, Any]) -> dict[str, Any]:
    """The options as read_config returns them: secrets left out."""
    return {key: value for key, value in options.items() if key not in SECRET}
