"""The management listener (FastAPI). Never mounted on the public listener."""

from __future__ import annotations

from fastapi import FastAPI

from . import __version__


def create_admin_app(writer, node: str) -> FastAPI:
    app = FastAPI(title="seized management API", version=__version__)

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness, and the hit writer's counters."""
        return {"status": "ok", "node": node, "writer_alive": writer.alive, "storage_ok": writer.storage_ok,
                "queued": writer.queue.qsize(), "counters": writer.counters}

    return app
