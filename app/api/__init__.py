"""The management API (FastAPI) on its own listener: investigators, administrators, auditors."""

from __future__ import annotations

from fastapi import FastAPI

from .. import __version__
from . import audit, domains, evidence, health, hits, subjects, tokens
from ..notice.texts import load_languages
from .auth import FailureLimiter


def create_management_app(*, store, pipeline, settings) -> FastAPI:
    app = FastAPI(
        title="seized management API",
        version=__version__,
        description="Query and export the hit log, manage seized domains and tokens, read the audit log. "
                    "Every /api/ request needs `Authorization: Bearer <token>` and is written to the audit log.",
    )
    app.state.store = store
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.languages = load_languages()
    app.state.limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_s)
    for module in (health, hits, evidence, subjects, domains, tokens, audit):
        app.include_router(module.router)
    app.add_middleware(audit.AuditMiddleware, store=store)
    return app
