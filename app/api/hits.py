"""Investigators: hits, one hit, streamed exports, stats."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, create_model

from ..hit_fields import FIELDS
from ..query import (EXPORT_FORMATS, GROUPS, MAX_ID, MAX_PAGE, OUTSIDE_CHAIN_HEADER, Exporter, ExportFormat, HitFilter,
                     outside_chain_note, parse_cursor, record)
from .audit import audit_first
from .auth import ERRORS, UNAVAILABLE, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["hits"], responses=ERRORS, dependencies=[Depends(require("investigator"))])
INVALID = {422: problem("invalid filter or cursor")}
UNAUDITED = {503: problem(f"the audit row could not be written first, or {UNAVAILABLE}: nothing sent")}
Filters = Annotated[HitFilter, Query()]
log = logging.getLogger("seized.api")
# Rows outside the chain are left out of every answer (query.OUTSIDE_CHAIN_HEADER); those with ids
# below 1 that match are counted in this header, present only when there are any.
OUTSIDE = {"headers": {OUTSIDE_CHAIN_HEADER: {
    "description": "rows matching the filters left out as outside the chain (ids below 1, which seized never gives); "
                   "present only when there are any. Rows without a hash inside a chain are left out too, uncounted: "
                   "`seized verify` reports them.",
    "schema": {"type": "integer"}}}}


async def flag_outside_chain(request: Request, store, filters: HitFilter, headers) -> None:
    """Say in `headers` (and the log) how many rows with ids below 1 matching `filters` were left out."""
    count = await store.outside_chain(filters)
    if count:
        headers[OUTSIDE_CHAIN_HEADER] = str(count)
        log.warning("%s %s: %s", request.method, request.url.path, outside_chain_note(count))


# The record as the API gives it, built from hit_fields.FIELDS (types and descriptions).
HitRecord = create_model("HitRecord", **{f.name: (f.type, Field(description=f.about)) for f in FIELDS if f.public})


class HitPage(BaseModel):
    items: list[HitRecord]
    next_cursor: str | None


class StatsRow(BaseModel):
    key: str | None
    hits: int
    distinct_ips: int


class Stats(BaseModel):
    group: str
    rows: list[StatsRow]


@router.get("/hits", response_model=HitPage, operation_id="list_hits", responses={**INVALID, 200: OUTSIDE})
async def list_hits(
    request: Request,
    response: Response,
    store: StoreDep,
    filters: Filters,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> HitPage:
    """Hits matching the filters, newest first, one keyset page at a time: pass `next_cursor` back
    as `cursor`. Pages stay exact while new hits arrive."""
    try:
        before_id = parse_cursor(cursor)
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    rows = await store.query_hits(filters, before_id, limit)
    request.state.audit_rows = len(rows)
    await flag_outside_chain(request, store, filters, response.headers)
    return HitPage(items=[record(row) for row in rows], next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None)


# StreamingResponse has no media type of its own, so the document lists only the real ones (and
# the error models stay JSON); CSV first, which generated clients take as text.
@router.get("/hits/export", operation_id="export_hits", response_class=StreamingResponse, responses={**INVALID, **UNAUDITED, 200: {
    "description": f"every matching hit, oldest first; {' or '.join(spec.label for spec in EXPORT_FORMATS.values())}; "
                   "timestamps to the microsecond",
    "content": {spec.media_type.partition(";")[0]: {"schema": {"type": "string"}} for spec in EXPORT_FORMATS.values()},
    **OUTSIDE,
}})
async def export_hits(request: Request, store: StoreDep, filters: Filters, format: ExportFormat = "csv") -> StreamingResponse:
    """Streamed, in constant memory however many rows match. Audited before the first byte (a row
    marked `"_audit": "started"`, then one with the count as it ends); 503 if that row cannot be written."""
    request.state.audit_rows = 0
    exporter = Exporter(format)

    async def body():
        yield exporter.start()
        async for rows in store.iter_hits(filters, format):
            request.state.audit_rows += len(rows)
            yield await asyncio.to_thread(exporter.rows, rows)  # formatting off the event loop the listeners share

    spec = EXPORT_FORMATS[format]
    headers = {"Content-Disposition": f'attachment; filename="hits.{spec.suffix}"'}
    await flag_outside_chain(request, store, filters, headers)  # before the body: headers go first
    await audit_first(request)  # a "started" row before the first byte, or 503 and nothing sent
    return StreamingResponse(body(), media_type=spec.media_type, headers=headers)


@router.get("/hits/{hit_id}", response_model=HitRecord, operation_id="get_hit", responses={404: problem("no such hit")})
async def get_hit(request: Request, store: StoreDep, hit_id: int) -> HitRecord:
    """One hit, every field. A row outside the chain is no hit: 404 (so is an id past 64 bits, which no row can have)."""
    row = await store.get_hit(hit_id) if 1 <= hit_id <= MAX_ID else None
    request.state.audit_rows = 0 if row is None else 1
    if row is None:
        raise HTTPException(404, f"no hit {hit_id}")
    return HitRecord(**record(row))


@router.get("/stats", response_model=Stats, operation_id="hit_stats", responses={**INVALID, 200: OUTSIDE})
async def stats(request: Request, response: Response, store: StoreDep, filters: Filters,
                group: Literal[GROUPS] = "domain") -> Stats:  # type: ignore[valid-type]
    """Hit counts and distinct client IPs per group (hours and days in UTC)."""
    rows = await store.hit_stats(filters, group)
    request.state.audit_rows = len(rows)
    await flag_outside_chain(request, store, filters, response.headers)
    return Stats(group=group, rows=[StatsRow(key=None if r["grp"] is None else str(r["grp"]), hits=r["hits"], distinct_ips=r["distinct_ips"])
                                     for r in rows])
