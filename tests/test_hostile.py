"""Hostile input: shown escaped or not at all, always logged, never a 500."""

import json
from urllib.parse import unquote

import pytest

from helpers import headers_of, raw_request

SCRIPT = "<script>alert(1)</script>"
JUNK = bytes(range(0x21, 0x7f)) * 90  # ~8.5 KB of printable junk, quotes and angle brackets included


def send(server, data: bytes):
    response = raw_request(server.public_port, data)
    assert response.status not in (0, 500), response
    return response, server.row_for_port(response.local_port, by="peer_port")


def assert_no_raw_markup(page: str, sent: bytes):
    """What was sent is absent from the page or escaped: no run of it that holds a markup character
    appears as sent (nor percent-decoded)."""
    assert "<script" not in page.lower()
    for text in {sent.decode("latin-1"), unquote(sent.decode("latin-1"))}:
        width = min(8, len(text))
        runs = {text[i:i + width] for i in range(len(text) - width + 1)}
        reflected = sorted(run for run in runs if set(run) & set("<>\"'") and run in page)
        assert not reflected, f"reflected unescaped: {reflected[:5]}"


@pytest.mark.parametrize("host", [SCRIPT.encode(), b'evil.example"><img src=x onerror=alert(1)>', b"a'b\"c<d>e", JUNK])
def test_hostile_host_is_escaped_or_absent_and_logged(server, host):
    response, row = send(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert response.status == 451
    assert_no_raw_markup(response.text, host)
    assert row["host"] == host.decode()
    assert row["domain"] is None


@pytest.mark.parametrize("target", [
    b"/%3Cscript%3Ealert(1)%3C/script%3E", b'/"><script>alert(1)</script>', b"/" + JUNK.replace(b"?", b"").replace(b"#", b""),
    b"/search?q=%0d%0aSet-Cookie:%20x=1", b"/%ff%fe%00", b"/?q=" + b"%00" * 100,
])
def test_hostile_path_is_not_reflected_and_logged(server, target):
    response, row = send(server, b"GET " + target + b" HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n")
    assert response.status == 451
    assert_no_raw_markup(response.text, target)
    assert "set-cookie" not in [k.lower() for k, _ in response.headers]
    path, _, query = target.partition(b"?")
    assert row["path"] == path.decode()
    assert row["query"] == query.decode()


def test_raw_invalid_utf8_in_the_request_line_is_logged_escaped(server):
    response, row = send(server, b"GET /\xff\xfe/caff\xc3\xa8?u=\xc0 HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n")
    assert response.status == 451  # the strict parser refused it; the lenient reading still serves the notice
    assert "seized-iptv.example" in response.text
    assert row["path"] == "/\\xff\\xfe/caffè"
    assert row["query"] == "u=\\xc0"
    assert row["error"].startswith("strict HTTP parser")
    assert row["client_port"] == response.local_port


def test_invalid_utf8_nul_and_bare_cr_in_headers(server):
    response, row = send(server, b"GET /h HTTP/1.1\r\nHost: seized-iptv.example\r\nUser-Agent: \xff\xfebot\r\n"
                                 b"X-Nul: a\x00b\r\nX-Cr: c\rd\r\nConnection: close\r\n\r\n")
    assert response.status == 451
    headers = headers_of(row)
    assert ["user-agent", "\\xff\\xfebot"] in headers
    assert ["x-nul", "a\\x00b"] in headers
    assert "\x00" not in json.dumps(row)


def test_crlf_cannot_inject_response_headers(server):
    response, row = send(server, b"GET /a%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: seized-iptv.example\r\n"
                                 b"Accept-Language: it%0d%0aX-Injected: 2\r\nConnection: close\r\n\r\n")
    assert response.header("x-injected") is None
    assert row["path"] == "/a%0d%0aX-Injected:%201"


def test_many_headers_within_the_head_limit_are_all_kept(server):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    response, row = send(server, b"GET /many HTTP/1.1\r\nHost: seized-iptv.example\r\n" + many + b"Connection: close\r\n\r\n")
    assert response.status == 451
    assert len(headers_of(row)) == 502


def test_a_head_over_64_kib_gets_431_and_is_logged(server):
    big = b"X-Big: " + b"B" * 100_000 + b"\r\n"
    response, row = send(server, b"GET /big HTTP/1.1\r\nHost: seized-iptv.example\r\n" + big + b"Connection: close\r\n\r\n")
    assert response.status == 431
    assert "65536 bytes (max_header_bytes)" in response.text
    assert (row["status"], row["path"], row["host"]) == (431, "/big", "seized-iptv.example")
    assert "65536 bytes (max_header_bytes)" in row["error"]
    assert len(dict(headers_of(row))["x-big"]) < 65_536  # truncated to the limit


@pytest.mark.parametrize("data", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03tls-client-hello\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"HELLO\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost seized-iptv.example\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: -5\r\nHost: seized-iptv.example\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\nHost: seized-iptv.example\r\n\r\nhello!",
])
def test_malformed_requests_get_a_clear_answer_and_are_logged(server, data):
    response, row = send(server, data)
    assert response.status in (400, 451)
    assert row["error"] is not None
    assert row["status"] == response.status


@pytest.mark.parametrize("method", [b"BREW", b"M-SEARCH", b"X_CUSTOM"])
def test_methods_the_parser_does_not_know_still_get_the_notice(server, method):
    response, row = send(server, method + b" /m HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n")
    assert response.status == 451
    assert "seized-iptv.example" in response.text
    assert (row["method"], row["path"], row["status"]) == (method.decode(), "/m", 451)
