"""app/config.py: domain names and listener addresses as configured."""

import pytest
from hypothesis import given, settings, strategies as st

from app.config import DomainSeed, Settings, normalise_domain, split_address
from app.domains import host_name

PROPERTY = settings(deadline=None, database=None)


@pytest.mark.parametrize("name, expected", [
    ("example.tv", "example.tv"), ("Example.TV", "example.tv"), (" example.tv. ", "example.tv"), ("example.tv..", "example.tv"),
    ("xn--exmple-cua.tv", "xn--exmple-cua.tv"), ("localhost", "localhost"), ("*.example.tv", "*.example.tv"),
    ("1.2.3.4", "1.2.3.4"),
])
def test_normalise_domain(name, expected):
    assert normalise_domain(name) == expected


@pytest.mark.parametrize("name", ["", " ", ".", "..", "exa mple.tv", "example.tv:8080", "http://example.tv", "example.tv/x",
                                  "user@example.tv", "[::1]", "ex\tample.tv", "ex\x00ample.tv", "ex\x7fample.tv", "example.tv\n."])
def test_normalise_domain_refuses(name):
    with pytest.raises(ValueError, match="not a domain name"):
        normalise_domain(name)


def test_a_seed_is_normalised():
    assert DomainSeed(name=" WWW.Example.TV. ").name == "www.example.tv"
    with pytest.raises(ValueError):
        DomainSeed(name="example.tv:80")


@PROPERTY
@given(st.from_regex(r"\A[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,20}){0,3}\.?\Z"))
def test_a_normalised_domain_is_what_host_name_gives_for_it(name):
    """The two sides of a match agree: the configured name and a Host naming it, with any port."""
    assert normalise_domain(name) == host_name(name) == host_name(f"{name.upper()}:8080")


@pytest.mark.parametrize("address, expected", [
    ("0.0.0.0:8080", ("0.0.0.0", 8080)), ("127.0.0.1:8081", ("127.0.0.1", 8081)), ("[::1]:8080", ("::1", 8080)),
    ("[::]:80", ("::", 80)), (":8080", ("0.0.0.0", 8080)), ("localhost:0", ("localhost", 0)),
    ("::1:8080", ("::1", 8080)),  # unbracketed IPv6 is read as host:port by the last colon
])
def test_split_address(address, expected):
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["8080", "host:", "host:http", "[::1]", "host:-1", "host: 80", ""])
def test_split_address_refuses(address):
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_address(address)


def test_split_address_refuses_a_port_out_of_range():
    for address in ("0.0.0.0:99999", "[::]:65536", "a:８０"):  # (fullwidth digits are no port either)
        with pytest.raises(ValueError):
            split_address(address)


def test_client_port_header_is_lower_cased():
    assert Settings(client_port_header="X-Real-Port").client_port_header == "x-real-port"
