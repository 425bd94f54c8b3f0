"""/docs on a management network without the internet: Swagger UI from the packaged copy, rendered
in Debian's headless Chromium, with every request it makes going to the management listener."""

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from helpers import PROJECT
from browser import headless_chromium

pytestmark = pytest.mark.backends("sqlite")  # the page and its files do not depend on the store: once is enough
ASSETS = {  # packaged file -> the content type it must be served with
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@pytest.fixture(scope="module")
def chromium():
    # Every name but the listener's own address resolves to nothing, as on an offline network:
    # a request for a CDN would fail here, and is recorded either way.
    with headless_chromium("MAP * ~NOTFOUND, EXCLUDE 127.0.0.1") as browser:
        yield browser


def test_docs_render_from_the_host_alone(server, chromium, tmp_path):
    origin = f"http://127.0.0.1:{server.admin_port}"
    page = chromium.new_page()
    requested, problems = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    response = page.goto(f"{origin}/docs")
    assert response.status == 200

    # The operations rendered, one block per operation of the document, list_hits among them.
    page.wait_for_selector("#operations-hits-list_hits", timeout=60_000)
    schema = httpx.get(f"{origin}/openapi.json", timeout=10).json()
    operations = [op for item in schema["paths"].values() for op in item.values() if "operationId" in op]
    page.wait_for_function(f"document.querySelectorAll('.opblock').length === {len(operations)}", timeout=60_000)
    assert "seized management API" in page.inner_text(".info .title")
    # Authorize with a token, open an operation and run it from the page: the call goes to the
    # management listener and its answer is shown.
    page.click("button.authorize")
    page.fill("input[aria-label='auth-bearer-value']", server.new_token("investigator"))
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    operation = "#operations-hits-list_hits"
    page.click(f"{operation} .opblock-summary-control")
    page.click(f"{operation} .try-out__btn")
    page.fill(f"{operation} tr[data-param-name='path_prefix'] input", "/docs-offline-test")
    page.click(f"{operation} .execute")
    status = page.wait_for_selector(f"{operation} .live-responses-table tbody .response-col_status", timeout=60_000)
    assert status.inner_text().strip() == "200"
    assert '"items": []' in page.inner_text(f"{operation} .live-responses-table tbody .response-col_description")
    page.screenshot(path=tmp_path / "docs.png", full_page=True)

    outside = [url for url in requested if urlsplit(url).scheme != "data" and urlsplit(url).netloc != f"127.0.0.1:{server.admin_port}"]
    assert outside == [], f"requests left the host: {outside}"
    assert problems == []
    paths = {urlsplit(url).path for url in requested}
    assert {"/docs", "/openapi.json", "/api/v1/hits", *(f"/docs/assets/{name}" for name in ASSETS)} <= paths, paths
    # The packaged stylesheet applied: Swagger UI's blue for GET operations.
    assert page.eval_on_selector("#operations-hits-list_hits", "e => getComputedStyle(e).borderColor") == "rgb(97, 175, 254)"
    page.close()


def test_docs_page_and_assets_are_served_locally_with_their_types(server):
    packaged = Path(server.api("GET", "/api/v1/settings", server.admin_token).json()["static_dir"]) / "docs"
    page = httpx.get(server.admin_url("/docs"), timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+", page.text), "the page names another host"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name, content_type in ASSETS.items():
        url = re.search(rf'"(/docs/assets/{re.escape(name)}\?v=[0-9a-f]+)"', page.text)
        assert url, f"/docs does not load {name}"
        asset = httpx.get(server.admin_url(url.group(1)), timeout=10)
        assert asset.status_code == 200
        assert asset.headers["content-type"].split(";")[0] == content_type
        assert "max-age=" in asset.headers["cache-control"]
        assert asset.content == (packaged / name).read_bytes()
        again = httpx.get(server.admin_url(url.group(1)), headers={"If-None-Match": asset.headers["etag"]}, timeout=10)
        assert again.status_code == 304
    # FastAPI's own pages are off (ReDoc would load from a CDN); nothing escapes the assets folder.
    assert httpx.get(server.admin_url("/redoc"), timeout=10).status_code == 404
    assert httpx.get(server.admin_url("/docs/assets/..%2f..%2fpyproject.toml"), timeout=10).status_code == 404
    assert not any(path.startswith("/docs") for path in httpx.get(server.admin_url("/openapi.json"), timeout=10).json()["paths"])


def test_a_static_dir_without_swagger_ui_leaves_docs_out(fresh_server, tmp_path):
    """An operator's own static_dir (for the notice's look) without docs/: the server starts, says
    why /docs is missing, and still serves the schema."""
    static = tmp_path / "own-static"
    static.mkdir()
    for name in ("notice.css", "seal.svg", "seal.png"):
        shutil.copy(PROJECT / "static" / name, static / name)
    srv = fresh_server(static_dir=str(static)).start()
    assert httpx.get(srv.admin_url("/docs"), timeout=10).status_code == 404
    assert httpx.get(srv.admin_url("/openapi.json"), timeout=10).json()["info"]["title"] == "seized management API"
    assert "/docs is not served" in srv.log_path.read_text()
