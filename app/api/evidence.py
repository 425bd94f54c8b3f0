"""Tamper evidence: each node's chain head, and a full verification of the chain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from ..evidence import load_signing_key, public_key_hex, verify
from .auth import ERRORS, require

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"], responses=ERRORS,
                   dependencies=[Depends(require("investigator", "auditor"))])


class Head(BaseModel):
    node: str
    count: int
    last_id: int | None
    head: str | None


class CheckpointResult(BaseModel):
    id: int
    at: str
    count: int
    head: str
    problem: str | None
    signature: str


class Break(BaseModel):
    id: int
    reason: str


class NodeReport(BaseModel):
    node: str
    ok: bool
    hits: int
    head: str
    hits_before_chain: int
    first_break: Break | None
    checkpoints: list[CheckpointResult]


class Report(BaseModel):
    ok: bool
    nodes: list[NodeReport]


@router.get("/head", response_model=list[Head])
async def heads(request: Request) -> list[Head]:
    """Each node's chain: its length, last hit id and head hash (publish these to fix the log in time)."""
    rows = await request.app.state.store.chain_heads()
    request.state.audit_rows = len(rows)
    return [Head(**row) for row in rows]


@router.get("/verify", response_model=Report)
async def verify_chain(request: Request, node: str | None = None) -> Report:
    """Walk the chain of every node (or one): the first broken link, and every checkpoint checked
    against the chain and its signature (against this server's key when it has one)."""
    settings = request.app.state.settings
    trusted = public_key_hex(load_signing_key(settings.signing_key_file)) if settings.signing_key_file else None
    report = await verify(request.app.state.store, node, trusted)
    request.state.audit_rows = sum(n["hits"] for n in report["nodes"])
    return Report(**report)
