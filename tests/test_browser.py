"""The notice as a visitor sees it, in a real headless Chromium (Debian's, driven by Playwright)."""

from urllib.parse import urlsplit

import pytest

from browser import headless_chromium


@pytest.fixture(scope="module")
def browser(server):
    # The seized domain resolves to our test server, as DNS does after a seizure.
    with headless_chromium("MAP seized-iptv.example 127.0.0.1, MAP *.seized-iptv.example 127.0.0.1") as chromium:
        yield chromium


def test_visible_notice_in_chromium(server, browser):
    page = browser.new_page(locale="en-US")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    origin = f"http://www.seized-iptv.example:{server.public_port}"
    response = page.goto(f"{origin}/index.php?page=1")
    assert response.status == 451

    text = page.inner_text("body")
    assert "this domain has been seized" in text.lower()
    assert "seized-iptv.example" in text
    assert "127.0.0.1" in text
    port = page.inner_text("#visitor-port")
    assert port.isdigit()
    assert "UTC" in page.inner_text("#visit-time")
    assert "has been recorded" in text

    # The stylesheet and the seal loaded under the strict CSP: nothing came from anywhere else.
    assert page.eval_on_selector("h1", "e => getComputedStyle(e).color") == "rgb(139, 0, 0)"
    assert page.eval_on_selector("img.seal", "e => e.naturalWidth") > 0
    hosts = {urlsplit(url).netloc for url in requested}
    assert hosts == {f"www.seized-iptv.example:{server.public_port}"}
    assert {urlsplit(url).path for url in requested} >= {"/_seized/notice.css", "/_seized/seal.svg"}

    # The port shown is the browser's real source port, as logged.
    rows = server.wait_rows("client_port = ? AND path = '/index.php'", (int(port),))
    assert len(rows) == 1 and rows[0]["domain"] == "seized-iptv.example"
    page.close()


def test_italian_browser_gets_italian_notice(server, browser):
    page = browser.new_page(locale="it-IT")
    page.goto(f"http://seized-iptv.example:{server.public_port}/")
    assert page.inner_text("h1").lower() == "questo dominio è stato sequestrato"
    assert page.get_attribute("html", "lang") == "it"
    page.close()
