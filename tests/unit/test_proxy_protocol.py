"""app/proxy_protocol.py: PROXY protocol v1 and v2 headers, whole, partial, malformed and hostile."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from app.proxy_protocol import NEED_MORE, V2_SIGNATURE, Addresses, Header, Invalid, parse


def v2(command=1, family=0x11, body=b"", version=2) -> bytes:
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", len(body)) + body


IPV4 = bytes([203, 0, 113, 7]) + bytes([198, 51, 100, 1]) + struct.pack("!HH", 51234, 443)
IPV6 = bytes.fromhex("20010db8" + "0" * 23 + "1") + bytes.fromhex("20010db8" + "0" * 23 + "2") + struct.pack("!HH", 40000, 8080)


@pytest.mark.parametrize("data, expected", [
    (b"PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n",
     Header(47, Addresses("203.0.113.7", 51234, "198.51.100.1", 443), 1)),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 8080\r\n", Header(47, Addresses("2001:db8::1", 40000, "2001:db8::2", 8080), 1)),
    (b"PROXY UNKNOWN\r\n", Header(15, None, 1)),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest", Header(35, None, 1)),
    (v2(body=IPV4) + b"GET", Header(28, Addresses("203.0.113.7", 51234, "198.51.100.1", 443), 2)),
    (v2(family=0x21, body=IPV6 + b"\x03\x00\x04abcd"), Header(16 + 36 + 7, Addresses("2001:db8::1", 40000, "2001:db8::2", 8080), 2)),
    (v2(command=0, family=0x00), Header(16, None, 2)),  # LOCAL: a health check of the proxy's own
    (v2(family=0x00), Header(16, None, 2)),  # UNSPEC
    (b"GET / HTTP/1.1\r\n", None), (b"\x16\x03\x01", None), (b"", None),
    (b"PRO", NEED_MORE), (b"PROXY TCP4 203.0.113.7", NEED_MORE), (V2_SIGNATURE[:5], NEED_MORE), (v2(body=IPV4)[:20], NEED_MORE),
])
def test_headers(data, expected):
    assert parse(data) == expected


@pytest.mark.parametrize("data, said", [
    (b"PROXY TCP4 203.0.113.7 198.51.100.1 5123\xc2\xb2 443\r\n", "no port"),  # "²".isdigit() is true
    (b"PROXY TCP4 203.0.113.7 198.51.100.1 051234 443\r\n", "no port"),
    (b"PROXY TCP4 203.0.113.7 198.51.100.1 65536 443\r\n", "out of range"),
    (b"PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n", "is not IPv4"),
    (b"PROXY TCP4 example.com 198.51.100.1 1 443\r\n", "no IP address"),
    (b"PROXY UDP4 203.0.113.7 198.51.100.1 1 2\r\n", "expected PROXY"),
    (b"PROXY TCP4 203.0.113.7 198.51.100.1 1 2 3\r\n", "expected PROXY"),
    (b"PROXY " + b"A" * 120, "no CRLF"),
    (v2(version=1, body=IPV4), "version 1"), (v2(command=5, body=IPV4), "command 5"),
    (v2(family=0x12, body=IPV4), "only TCP"), (v2(body=IPV4[:8]), "short IPv4"), (v2(family=0x21, body=IPV4), "short IPv6"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "bytes of addresses"),
])
def test_malformed_headers_are_refused(data, said):
    with pytest.raises(Invalid, match=said):
        parse(data)


@settings(deadline=None, database=None, max_examples=500)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=120).map(lambda b: b"PROXY " + b),
                 st.binary(max_size=80).map(lambda b: V2_SIGNATURE + b)))
def test_any_bytes_give_an_answer_or_invalid(data):
    try:
        result = parse(data)
    except Invalid:
        return
    assert result is None or result == NEED_MORE or (isinstance(result, Header) and 0 < result.length <= len(data))
