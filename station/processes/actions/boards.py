"""Board actions: board_command (one protocol command on a connected board) and
board_config_push (write_config: the board persists and applies the options atomically),
both through the boards service.

A resumed step after a crash sends its command again: the protocol has no idempotency key,
so what makes that safe is the command itself (reads repeat harmlessly, a write_config of the
same options leaves the same config). Must not talk to a session directly: the service picks it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from edge_agent.protocol import COMMAND_NAMES
from station.boards import CommandResult, CommandTimeout, SessionEnded
from station.boards.ca import BOARD_ID_PATTERN
from station.boards.session import COMMAND_TIMEOUT_S
from station.boards.transport import BoardLinkError
from station.processes.actions import ActionContext, ActionFailed, action

MAX_COMMAND_TIMEOUT_S = 600.0  # a board handler running longer is a job, not a command
NOT_CONNECTED = "not connected"  # the state BoardService.command gives when no session is up


class _BoardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    board_id: str
    timeout_seconds: float = Field(default=COMMAND_TIMEOUT_S, gt=0, le=MAX_COMMAND_TIMEOUT_S)

    @field_validator("board_id")
    @classmethod
    def _board_id(cls, value: str) -> str:
        if not BOARD_ID_PATTERN.fullmatch(value):
            raise PydanticCustomError("board_id", "must be a board id like 'ws-ridge-01'")
        return value


class BoardCommand(_BoardConfig):
    cmd: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cmd")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in COMMAND_NAMES:
            known = ", ".join(COMMAND_NAMES)
            raise PydanticCustomError("board_cmd", "unknown board command '{cmd}'; known: {known}",
                                      {"cmd": value, "known": known})
        return value


class BoardConfigPush(_BoardConfig):
    options: dict[str, Any] = Field(min_length=1)


def _waits(config: _BoardConfig) -> float:
    """The board's own answer time; the step's timeout_seconds comes on top of it."""
    return config.timeout_seconds


@action("board_command", BoardCommand, runs_for=_waits)
async def board_command(config: BoardCommand, context: ActionContext) -> Any:
    """The command's value is the step's result: `{{ steps.<id>.result }}`."""
    return await run_command(context, config.board_id, config.cmd, config.args, config.timeout_seconds)


@action("board_config_push", BoardConfigPush, runs_for=_waits)
async def board_config_push(config: BoardConfigPush, context: ActionContext) -> Any:
    """The board's resulting public config (its secrets left out) is the step's result."""
    return await run_command(context, config.board_id, "write_config", config.options, config.timeout_seconds)


async def run_command(context: ActionContext, board_id: str, cmd: str, args: dict[str, Any],
                      timeout_s: float) -> Any:
    boards = context.service("boards")
    try:
        result: CommandResult = await boards.command(board_id, cmd, args, timeout_s)
    except SessionEnded as exc:
        if exc.state == NOT_CONNECTED:
            raise ActionFailed(f"board {board_id} is not connected") from exc
        raise ActionFailed(f"board {board_id}: session ended during {cmd} ({exc.state})") from exc
    except CommandTimeout as exc:
        raise ActionFailed(f"board {board_id} did not answer {cmd} within {exc.timeout_s:g} s") from exc
    except BoardLinkError as exc:
        raise ActionFailed(f"board {board_id}: {cmd} not sent: {exc}") from exc
    context.log(f"board {cmd}", {"board_id": board_id, "ok": result.ok})
    if not result.ok:
        raise ActionFailed(f"board {board_id} refused {cmd}: {result.error or 'no reason given'}",
                           {"board_id": board_id, "cmd": cmd, "error": result.error})
    return result.value
