"""Structured log fields must not collide with LogRecord's own attributes: logging raises
KeyError for those, which would turn a log line into a crash of the code that logged it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
EXTRA_KEYS = re.compile(r'extra=\{([^}]*)\}')
KEY = re.compile(r'"([A-Za-z_]+)"\s*:')


def test_no_log_call_uses_a_reserved_field() -> None:
    clashes = []
    for path in Path(__file__).resolve().parents[2].joinpath("station").rglob("*.py"):
        for match in EXTRA_KEYS.finditer(path.read_text()):
            clashes += [f"{path.name}: {key}" for key in KEY.findall(match.group(1)) if key in RESERVED]
    assert clashes == []
