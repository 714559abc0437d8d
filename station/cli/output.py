"""Exit codes that scripts can rely on, and text/JSON output shared by every command."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table


class Exit(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the operation ran and failed (a message that failed, a station that stopped)
    USAGE = 2  # bad input: nothing was done
    UNAVAILABLE = 3  # the station is not running or not reachable
    NOT_FOUND = 4  # the thing asked for does not exist
    UNAUTHORIZED = 5  # the token was refused


console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def fail(code: Exit, message: str, as_json: bool = False) -> NoReturn:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    else:
        errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise SystemExit(int(code))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(view)


def local_time(stamp: float | None) -> str:
    """A Unix time as local "YYYY-MM-DD HH:MM:SS" for tables and log lines; "" for none."""
    return "" if not stamp else datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
