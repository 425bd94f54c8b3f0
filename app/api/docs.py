"""Interactive API documentation at /docs that works without the internet: Swagger UI's files are
served from the packaged copy in `<static_dir>/docs/` (see its README.md), never from a CDN."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger("seized.api")

ASSETS = "/docs/assets"
FILES = {"js": "swagger-ui-bundle.js", "css": "swagger-ui.css", "favicon": "favicon-32x32.png"}
# The URLs carry a digest of the file they name, so a browser may keep each for a day and still
# fetches the new one at once after an upgrade of the packaged copy.
CACHE_CONTROL = "public, max-age=86400"
# The browser itself refuses anything from elsewhere. FastAPI's page starts Swagger UI with an
# inline script, and Swagger UI sets inline styles and draws its icons from data: URIs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class CachedStaticFiles(StaticFiles):
    """Starlette's static files (content types, ETag, 304s, no path escapes), with Cache-Control."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def serve_docs(app: FastAPI, directory: Path) -> None:
    """Add /docs and its assets under /docs/assets/ (left out of the OpenAPI document). Without
    the files (a `static_dir` of one's own that lacks docs/), /docs is left out, and said so."""
    missing = [name for name in FILES.values() if not (directory / name).is_file()]
    if missing:
        log.warning("no Swagger UI files (%s) in %s: /docs is not served; /openapi.json is", ", ".join(missing), directory)
        return
    urls = {role: f"{ASSETS}/{name}?v={hashlib.sha256((directory / name).read_bytes()).hexdigest()[:12]}"
            for role, name in FILES.items()}
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} {app.version}", swagger_js_url=urls["js"],
        swagger_css_url=urls["css"], swagger_favicon_url=urls["favicon"],
        # No validator badge: it would send the document to an online validator.
        swagger_ui_parameters={"validatorUrl": None},
    ).body

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    app.mount(ASSETS, CachedStaticFiles(directory=directory), name="docs-assets")
