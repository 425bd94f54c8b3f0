"""Probes: unauthenticated, and not audited (they are not API calls)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .deps import StoreDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    node: str


class Readiness(BaseModel):
    ready: bool
    database: bool
    problems: list[str]
    journal: dict[str, int]
    ingest: dict[str, int | float | bool]
    workers: list[dict[str, int | str | bool]]
    auth_failures: int
    auth_throttled: int


@router.get("/healthz", response_model=Health, operation_id="get_health")
async def healthz(request: Request) -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", node=request.app.state.settings.node)


@router.get("/readyz", response_model=Readiness, operation_id="get_readiness", responses={503: {"model": Readiness, "description": "not ready"}})
async def readyz(request: Request, store: StoreDep):
    """Ready: the database answers, every listener worker and the ingest process run, the journal
    takes writes and ingest reaches the database. With the journal's counters (received, journaled,
    held in memory, lost), the ingest backlog in hits, bytes and seconds, and the failed / throttled
    API authentications since start. 503 with the problems named when degraded."""
    state = request.app.state
    try:
        await asyncio.wait_for(store.ping(), timeout=2)
        database = True
    except Exception:
        database = False
    status = state.pipeline.status()
    problems = status["problems"] + ([] if database else ["the management API cannot read the database"])
    body = Readiness(ready=not problems, database=database and status["ingest"].get("database_ok", False), problems=problems,
                     journal=status["journal"], ingest=status["ingest"], workers=status["workers"],
                     auth_failures=state.limiter.failed, auth_throttled=state.limiter.throttled)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
