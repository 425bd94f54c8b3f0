"""Behind a trusted proxy, exactly one forwarding header is believed: the one `forwarded_header`
names (issue 12). The others are stored with the hit as headers, never believed."""

import pytest

from conftest import DOMAINS, started
from helpers import headers_of, raw_request


def _server(tmp_path_factory, databases, name, forwarded_header):
    return started(tmp_path_factory.mktemp(name), databases, domains=DOMAINS,
                   settings={"trusted_proxies": ["127.0.0.0/8"], "client_port_header": "X-Real-Port",
                             "forwarded_header": forwarded_header})


@pytest.fixture(scope="module")
def forwarded_server(tmp_path_factory, databases):
    srv = _server(tmp_path_factory, databases, "forwarded", "Forwarded")  # any case
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def real_ip_server(tmp_path_factory, databases):
    srv = _server(tmp_path_factory, databases, "real-ip", "x-real-ip")
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("headers, client_ip, client_port, scheme", [
    ([("Forwarded", 'for="203.0.113.60:47011";proto=https')], "203.0.113.60", 47011, "https"),
    ([("Forwarded", 'for="[2001:db8:cafe::17]:4711"')], "2001:db8:cafe::17", 4711, "http"),
    ([("Forwarded", "for=192.0.2.43, for=198.51.100.17;by=127.0.0.1")], "198.51.100.17", None, "http"),
    ([("Forwarded", "for=192.0.2.45"), ("X-Real-Port", "5151")], "192.0.2.45", 5151, "http"),
    # only the nearest proxy's element sets the scheme: the client's own element is not believed
    ([("Forwarded", "for=6.6.6.6;proto=https, for=192.0.2.46")], "192.0.2.46", None, "http"),
    # X-Forwarded-For and X-Forwarded-Proto are not the mechanism chosen
    ([("Forwarded", "for=192.0.2.44"), ("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-Proto", "https")], "192.0.2.44", None, "http"),
    ([("X-Forwarded-For", "192.0.2.99")], "127.0.0.1", "peer", "http"),
    ([("Forwarded", "for=unknown")], "127.0.0.1", "peer", "http"),
])
def test_forwarded_chosen(forwarded_server, headers, client_ip, client_port, scheme):
    response = forwarded_server.request(headers=headers)
    row = forwarded_server.row_for_port(response.local_port, by="peer_port")
    expected_port = response.local_port if client_port == "peer" else client_port
    assert (row["client_ip"], row["client_port"], row["scheme"]) == (client_ip, expected_port, scheme)
    assert f'id="visitor-ip">{client_ip}<' in response.text
    for name, value in headers:
        assert [name.lower(), value] in headers_of(row)  # every one stored as sent


@pytest.mark.parametrize("headers, client_ip, client_port", [
    ([("X-Real-IP", "203.0.113.70"), ("X-Real-Port", "40001")], "203.0.113.70", 40001),
    ([("X-Real-IP", "2001:db8::70")], "2001:db8::70", None),
    ([("X-Real-IP", "203.0.113.71"), ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", 'for="6.6.6.6:1";proto=https'),
      ("X-Forwarded-Proto", "https")], "203.0.113.71", None),
    ([("X-Forwarded-For", "6.6.6.6")], "127.0.0.1", "peer"),
    ([("X-Real-IP", "junk")], "127.0.0.1", "peer"),
])
def test_x_real_ip_chosen(real_ip_server, headers, client_ip, client_port):
    response = real_ip_server.request(headers=headers)
    row = real_ip_server.row_for_port(response.local_port, by="peer_port")
    expected_port = response.local_port if client_port == "peer" else client_port
    assert (row["client_ip"], row["client_port"], row["scheme"]) == (client_ip, expected_port, "http")


@pytest.mark.parametrize("value", [b'for="1.2.3.4:\xb2"', b'for="1.2.3.4:\xc2\xb2"', b'for="[2001:db8::1]:\xd9\xa3"',
                                   b"for=1.2.3.4:" + b"9" * 5000])
def test_a_port_of_non_ascii_digits_is_no_port_and_no_500(forwarded_server, value):
    """"²".isdigit() is true and int("²") raises: a public 500 before issue 12."""
    port = forwarded_server.public_port
    response = raw_request(port, b"GET / HTTP/1.1\r\nHost: seized-iptv.example\r\nForwarded: " + value
                           + b"\r\nX-Real-Port: \xb2\r\nConnection: close\r\n\r\n")
    assert response.status == 451
    row = forwarded_server.row_for_port(response.local_port, by="peer_port")
    assert row["client_port"] is None and row["client_ip"] in ("1.2.3.4", "2001:db8::1")


def test_forwarded_header_setting():
    from pydantic import ValidationError

    from app.config import Settings
    assert Settings().forwarded_header == "x-forwarded-for"
    assert Settings(forwarded_header=" X-Real-IP ").forwarded_header == "x-real-ip"
    with pytest.raises(ValidationError):
        Settings(forwarded_header="x-client-ip")
