"""The investigator dashboard on the management listener, under /dashboard: server-rendered pages
(Jinja2) over the API's own handlers and store queries, signed in with an API token (session.py),
audited like the API (api/audit.py covers /dashboard)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .routes import SignInNeeded, Dashboard, error_page, router, sign_in_redirect


def install(app: FastAPI, settings) -> None:
    """Serve the dashboard from `app`: its routes, its state, and HTML error pages for its paths."""
    app.state.dashboard = Dashboard(settings)
    app.include_router(router)

    async def http_error(request, error):
        if request.url.path.startswith("/dashboard"):
            return error_page(request, error.status_code, str(error.detail), getattr(error, "headers", None))
        return await http_exception_handler(request, error)

    async def invalid_request(request, error):
        if request.url.path.startswith("/dashboard"):
            return error_page(request, 422, "; ".join(str(e.get("msg")) for e in error.errors()))
        return await request_validation_exception_handler(request, error)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(SignInNeeded, sign_in_redirect)
