"""Administrators: API tokens (the secret is returned once, at creation) and the settings in force."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..tokens import create_token
from .auth import BAD_BODY, ERRORS, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=ERRORS, dependencies=[Depends(require("admin"))])
Role = Literal["admin", "investigator", "auditor"]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    expires_days: float | None = Field(None, gt=0, le=3650)


class TokenOut(BaseModel):
    id: str
    name: str
    role: Role
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class NewToken(TokenOut):
    token: str = Field(description="the secret: shown this once, only its hash is kept")


@router.get("/tokens", response_model=list[TokenOut], operation_id="list_tokens")
async def list_tokens(request: Request, store: StoreDep) -> list[TokenOut]:
    rows = await store.list_tokens()
    request.state.audit_rows = len(rows)
    return [TokenOut(**row) for row in rows]


@router.post("/tokens", response_model=NewToken, status_code=201, operation_id="create_token", responses={400: BAD_BODY, 409: problem("the name is taken")})
async def add_token(store: StoreDep, new: TokenIn) -> NewToken:
    if any(row["name"] == new.name for row in await store.list_tokens()):
        raise HTTPException(409, f"a token named {new.name!r} exists")
    secret = await create_token(store, new.name, new.role, new.expires_days)
    row = next(row for row in await store.list_tokens() if row["name"] == new.name)
    return NewToken(**row, token=secret)


@router.delete("/tokens/{name}", status_code=204, operation_id="revoke_token", responses={404: problem("no active token of that name")})
async def revoke_token(store: StoreDep, name: str) -> Response:
    """Revokes the token; the record stays, for the audit trail."""
    if not await store.revoke_token(name):
        raise HTTPException(404, f"no active token named {name!r}")
    return Response(status_code=204)


@router.get("/settings", operation_id="get_settings")
async def read_settings(request: Request) -> dict:
    """The settings this server runs with (from file, environment and options)."""
    return request.app.state.settings.model_dump(mode="json")
