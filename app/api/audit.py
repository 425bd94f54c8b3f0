"""The audit log: every /api/ request, allowed or not, is recorded as it is answered.
Auditors read it; nothing in the API changes or deletes it (the database refuses too)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from ..query import parse_cursor, utc_moment, utc_text
from .auth import ERRORS, problem, require
from .deps import StoreDep

log = logging.getLogger("seized.audit")


def audited(path: str) -> bool:
    """API calls and the dashboard's pages, sign-in and exports (not its stylesheet and scripts)."""
    return path.startswith("/api/") or (path.startswith("/dashboard") and not path.startswith("/dashboard/static/"))


class AuditMiddleware:
    def __init__(self, app, store):
        self.app = app
        self.store = store

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not audited(scope["path"]):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        status = 500
        written = False

        async def insert(rows, status: int, stage: str | None = None) -> None:
            principal = state.get("principal")
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
            if stage:
                query[STAGE] = stage
            await self.store.add_audit(
                token_name=principal.name if principal else None, role=principal.role if principal else None,
                client_ip=(scope.get("client") or ("",))[0], method=scope["method"], endpoint=scope["path"],
                filters=json.dumps(query, ensure_ascii=False), rows=rows, status=status)

        async def write() -> None:
            nonlocal written
            written = True
            if state.get("audit_whole"):  # its row went in before the answer's first byte (audit_first)
                return
            try:
                await insert(state.get("audit_rows"), status)
            except Exception:
                log.exception("could not write the audit row for %s %s", scope["method"], scope["path"])

        async def first(rows: int | None, whole: bool) -> None:
            await insert(rows, 200, None if whole else "started")
            state["audit_whole"] = whole

        state["audit_first"] = first

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await write()  # before the last byte: whoever has an answer has an audit row
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if not written:
                await write()


# A streamed answer's row written before its first byte, while its count is unknown, carries this
# key in its filters (value "started"); the row written as the answer ends has the count.
STAGE = "_audit"


async def audit_first(request: Request, rows: int | None = None, whole: bool = False) -> None:
    """Write the request's audit row now, before the answer's first byte: an export or a package
    leaves no byte unaudited. `whole`: `rows` is the final count, and this is the request's only row;
    else it is a "started" row, and the row with the count follows as the answer ends. If the row
    cannot be written, the request is refused: 503, nothing sent."""
    try:
        await request.state.audit_first(rows, whole)
    except Exception as error:
        log.exception("could not write the audit row for %s %s: refused", request.method, request.url.path)
        raise HTTPException(503, "the audit log cannot be written (the database is locked or unavailable), so "
                                 "nothing is sent; try again shortly", headers={"Retry-After": "5"}) from error


class AuditEntry(BaseModel):
    id: int
    at: str
    token_name: str | None
    role: str | None
    client_ip: str | None
    method: str
    endpoint: str
    filters: dict
    rows: int | None
    status: int


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


router = APIRouter(prefix="/api/v1", tags=["audit"], responses=ERRORS)


@router.get("/audit", response_model=AuditPage, operation_id="list_audit_entries", dependencies=[Depends(require("auditor"))],
            responses={422: problem("invalid filter")})
async def read_audit(
    request: Request,
    store: StoreDep,
    since: Annotated[datetime | None, Query(description="at or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="before (RFC 3339)")] = None,
    token_name: Annotated[str | None, Query(description="requests made with this token")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The audit log, newest first."""
    try:
        before_id = parse_cursor(cursor)
        since, until = (None if moment is None else utc_moment(moment) for moment in (since, until))
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    rows = await store.query_audit(
        since=utc_text(since) if since else None, until=utc_text(until) if until else None,
        token_name=token_name, before_id=before_id, limit=limit)
    request.state.audit_rows = len(rows)
    items = [AuditEntry(**{**row, "filters": json.loads(row["filters"])}) for row in rows]
    return AuditPage(items=items, next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None)
