"""API tokens with permissions (admin only): create (the token is shown once), list, revoke."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, field_validator

from station.admintoken import new_token, token_digest
from station.api.auth import PERMISSIONS, require_token
from station.store import tokens as token_store

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[Depends(require_token)])

TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TokenIn(BaseModel):
    name: str = Field(description="a unique name, e.g. the operator or the script using it")
    permissions: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TOKEN_NAME.match(name):
            raise ValueError("1-64 letters, digits, '_', '.', '-'")
        return name

    @field_validator("permissions")
    @classmethod
    def _known(cls, permissions: list[str]) -> list[str]:
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown permission(s) {unknown}; known: {sorted(PERMISSIONS)}")
        return permissions


@router.get("")
async def list_tokens(request: Request) -> dict[str, Any]:
    return {"tokens": token_store.list_tokens(request.app.state.station.database),
            "permissions": PERMISSIONS}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenIn, request: Request) -> dict[str, Any]:
    token = new_token()
    try:
        row = token_store.insert_token(request.app.state.station.database, body.name,
                                       token_digest(token), body.permissions)
    except sqlite3.IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a token named {body.name} exists") from exc
    return {**row, "token": token}


@router.delete("/{name}")
async def revoke_token(name: str, request: Request) -> dict[str, Any]:
    if not token_store.revoke(request.app.state.station.database, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no active token named {name}")
    return {"name": name, "revoked": True}
