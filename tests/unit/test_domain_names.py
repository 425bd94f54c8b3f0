"""One spelling of a domain name: config.canonical_domain, used wherever a name is stored (through
normalise_domain) or looked up (API, CLI), and what the listener's host_name gives for a Host."""

import pytest
from hypothesis import given, settings, strategies as st

from app.config import canonical_domain, normalise_domain
from app.domains import host_name

PROPERTY = settings(deadline=None, database=None)
NAMES = st.from_regex(r"\A[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,20}){0,3}\Z")


@pytest.mark.parametrize("name, expected", [
    ("example.tv", "example.tv"), ("Example.TV", "example.tv"), ("EXAMPLE.TV.", "example.tv"), (" example.tv. ", "example.tv"),
    ("example.tv..", "example.tv"), ("\texample.tv\n", "example.tv"), ("xn--exmple-cua.tv", "xn--exmple-cua.tv"),
    # lookups never raise: what is no domain name comes back as it is spelled, and finds nothing
    ("", ""), (".", ""), ("exa mple.tv", "exa mple.tv"), ("Example.TV:8080", "example.tv:8080"), ("bad/Name", "bad/name"),
])
def test_canonical_domain(name, expected):
    assert canonical_domain(name) == expected


@PROPERTY
@given(st.text())
def test_canonical_domain_never_raises_and_stores_what_normalise_domain_stores(name):
    spelled = canonical_domain(name)
    assert isinstance(spelled, str) and not spelled.endswith(".")
    try:
        stored = normalise_domain(name)
    except ValueError:
        return
    assert stored == spelled == canonical_domain(stored)


@PROPERTY
@given(NAMES, st.sampled_from(["", "."]), st.sampled_from(["", ":80", ":8080"]), st.sampled_from([str, str.upper, str.title]))
def test_every_spelling_of_a_name_is_one_name(name, dot, port, case):
    """What POST stores, what GET/PATCH/DELETE and `seized domains remove` look up, and what the
    listener matches a Host against are the same name."""
    spelled = case(name) + dot
    assert canonical_domain(spelled) == normalise_domain(spelled) == canonical_domain(name) == host_name(spelled + port)


def test_host_name_keeps_a_space_before_the_port():
    """The one spelling where host_name and canonical_domain part: a space inside the Host header,
    before its port, stays part of the name (so it matches no seized domain), as it always has."""
    assert host_name("Example.TV :80") == "example.tv " and canonical_domain("Example.TV ") == "example.tv"
