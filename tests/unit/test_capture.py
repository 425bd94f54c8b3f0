"""app/capture.py: the client's address, from the TCP peer or from a trusted proxy's headers."""

import ipaddress

import pytest
from hypothesis import assume, given, settings, strategies as st

from app.capture import ClientResolver, forwarded_chain, make_uid, parse_ip, parse_node, parse_port, unmapped

PROPERTY = settings(deadline=None, database=None)
TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


@pytest.mark.parametrize("text, expected", [
    ("203.0.113.5", "203.0.113.5"), ("2001:db8::1", "2001:db8::1"), ("2001:DB8:0::1", "2001:db8::1"),
    ("::ffff:203.0.113.5", "203.0.113.5"), ("::FFFF:cb00:7105", "203.0.113.5"), ("::1", "::1"), ("::", "::"),
    ("::203.0.113.5", "::cb00:7105"),  # IPv4-compatible (deprecated) is not IPv4-mapped
    ("", None), ("unknown", None), ("_hidden", None), ("1.2.3", None), ("256.1.1.1", None), ("01.2.3.4", None),
    ("[::1]", None), ("1.2.3.4:80", None), (" 1.2.3.4", None),
])
def test_parse_ip(text, expected):
    address = parse_ip(text)
    assert (None if address is None else str(address)) == expected


@PROPERTY
@given(st.ip_addresses(v=4))
def test_parse_ip_maps_every_ipv4_mapped_address_to_ipv4(v4):
    assert parse_ip(f"::ffff:{v4}") == v4 == parse_ip(str(v4))


@pytest.mark.parametrize("node, expected", [
    ("203.0.113.5", ("203.0.113.5", None)), ("203.0.113.5:4711", ("203.0.113.5", 4711)),
    (' "203.0.113.5:4711" ', ("203.0.113.5", 4711)), ('"[2001:db8::1]:4711"', ("2001:db8::1", 4711)),
    ("[2001:db8::1]", ("2001:db8::1", None)), ("2001:db8::1", ("2001:db8::1", None)), ("[::ffff:1.2.3.4]:80", ("1.2.3.4", 80)),
    ("203.0.113.5:_hidden", ("203.0.113.5", None)), ("203.0.113.5:0", ("203.0.113.5", None)),
    ("203.0.113.5:65535", ("203.0.113.5", 65535)), ("203.0.113.5:65536", ("203.0.113.5", None)),
    ("[2001:db8::1]:99999", ("2001:db8::1", None)), ("[2001:db8::1]junk", ("2001:db8::1", None)),
    ("unknown", (None, None)), ("_obfuscated", (None, None)), ("", (None, None)), ('""', (None, None)),
    ("garbage:80", (None, None)), ("[not-ip]:80", (None, None)), ("1.2.3.4:80:90", (None, None)),
])
def test_parse_node(node, expected):
    assert parse_node(node) == expected


@PROPERTY
@given(address=st.ip_addresses(), port=st.integers(1, 65535), quoted=st.booleans())
def test_parse_node_reads_what_a_proxy_writes(address, port, quoted):
    node = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    expected_ip = str(address.ipv4_mapped or address) if address.version == 6 else str(address)
    assert parse_node(f'"{node}"' if quoted else node) == (expected_ip, port)


def H(*pairs):
    return [(name.encode(), value.encode()) for name, value in pairs]


