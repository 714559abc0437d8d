"""Structured logging: one line per event, `extra={...}` fields appended as key=value, or one
JSON object per line (`firefly station run --json`) for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

# color_message: uvicorn's ANSI-coloured copy of the message, noise in a log file
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"t": round(record.created, 3), "level": record.levelname,
                                 "logger": record.name, "msg": record.getMessage(), **_extras(record)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else
                         KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the meshtastic library logs every frame at INFO/WARNING; keep the station's log readable
    logging.getLogger("meshtastic").setLevel(max(logging.WARNING, root.level))
