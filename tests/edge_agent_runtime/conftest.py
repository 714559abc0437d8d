from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.edge_agent_runtime.board import CODE, Board, board_maker

# Fast intervals so a test sees several of each within seconds; the watchdog stays out
# of the way (two heartbeats is its minimum) unless a test lowers it. Every board has a code.
FAST: dict[str, Any] = {"heartbeat_s": 0.5, "telemetry_s": 1.0, "watchdog_s": 10.0, "enroll_timeout_s": 5.0,
                        "enroll_token": CODE}


@pytest.fixture
def make_board(tmp_path: Path) -> Iterator[Callable[..., Board]]:
    with board_maker(tmp_path, Board, FAST) as make:
        yield make