@pytest.mark.parametrize("header, headers, expected", [
    ("x-forwarded-for", H(), None), ("x-forwarded-for", H(("x-real-ip", "1.2.3.4")), None),
    ("x-forwarded-for", H(("x-forwarded-for", "1.2.3.4")), (["1.2.3.4"], None)),
    ("x-forwarded-for", H(("x-forwarded-for", "1.2.3.4, 10.0.0.2"), ("x-forwarded-proto", "HTTPS")), (["1.2.3.4", " 10.0.0.2"], "https")),
    ("x-forwarded-for", H(("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "10.0.0.2")), (["1.2.3.4", "10.0.0.2"], None)),
    ("x-forwarded-for", H(("x-forwarded-proto", "http"), ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")),
     (["1.2.3.4"], "https")),
    # only the header chosen is read: a Forwarded beside X-Forwarded-For is not believed, nor its proto
    ("x-forwarded-for", H(("forwarded", 'for="6.6.6.6:1234";proto=https'), ("x-forwarded-for", "9.9.9.9")), (["9.9.9.9"], None)),
    ("x-forwarded-for", H(("forwarded", "for=1.2.3.4")), None),
    ("forwarded", H(("forwarded", 'for=1.2.3.4;proto=https, for="[2001:db8::1]:4711";proto=http')),
     (["1.2.3.4", '"[2001:db8::1]:4711"'], "http")),
    ("forwarded", H(("forwarded", "For=1.2.3.4;By=10.0.0.1;Proto=HTTPS")), (["1.2.3.4"], "https")),
    ("forwarded", H(("forwarded", "for=1.2.3.4;proto=https"), ("forwarded", "for=5.6.7.8")), (["1.2.3.4", "5.6.7.8"], None)),
    ("forwarded", H(("forwarded", "for=1.2.3.4"), ("x-forwarded-for", "9.9.9.9"), ("x-forwarded-proto", "https")), (["1.2.3.4"], None)),
    ("forwarded", H(("x-forwarded-for", "9.9.9.9")), None),
    ("forwarded", H(("forwarded", "by=10.0.0.1")), ([], None)), ("forwarded", H(("forwarded", "")), ([], None)),
    ("x-real-ip", H(("x-real-ip", "1.2.3.4"), ("x-forwarded-for", "9.9.9.9"), ("x-forwarded-proto", "https")), (["1.2.3.4"], None)),
    ("x-real-ip", H(("x-real-ip", "6.6.6.6"), ("x-real-ip", "1.2.3.4")), (["1.2.3.4"], None)),
    ("x-real-ip", H(("forwarded", "for=1.2.3.4")), None),
])
def test_forwarded_chain(header, headers, expected):
    assert forwarded_chain(headers, header) == expected


RESOLVER = ClientResolver(TRUSTED, "x-real-port")  # forwarded_header x-forwarded-for, the default
FORWARDED = ClientResolver(TRUSTED, "x-real-port", "forwarded")
REAL_IP = ClientResolver(TRUSTED, "x-real-port", "x-real-ip")


@pytest.mark.parametrize("peer, headers, expected", [
    # an untrusted peer: its forwarding headers are stored but not believed
    (("203.0.113.9", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "4242")), ("203.0.113.9", 5555, "http")),
    (("203.0.113.9", 5555), H(("forwarded", "for=1.2.3.4:80;proto=https")), ("203.0.113.9", 5555, "http")),
    (("::ffff:203.0.113.9", 5555), H(("x-forwarded-for", "1.2.3.4")), ("203.0.113.9", 5555, "http")),
    (("11.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4")), ("11.0.0.1", 5555, "http")),
    # a trusted peer
    (("10.0.0.1", 5555), H(), ("10.0.0.1", 5555, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4")), ("1.2.3.4", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "4242")), ("1.2.3.4", 4242, "http")),
    (("::ffff:10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "4242")), ("1.2.3.4", 4242, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "::ffff:1.2.3.4"), ("x-real-port", "4242")), ("1.2.3.4", 4242, "http")),
    (("2001:db8:ffff::1", 5555), H(("x-forwarded-for", "2001:db8::7"), ("x-forwarded-proto", "https")), ("2001:db8::7", None, "https")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "0")), ("1.2.3.4", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "70000")), ("1.2.3.4", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "12a")), ("1.2.3.4", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-real-port", "1"), ("x-real-port", "2")), ("1.2.3.4", 2, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "gopher")), ("1.2.3.4", None, "http")),
    # the client is the rightmost hop that is not itself trusted: entries further left may be the client's own lies
    (("10.0.0.1", 5555), H(("x-forwarded-for", "6.6.6.6, 1.2.3.4")), ("1.2.3.4", None, "http")),
    # two trusted hops: the port header is what the nearest proxy saw, i.e. the second proxy's port, not the client's
    (("10.0.0.1", 5555), H(("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2"), ("x-real-port", "4242")), ("1.2.3.4", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "10.0.0.3, 10.0.0.2")), ("10.0.0.3", None, "http")),  # all trusted: the farthest
    # an unusable hop stops the walk where it is
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4, unknown")), ("10.0.0.1", 5555, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "1.2.3.4, garbage, 10.0.0.2")), ("10.0.0.2", None, "http")),
    (("10.0.0.1", 5555), H(("x-forwarded-for", "")), ("10.0.0.1", 5555, "http")),
    # no peer address at all (a UNIX socket)
    ((None, None), H(("x-forwarded-for", "1.2.3.4")), (None, None, "http")),
])
def test_resolve(peer, headers, expected):
    assert RESOLVER.resolve(*peer, headers, "http") == expected


def test_the_scheme_is_only_taken_from_the_nearest_proxy():
    headers = H(("forwarded", "for=1.2.3.4;proto=https, for=5.6.7.8"))  # the first element is the client's own
    assert FORWARDED.resolve("10.0.0.1", 5555, headers, "http") == ("5.6.7.8", None, "http")


@pytest.mark.parametrize("resolver, peer, headers, expected", [
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", "for=1.2.3.4:4711, for=10.0.0.2:3333"), ("x-real-port", "4242")),
     ("1.2.3.4", 4711, "http")),
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", 'for="1.2.3.4:4711";proto=https'), ("x-real-port", "4242")), ("1.2.3.4", 4711, "https")),
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", 'for="1.2.3.4"'), ("x-real-port", "4242")), ("1.2.3.4", 4242, "http")),
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", 'for="[2001:db8::5]:4711"')), ("2001:db8::5", 4711, "http")),
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", "for=unknown")), ("10.0.0.1", 5555, "http")),
    # Forwarded chosen: X-Forwarded-For and X-Forwarded-Proto are stored, not believed
    (FORWARDED, ("10.0.0.1", 5555), H(("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https")), ("10.0.0.1", 5555, "http")),
    (FORWARDED, ("10.0.0.1", 5555), H(("forwarded", "for=1.2.3.4"), ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https")),
     ("1.2.3.4", None, "http")),
    # the default (x-forwarded-for): a client's own Forwarded, passed through by nginx, changes nothing
    (RESOLVER, ("10.0.0.1", 5555), H(("forwarded", 'for="6.6.6.6:1234";proto=https'), ("x-forwarded-for", "1.2.3.4"),
                                     ("x-real-port", "4242")), ("1.2.3.4", 4242, "http")),
    (RESOLVER, ("10.0.0.1", 5555), H(("forwarded", 'for="6.6.6.6:1234";proto=https')), ("10.0.0.1", 5555, "http")),
    (RESOLVER, ("10.0.0.1", 5555), H(("x-real-ip", "6.6.6.6")), ("10.0.0.1", 5555, "http")),
    # x-real-ip: one address, the port from the port header, no scheme from any header
    (REAL_IP, ("10.0.0.1", 5555), H(("x-real-ip", "1.2.3.4"), ("x-real-port", "4242"), ("x-forwarded-proto", "https")),
     ("1.2.3.4", 4242, "http")),
    (REAL_IP, ("10.0.0.1", 5555), H(("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")), ("10.0.0.1", 5555, "http")),
    (REAL_IP, ("10.0.0.1", 5555), H(("x-real-ip", "junk")), ("10.0.0.1", 5555, "http")),
    (REAL_IP, ("203.0.113.9", 5555), H(("x-real-ip", "1.2.3.4")), ("203.0.113.9", 5555, "http")),
])
def test_only_the_chosen_header_is_believed(resolver, peer, headers, expected):
    assert resolver.resolve(*peer, headers, "http") == expected


@pytest.mark.parametrize("port", ["\xb2", "\u00b2", "\u0661", "\uff11", "+80", "-1", "8 0", "1" * 5000, "0" * 4400 + "80", "٣"])
def test_a_port_of_other_than_ascii_digits_is_no_port(port):
    """"²".isdigit() is true and int("²") raises: it was a 500 on the public listener (issue 12)."""
    for resolver, name in ((RESOLVER, "x-forwarded-for"), (FORWARDED, "forwarded"), (REAL_IP, "x-real-ip")):
        headers = [(name.encode(), f'for="1.2.3.4:{port}"'.encode("utf-8") if name == "forwarded" else f"1.2.3.4:{port}".encode("utf-8")),
                   (b"x-real-port", port.encode("utf-8"))]
        assert resolver.resolve("10.0.0.1", 5555, headers, "http") == ("1.2.3.4", None, "http")
    assert parse_node(f"1.2.3.4:{port}") == ("1.2.3.4", None)
    assert parse_node(f"[2001:db8::1]:{port}") == ("2001:db8::1", None)
    assert parse_port(port) is None


@PROPERTY
@given(port=st.text(max_size=8))
def test_parse_port_never_raises(port):
    result = parse_port(port)
    assert result is None or (port.isascii() and port.isdigit() and result == int(port) and 0 < result < 65536)


def test_an_unknown_forwarded_header_is_refused():
    with pytest.raises(ValueError):
        ClientResolver(TRUSTED, "x-real-port", "x-client-ip")


def test_nobody_trusted_means_the_peer_always():
    resolver = ClientResolver([], "x-real-port")
    assert resolver.resolve("10.0.0.1", 1, H(("x-forwarded-for", "1.2.3.4")), "http") == ("10.0.0.1", 1, "http")
    assert resolver.resolve("::ffff:10.0.0.1", 1, H(), "http") == ("10.0.0.1", 1, "http")


def test_is_trusted():
    assert RESOLVER.is_trusted("10.255.0.1") and RESOLVER.is_trusted("::ffff:10.0.0.1") and RESOLVER.is_trusted("2001:db8:ffff:1::1")
    assert not any(RESOLVER.is_trusted(ip) for ip in ("11.0.0.1", "2001:db8::1", "::a00:1", "", None, "junk"))


@PROPERTY
@given(peer=st.ip_addresses(), forged=st.lists(st.ip_addresses().map(str), max_size=4), port=st.integers(1, 65535))
def test_an_untrusted_peer_cannot_choose_its_client_ip(peer, forged, port):
    mapped = peer.ipv4_mapped if peer.version == 6 else None
    assume(not any((mapped or peer) in network for network in TRUSTED))
    headers = H(("x-forwarded-for", ", ".join(forged)), ("forwarded", ", ".join(f'for="{f}"' for f in forged)),
                ("x-real-port", "1"), ("x-forwarded-proto", "https"))
    client_ip, client_port, scheme = RESOLVER.resolve(str(peer), port, headers, "http")
    assert (client_ip, client_port, scheme) == (str(mapped or peer), port, "http")


def test_make_uid():
    assert make_uid(0x1234, "abcd", 5) == "0000000000001234abcd00000005"
    assert make_uid(1, "", 2**32 + 7).endswith("00000007")  # the sequence wraps at 32 bits


def test_the_server_address_of_a_dual_stack_socket_is_given_as_plain_ipv4():
    """The listener's sockname, as the hit's server_ip: an IPv4 connection to a dual-stack socket
    reads ::ffff:a.b.c.d there, stored as a.b.c.d (as the client's address is)."""
    assert unmapped("::ffff:127.0.0.1") == "127.0.0.1"
    assert unmapped("::ffff:192.0.2.80") == "192.0.2.80"
    assert [unmapped(ip) for ip in ("127.0.0.1", "::1", "2001:db8::80", "::ffff:zz")] == ["127.0.0.1", "::1", "2001:db8::80",
                                                                                          "::ffff:zz"]
