"""Process endpoints: definitions, manual runs, executions with steps, logs and traces,
templates and analytics. Each needs its permission (processes:view / create / execute)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from station.api.auth import require_permission
from station.processes import templates
from station.processes.catalog import ProcessInactive, ProcessNotFound, flatten
from station.processes.definition import ProcessDefinition
from station.processes.engine import ProcessEngine
from station.processes.errors import DefinitionError
from station.processes.templates import CATEGORIES
from station.store import processes as store

router = APIRouter(tags=["processes"])

MAX_PAGE = 1000

View = [Depends(require_permission("processes:view"))]
Create = [Depends(require_permission("processes:create"))]
Execute = [Depends(require_permission("processes:execute"))]


async def _engine(request: Request) -> ProcessEngine:
    engine: ProcessEngine = request.app.state.station.processes
    return engine


Engine = Annotated[ProcessEngine, Depends(_engine)]
Definition = Annotated[dict[str, Any], Body(description="a process definition (see docs/processes.md)")]


def _caller(request: Request) -> str:
    return str(getattr(request.state, "token_name", "api"))


def _definition_errors(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except DefinitionError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail={"field": exc.path, "error": exc.message}) from exc
    except ProcessNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc


# ---- definitions ---------------------------------------------------------------------------
@router.get("/processes", dependencies=View)
async def list_processes(
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    active_only: bool = False,
    template_id: str | None = None,
) -> dict[str, Any]:
    rows, total = store.list_processes(engine.database, active_only, template_id, limit, offset)
    return {"processes": rows, "total": total}


@router.get("/processes/analytics", dependencies=View)
async def analytics_overview(engine: Engine) -> dict[str, Any]:
    _rows, total = store.list_processes(engine.database, limit=1)
    _active, active = store.list_processes(engine.database, active_only=True, limit=1)
    return {"total_processes": total, "active_processes": active, **store.analytics(engine.database),
            "engine": engine.health.detail}


@router.post("/processes", status_code=status.HTTP_201_CREATED, dependencies=Create)
async def create_process(definition: Definition, engine: Engine, request: Request) -> dict[str, Any]:
    row = _definition_errors(lambda: engine.catalog.create(definition, _caller(request)))
    return {"process_id": row["id"], **row}


@router.get("/processes/{ref}", dependencies=View)
async def get_process(ref: str, engine: Engine) -> dict[str, Any]:
    return dict(_definition_errors(lambda: engine.catalog.get(ref)))


@router.put("/processes/{ref}", dependencies=Create)
async def update_process(ref: str, definition: Definition, engine: Engine) -> dict[str, Any]:
    row = _definition_errors(lambda: engine.catalog.update(ref, definition))
    return {"message": "updated", **row}


@router.delete("/processes/{ref}", dependencies=Create)
async def deactivate_process(ref: str, engine: Engine) -> dict[str, Any]:
    row = _definition_errors(lambda: engine.catalog.deactivate(ref))
    return {"message": "deactivated", **row}


class ExecuteIn(BaseModel):
    trigger_data: dict[str, Any] = Field(default_factory=dict)


@router.post("/processes/{ref}/execute", status_code=status.HTTP_202_ACCEPTED, dependencies=Execute)
async def execute_process(ref: str, engine: Engine, request: Request,
                          body: ExecuteIn | None = None) -> dict[str, Any]:
    try:
        return await engine.execute(ref, (body or ExecuteIn()).trigger_data, _caller(request))
    except ProcessNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except ProcessInactive as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc


@router.get("/processes/{ref}/executions", dependencies=View)
async def process_executions(
    ref: str, engine: Engine,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    process = _definition_errors(lambda: engine.catalog.get(ref))
    rows, total = store.list_executions(engine.database, process["id"], status_filter, limit, offset)
    return {"executions": rows, "total": total}


@router.get("/processes/{ref}/analytics", dependencies=View)
async def process_analytics(ref: str, engine: Engine) -> dict[str, Any]:
    process = _definition_errors(lambda: engine.catalog.get(ref))
    return {"process_id": process["id"], "name": process["name"],
            "execution_count": process["execution_count"], **store.analytics(engine.database, process["id"])}


# ---- executions ----------------------------------------------------------------------------
@router.get("/executions", dependencies=View)
async def list_executions(
    engine: Engine,
    process_id: str | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    rows, total = store.list_executions(engine.database, process_id, status_filter, limit, offset)
    return {"executions": rows, "total": total}


@router.get("/executions/{execution_id}", dependencies=View)
async def get_execution(execution_id: str, engine: Engine) -> dict[str, Any]:
    execution = store.get_execution(engine.database, execution_id)
    if execution is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no execution {execution_id}")
    return with_pending_steps(engine, execution)


@router.get("/executions/{execution_id}/logs", dependencies=View)
async def execution_logs(execution_id: str, engine: Engine) -> dict[str, Any]:
    if store.get_execution(engine.database, execution_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no execution {execution_id}")
    return {"logs": store.execution_logs(engine.database, execution_id)}


NOT_STARTED = {"status": "pending", "started_at": None, "completed_at": None, "input": None, "result": None,
               "error_message": None, "execution_time_ms": None, "retry_count": 0}


def with_pending_steps(engine: ProcessEngine, execution: dict[str, Any]) -> dict[str, Any]:
    """Add the steps that have not started yet, as `pending`, in definition order."""
    definition = ProcessDefinition.model_validate(
        store.definition_at(engine.database, execution["process_id"], execution["process_version"]))
    started = {step["action_path"]: step for step in execution["steps"]}
    execution["steps"] = [
        started.get(action["path"]) or {**NOT_STARTED, "execution_id": execution["id"],
                                        "action_path": action["path"], "action_type": action["type"]}
        for action in flatten(definition)
    ]
    return execution


# ---- templates -----------------------------------------------------------------------------
@router.get("/process-templates", dependencies=View)
async def list_templates(engine: Engine, category: str | None = None) -> dict[str, Any]:
    return {"templates": store.list_templates(engine.database, category), "categories": CATEGORIES}


class TemplateIn(BaseModel):
    process_id: str
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    category: str = Field(pattern="^(" + "|".join(CATEGORIES) + ")$")


@router.post("/process-templates", status_code=status.HTTP_201_CREATED, dependencies=Create)
async def create_template(body: TemplateIn, engine: Engine, request: Request) -> dict[str, Any]:
    process = _definition_errors(lambda: engine.catalog.get(body.process_id))
    if store.get_template(engine.database, body.name) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a template named {body.name} exists")
    row = store.insert_template(engine.database, body.name, body.description, body.category,
                                process["definition"], _caller(request))
    return {"template_id": row["id"], **row}


class InstantiateIn(BaseModel):
    customizations: dict[str, Any] = Field(default_factory=dict)


@router.post("/process-templates/{ref}/instantiate", status_code=status.HTTP_201_CREATED, dependencies=Create)
async def instantiate_template(ref: str, engine: Engine, request: Request,
                               body: InstantiateIn | None = None) -> dict[str, Any]:
    template = store.get_template(engine.database, ref)
    if template is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no template {ref}")
    customizations = (body or InstantiateIn()).customizations

    def make() -> dict[str, Any]:
        return engine.catalog.create(templates.instantiate(template, customizations), _caller(request), template["id"])

    row = _definition_errors(make)
    store.template_used(engine.database, template["id"])
    return {"process_id": row["id"], **row}
