"""Board endpoints: the registry (list, get), one-time enrollment codes, revocation, live link
sessions, commands to connected boards, config and file deploys, and board logs. Thin: the
boards service does the work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from edge_agent.protocol import COMMAND_NAMES
from station.api.auth import require_token
from station.boards import BoardError, BoardNotFound, CommandTimeout, SessionEnded
from station.boards.deploy import MAX_FILE_BYTES
from station.boards.errors import DeployNotFound, InvalidBoardInput
from station.boards.service import BoardService

router = APIRouter(prefix="/boards", tags=["boards"], dependencies=[Depends(require_token)])

MAX_COMMAND_TIMEOUT_S = 300.0  # a handler on a slow board; longer means the board is gone


async def _boards(request: Request) -> BoardService:
    service: BoardService = request.app.state.station.boards
    return service


Boards = Annotated[BoardService, Depends(_boards)]


def _caller(request: Request) -> str:
    return str(getattr(request.state, "token_name", "api"))


@router.get("")
async def list_boards(boards: Boards, state: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    registry = boards.trust.registry
    return {"boards": [record.as_dict() for record in registry.list(state, limit)],
            "counts": registry.counts(), "links": boards.sessions()}


class CodeIn(BaseModel):
    profile: str | None = Field(default=None, description="only a board of this profile may use it")
    ttl_s: float | None = Field(default=None, gt=0, le=86400, description="lifetime; default [boards]")
    reenroll_board_id: str | None = Field(default=None, description="a reflashed board getting a new key")


@router.post("/enrollment-codes", status_code=status.HTTP_201_CREATED)
async def create_code(boards: Boards, request: Request, body: CodeIn | None = None) -> dict[str, Any]:
    """A one-time code to type into `scripts/flash-board --enroll-code`; shown once."""
    wanted = body or CodeIn()
    try:
        code = boards.create_code(wanted.profile, wanted.ttl_s, wanted.reenroll_board_id, _caller(request))
    except InvalidBoardInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    except BoardError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return {"code": code.code, "code_id": code.code_id, "expires_at": code.expires_at,
            "profile": code.profile, "reenroll_board_id": code.reenroll_board_id}


@router.get("/{board_id}")
async def get_board(board_id: str, boards: Boards) -> dict[str, Any]:
    try:
        record = boards.trust.registry.get(board_id)
    except BoardNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    links = [link for link in boards.sessions() if link.get("board_id") == board_id]
    return {**record.as_dict(), "links": links}


class RevokeIn(BaseModel):
    reason: str = Field(default="revoked by an operator", min_length=1, max_length=200)


@router.post("/{board_id}/revoke")
async def revoke_board(board_id: str, boards: Boards, request: Request,
                       body: RevokeIn | None = None) -> dict[str, Any]:
    """Refuse the board from now on; its live session is closed at once."""
    try:
        record = boards.revoke(board_id, (body or RevokeIn()).reason, _caller(request))
    except BoardNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except BoardError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return record.as_dict()


class CommandIn(BaseModel):
    cmd: str = Field(description=f"one of {', '.join(COMMAND_NAMES)}")
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_COMMAND_TIMEOUT_S)


@router.post("/{board_id}/commands")
async def command_board(board_id: str, body: CommandIn, boards: Boards) -> dict[str, Any]:
    """Run a command on a connected board over its authenticated session and return its result."""
    if body.cmd not in COMMAND_NAMES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": "cmd", "error": f"must be one of {', '.join(COMMAND_NAMES)}"})
    try:
        result = await boards.command(board_id, body.cmd, body.args, body.timeout_s)
    except SessionEnded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except CommandTimeout as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, detail=str(exc)) from exc
    return {"board_id": board_id, "cmd": body.cmd, "ok": result.ok, "value": result.value, "error": result.error}


@router.get("/{board_id}/logs")
async def board_logs(board_id: str, boards: Boards,
                     after: Annotated[int | None, Query(ge=0, description="only lines after this id")] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     level: Annotated[str | None, Query(pattern="^(debug|info|warning|error)$",
                                                        description="this level and above")] = None,
                     ) -> dict[str, Any]:
    """Log lines the board sent, oldest first: the newest `limit`, or the first `limit` after the
    id `after` (`last_id` of the previous answer, to follow)."""
    try:
        boards.trust.registry.get(board_id)
    except BoardNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    lines = boards.logbook.lines(board_id, after, limit, level)
    return {"board_id": board_id, "lines": lines, "last_id": lines[-1]["id"] if lines else (after or 0)}


def _deploy_errors(exc: BoardError) -> HTTPException:
    if isinstance(exc, BoardNotFound | DeployNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))
    if isinstance(exc, InvalidBoardInput):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"field": exc.field, "error": str(exc)})
    return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))  # revoked, already closed


@router.post("/{board_id}/files", status_code=status.HTTP_202_ACCEPTED, openapi_extra={
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                          "format": "binary"}}}}})
async def deploy_file(board_id: str, boards: Boards, request: Request,
                      path: Annotated[str, Query(min_length=1, max_length=128,
                                                 description="where the file goes under the board's files root")],
                      ) -> dict[str, Any]:
    """Queue a file (the raw request body) for the board: committed before the answer, sent when the
    board is connected, resumed after a broken link, switched in only once its SHA-256 verifies."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"at most {MAX_FILE_BYTES} bytes")
    data = await request.body()
    try:
        deploy = boards.deploy_file(board_id, path, data, _caller(request))
    except BoardError as exc:
        raise _deploy_errors(exc) from exc
    return deploy.as_dict()


class ConfigIn(BaseModel):
    options: dict[str, Any] = Field(description="agent options to write, e.g. {\"telemetry_s\": 60}")


@router.post("/{board_id}/config", status_code=status.HTTP_202_ACCEPTED)
async def deploy_config(board_id: str, body: ConfigIn, boards: Boards, request: Request) -> dict[str, Any]:
    """Queue agent options for the board; written (persisted and applied in one step) when it is connected."""
    try:
        deploy = boards.deploy_config(board_id, body.options, _caller(request))
    except BoardError as exc:
        raise _deploy_errors(exc) from exc
    return deploy.as_dict()


@router.get("/{board_id}/deploys")
async def list_deploys(board_id: str, boards: Boards,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """The board's config and file deploys, newest first."""
    try:
        boards.trust.registry.get(board_id)
    except BoardNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return {"board_id": board_id, "deploys": [deploy.as_dict() for deploy in boards.deploys.list(board_id, limit)]}


@router.get("/deploys/{deploy_id}")
async def get_deploy(deploy_id: str, boards: Boards) -> dict[str, Any]:
    try:
        return boards.deploys.get(deploy_id).as_dict()
    except BoardError as exc:
        raise _deploy_errors(exc) from exc


@router.post("/deploys/{deploy_id}/cancel")
async def cancel_deploy(deploy_id: str, boards: Boards) -> dict[str, Any]:
    """Stop a queued or sending deploy; a half-sent file is never switched in on the board."""
    try:
        return boards.deploys.cancel(deploy_id).as_dict()
    except BoardError as exc:
        raise _deploy_errors(exc) from exc
