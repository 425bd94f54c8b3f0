"""Probes: unauthenticated, and not audited (they are not API calls)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    node: str


class Readiness(BaseModel):
    ready: bool
    database: bool
    writer_alive: bool
    storage_ok: bool
    queued: int
    spool_bytes: int
    counters: dict[str, int]
    auth_failures: int
    auth_throttled: int


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", node=request.app.state.settings.node)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
async def readyz(request: Request):
    """Ready: the database answers, the hit writer runs; with the spool size, the writer's counters
    and the failed / throttled API authentications since start."""
    state = request.app.state
    try:
        await asyncio.wait_for(state.store.ping(), timeout=2)
        database = True
    except Exception:
        database = False
    writer = state.writer
    spool_bytes = await asyncio.to_thread(writer.spool.size)
    body = Readiness(ready=database and writer.alive, database=database, writer_alive=writer.alive,
                     storage_ok=writer.storage_ok, queued=writer.queue.qsize(), spool_bytes=spool_bytes,
                     counters=writer.counters, auth_failures=state.limiter.failed,
                     auth_throttled=state.limiter.throttled)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
