"""Tamper evidence: each node's chain head, and a full verification of the chain."""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ..domains import load_table
from ..evidence import verify
from ..package import PackageError, geo_filter_problem, write_package
from ..query import HitFilter
from .audit import audit_first
from .auth import ERRORS, UNAVAILABLE, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"], responses=ERRORS,
                   dependencies=[Depends(require("investigator", "auditor"))])


class Head(BaseModel):
    node: str
    count: int
    last_id: int | None
    head: str | None


class Timestamp(BaseModel):
    status: str  # valid, invalid, none, unchecked
    time: str | None
    problem: str | None


class CheckpointResult(BaseModel):
    id: int
    at: str
    count: int
    head: str
    problem: str | None
    signature: str
    clock: str | None = None  # a note when the clock was not synchronised or was stepped
    timestamp: Timestamp | None = None  # its RFC 3161 token, checked against tsa_certificate


class Break(BaseModel):
    id: int
    reason: str


class Purge(BaseModel):
    at: str
    cutoff: str
    first_id: int
    last_id: int
    hits: int
    head_at_cut: str
    checkpoint_id: int | None = None  # the first checkpoint past the cut (none: a purge from before schema 17)
    problem: str | None
    signature: str  # valid, unsigned, invalid, signed by another key


class NodeReport(BaseModel):
    node: str
    ok: bool
    hits: int
    head: str
    hits_before_chain: int
    first_break: Break | None
    checkpoints: list[CheckpointResult]
    purged: list[Purge]


class Report(BaseModel):
    ok: bool
    nodes: list[NodeReport]
    trusted_keys: list[str]  # the pinned signers (hex); empty: none pinned


@router.get("/head", response_model=list[Head], operation_id="list_chain_heads")
async def heads(request: Request, store: StoreDep) -> list[Head]:
    """Each node's chain: its length, last hit id and head hash (publish these to fix the log in time)."""
    rows = await store.chain_heads()
    request.state.audit_rows = len(rows)
    return [Head(**row) for row in rows]


@router.get("/verify", response_model=Report, operation_id="verify_chains")
async def verify_chain(request: Request, store: StoreDep, node: str | None = None) -> Report:
    """Walk the chain of every node (or one): the first broken link, and every checkpoint checked
    against the chain, the one before it and its signature: signed by a key in `trusted_public_keys`
    or this server's own signing key, when any is configured."""
    state = request.app.state
    report = await verify(store, node, state.trusted_keys, tsa_certificate=state.tsa_certificate)
    request.state.audit_rows = sum(n["hits"] for n in report["nodes"])
    return Report(**report)


class PlanRow(BaseModel):
    asn: int | None
    as_org: str | None
    hits: int
    distinct_ips: int


@router.get("/plan", response_model=list[PlanRow], operation_id="plan_requests", dependencies=[Depends(require("investigator"))],
            responses={422: problem("invalid filter")})
async def plan(request: Request, store: StoreDep, filters: Annotated[HitFilter, Query()]) -> list[PlanRow]:
    """Which ISPs (autonomous systems) to ask: hits and distinct client IPs per ASN, busiest first."""
    rows = await store.asn_plan(filters)
    request.state.audit_rows = len(rows)
    return [PlanRow(**row) for row in rows]


@router.get("/package", operation_id="export_package", response_class=StreamingResponse,
            dependencies=[Depends(require("investigator"))], responses={
    422: problem("invalid filter, or an asn or country filter no hit can match (stored without GeoIP)"),
    409: problem("the hash chain does not prove the rows (run verify)"),
    503: problem(f"the audit row could not be written first, or {UNAVAILABLE}: nothing sent"),
    200: {"description": "a ZIP: hits.csv, records.jsonl, chain-N.txt, manifest.json (+ .sig, .tsr), verify.js, README.txt", "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
})
async def package(request: Request, store: StoreDep, filters: Annotated[HitFilter, Query()]) -> StreamingResponse:
    """One matching package for one ISP data request (usually filtered by `asn`, `since`, `until`)."""
    state = request.app.state
    table = await load_table(store, state.settings.notice)
    notice = table.match(filters.domain) if filters.domain else table.default
    texts = state.languages[notice.language if notice.language in state.languages else "en"]
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # large packages go to disk, not memory
    try:
        manifest = await write_package(store, filters, spool, notice, texts, state.settings)
    except PackageError as error:
        spool.close()
        raise HTTPException(409, f"no package: {error}") from None
    if manifest["rows"] == 0 and (geo := await geo_filter_problem(store, filters, state.settings)):
        spool.close()
        raise HTTPException(422, geo)
    request.state.audit_rows = manifest["rows"]
    try:
        await audit_first(request, manifest["rows"], whole=True)  # its only row, before the first byte; or 503
    except HTTPException:
        spool.close()
        raise
    spool.seek(0)

    def chunks():
        with spool:
            while data := spool.read(256 * 1024):
                yield data

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Disposition": 'attachment; filename="evidence-package.zip"'})
