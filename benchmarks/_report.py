"""How every benchmark hands its figures over: one JSON line on stdout (for scripts and comparisons)
and a readable summary on stderr, with the machine's load at the end (other work on the box skews
figures). Owns the output format only; must not measure anything."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any


def emit(report: dict[str, Any], summary: Callable[[dict[str, Any]], str]) -> None:
    report.setdefault("load_avg_1m_at_end", round(os.getloadavg()[0], 2))
    print(json.dumps(report))
    print(summary(report), file=sys.stderr)
