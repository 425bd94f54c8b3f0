"""The public notice: content, status, headers, languages, methods, hosts."""

import re
from datetime import datetime, timezone

import pytest

from helpers import request

NOTICE_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def test_notice_names_domain_visitor_time_and_authority(server):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    response = server.request(target="/index.php?username=a&password=b")
    assert response.status == 451
    page = response.text
    assert "This domain has been seized" in page
    assert "seized-iptv.example" in page
    assert '<dd class="ip" id="visitor-ip">127.0.0.1</dd>' in page
    assert f'<dd class="port" id="visitor-port">{response.local_port}</dd>' in page
    shown = re.search(r'id="visit-time">(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{3} UTC<', page).group(1)
    shown_at = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert before <= shown_at <= datetime.now(timezone.utc)
    for text in ("Test Police Cyber Unit", "CASE-42", "Order 7/2026 of the Test Court", "has been recorded"):
        assert text in page


def test_notice_headers(server):
    response = server.request()
    for name, value in NOTICE_HEADERS.items():
        assert response.header(name) == value
    assert response.header("link") == '<https://police.test/seized>; rel="blocked-by"'
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert int(response.header("content-length")) == len(response.body)
    assert response.header("server") is None


def test_status_is_configurable_per_domain(server):
    assert server.request(host="plain200.example").status == 200
    assert server.request(host="seized-iptv.example").status == 451


@pytest.mark.parametrize("accept, language, marker", [
    ("it-IT,it;q=0.9,en;q=0.8", "it", "Questo dominio è stato sequestrato"),
    ("fr-FR, it;q=0.5, en;q=0.4", "it", "Questo dominio è stato sequestrato"),
    ("en;q=0.2, it;q=0.9", "it", "Questo dominio è stato sequestrato"),
    ("de, en-GB;q=0.7", "en", "This domain has been seized"),
    ("", "en", "This domain has been seized"),
    ("garbage;;q=x,,", "en", "This domain has been seized"),
])
def test_language_follows_accept_language(server, accept, language, marker):
    response = server.request(headers=[("Accept-Language", accept)] if accept else [])
    assert response.header("content-language") == language
    assert f'<html lang="{language}">' in response.text
    assert marker in response.text


def test_domain_default_language_applies_without_a_match(server):
    response = server.request(host="iptv-pirata.example", headers=[("Accept-Language", "de-DE")])
    assert response.header("content-language") == "it"
    assert "Il tuo indirizzo IP" in response.text
    assert "Guardia di Test" in response.text
    english = server.request(host="iptv-pirata.example", headers=[("Accept-Language", "en")])
    assert "Your IP address" in english.text


def test_head_gets_headers_only(server):
    get = server.request("GET")
    head = server.request("HEAD")
    assert head.status == 451
    assert head.body == b""
    assert head.header("content-length") == get.header("content-length")
    assert head.header("link") == get.header("link")
    assert server.row_for_port(head.local_port)["method"] == "HEAD"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "BREW"])
def test_every_method_gets_the_notice_and_is_logged(server, method):
    response = server.request(method, "/some/path", body=b"x=1" if method in ("POST", "PUT", "PATCH") else b"")
    assert response.status == 451
    assert "seized-iptv.example" in response.text
    row = server.row_for_port(response.local_port)
    assert (row["method"], row["path"], row["status"]) == (method, "/some/path", 451)


@pytest.mark.parametrize("host, domain", [
    ("seized-iptv.example", "seized-iptv.example"),
    ("www.seized-iptv.example", "seized-iptv.example"),
    ("line.seized-iptv.example:8080", "seized-iptv.example"),
    ("A.B.SEIZED-IPTV.EXAMPLE.", "seized-iptv.example"),
    ("iptv-pirata.example:80", "iptv-pirata.example"),
    ("notseized-iptv.example", None),
    ("seized-iptv.example.evil", None),
    ("example", None),
    ("127.0.0.1:8080", None),
    ("[::1]:8080", None),
    ("", None),
])
def test_host_matching(server, host, domain):
    response = server.request(host=host)
    assert response.status == 451
    row = server.row_for_port(response.local_port)
    assert row["domain"] == domain
    assert row["host"] == host
    if domain is None:
        assert "This service has been seized" in response.text
        assert "Test Police" in response.text  # the [notice] defaults
        assert "127.0.0.1" in response.text
    else:
        assert f'<strong class="domain">{domain}</strong>' in response.text


def test_request_without_host_header(server):
    from helpers import raw_request
    response = raw_request(server.public_port, b"GET /old HTTP/1.0\r\n\r\n")
    assert response.status == 451
    row = server.row_for_port(response.local_port)
    assert (row["host"], row["domain"], row["http_version"]) == ("", None, "1.0")


