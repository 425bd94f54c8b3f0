"""The management API (FastAPI) on its own listener: investigators, administrators, auditors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .. import __version__, dashboard, metrics
from . import audit, domains, evidence, health, hits, resolvers, subjects, tokens
from .docs import serve_docs
from ..evidence import trusted_keys
from ..notice.texts import load_languages
from .auth import FailureLimiter

log = logging.getLogger("seized.api")


def create_management_app(*, store, pipeline, settings) -> FastAPI:
    app = FastAPI(
        title="seized management API",
        version=__version__,
        description="Query and export the hit log, manage seized domains and tokens, read the audit log. "
                    "Every /api/ request needs `Authorization: Bearer <token>` and is written to the audit log.",
        docs_url=None, redoc_url=None,  # /docs is served from the packaged Swagger UI (serve_docs), not a CDN
        generate_unique_id_function=lambda route: route.name,  # a route without an operation_id: its function's name
    )
    app.state.store = store
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.languages = load_languages()
    app.state.limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_s)
    app.state.trusted_keys = trusted_keys(settings)  # read once: a bad key fails the start, not a request
    app.state.tsa_certificate = settings.tsa_certificate.read_bytes() if settings.tsa_certificate else None
    app.state.metrics = metrics.ManagementMetrics(pipeline, app.state.limiter)
    for module in (health, metrics, hits, evidence, subjects, resolvers, domains, tokens, audit):  # resolvers first: /domains/export is no domain name
        app.include_router(module.router)
    serve_docs(app, settings.static_dir / "docs")
    dashboard.install(app, settings)  # /dashboard: the investigators' pages, audited like the API
    app.add_middleware(audit.AuditMiddleware, store=store)
    app.add_middleware(metrics.RequestMetrics, metrics=app.state.metrics)  # added last: outermost, times it all

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("%s %s: the database is unavailable: %s", request.method, request.url.path, error)
        return JSONResponse({"detail": "the database is unavailable; try again shortly"}, status_code=503,
                            headers={"Retry-After": "5"})
    for error in store.unavailable:
        app.add_exception_handler(error, database_unavailable)
    return app