def test_static_assets_are_served_and_logged(server):
    css = server.request(target="/_seized/notice.css")
    assert css.status == 200
    assert css.header("content-type") == "text/css; charset=utf-8"
    assert b".notice" in css.body
    svg = server.request(target="/_seized/seal.svg")
    assert svg.status == 200 and svg.header("content-type") == "image/svg+xml; charset=utf-8"
    assert server.row_for_port(css.local_port)["path"] == "/_seized/notice.css"
    assert server.row_for_port(svg.local_port)["status"] == 200
    missing = server.request(target="/_seized/../../etc/passwd")
    assert missing.status == 451 and "seized-iptv.example" in missing.text


@pytest.mark.parametrize("path", ["/api/v1/hits", "/docs", "/openapi.json", "/metrics", "/healthz"])
def test_management_paths_are_not_on_the_public_listener(server, path):
    response = server.request(target=path)
    assert response.status == 451
    assert "seized-iptv.example" in response.text
    assert server.row_for_port(response.local_port)["path"] == path


def test_request_helper_sanity(server):
    # The helper reports the client's real source port; the server's record must agree with it.
    response = request(server.public_port, target="/sanity")
    assert server.row_for_port(response.local_port)["path"] == "/sanity"


# Issue 12: an admin-set NUL (or other control character) in a notice field spliced the visitor's
# IP into the page, the page being precomputed and split around NUL-delimited slot markers.
HOSTILE_AGENCIES = ["A\x00ip\x00B", "\x00ip\x00", "A\x00port\x00\x00time\x00B", "<\x00seized-slot:ip\x00>", "A\x1b[31mB\x7f\x85C"]


@pytest.mark.parametrize("agency", HOSTILE_AGENCIES)
def test_no_admin_text_can_be_taken_for_a_slot(agency):
    """The renderer itself, given a notice that no cleaning touched."""
    from app.config import PROJECT_DIR
    from app.domains import Notice
    from app.notice.html import HtmlNotice
    from app.notice.texts import load_languages

    html = HtmlNotice(PROJECT_DIR / "templates", load_languages())
    notice = Notice(domain="a.example", agency=agency, case_ref=agency, legal_basis=agency, language="en", status=451, blocked_by="")
    for page in (html.render_fast(notice, "en", "198.51.100.77", "4711", "T-I-M-E"),
                 html.render(notice, "en", {"ip": "198.51.100.77", "port": "4711", "time": "T-I-M-E"})):
        text = page.decode()
        assert text.count("198.51.100.77") == 1 and text.count("4711") == 1 and text.count("T-I-M-E") == 1
        assert 'id="visitor-ip">198.51.100.77</dd>' in text


@pytest.mark.parametrize("nul", ["\x00", "\x01"], ids=["nul", "soh"])
def test_control_characters_in_notice_text_are_refused_by_the_api(api_server, nul):
    """NUL, SOH, ESC, DEL: a clear 422 on every store (PostgreSQL's text cannot hold NUL at all);
    a line break is text and is shown as a space (what the page does with any text set otherwise:
    test_no_admin_text_can_be_taken_for_a_slot)."""
    import time

    admin = api_server.tokens["admin"]
    name = f"control-chars-{ord(nul)}.example"
    for field, value in (("agency", f"Agency{nul}ip{nul}Name"), ("case_ref", "CASE-9\x7f"), ("notes", f"a{nul}b"),
                         ("blocked_by", "https://x.example/\x1b")):
        refused = api_server.api("POST", "/api/v1/domains", admin, json={"name": name, field: value})
        assert refused.status_code == 422 and "control character" in refused.text, (field, refused.text)
    created = api_server.api("POST", "/api/v1/domains", admin, json={
        "name": name, "agency": "Agency Name", "legal_basis": "Line one\nline two"})
    assert created.status_code == 201
    deadline = time.monotonic() + 15
    while True:
        response = api_server.request(host=name, headers=[("X-Forwarded-For", "198.51.100.78")])
        if "Agency Name" in response.text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    page = response.text
    assert "Agency Name" in page and "Line one line two" in page
    assert page.count("198.51.100.78") == 1 and 'id="visitor-ip">198.51.100.78</dd>' in page


@pytest.mark.parametrize("field", ["agency", "case_ref", "legal_basis", "blocked_by"])
def test_the_config_file_refuses_control_characters_in_notice_text(field):
    from pydantic import ValidationError

    from app.config import DomainSeed, NoticeSettings
    with pytest.raises(ValidationError):
        NoticeSettings(**{field: "a\x00b"})
    with pytest.raises(ValidationError):
        DomainSeed(name="a.example", **{field: "a\x1bb"})
    assert NoticeSettings(**{field: "line\none\ttab"})  # whitespace is text
