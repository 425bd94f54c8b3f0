"""app/domains.py: which seized domain a Host header names."""

import pytest
from hypothesis import given, settings, strategies as st

from app.config import NoticeSettings
from app.domains import DomainTable, host_name, read_table_file, resolve_notice, write_table_file

PROPERTY = settings(deadline=None, database=None)
DEFAULTS = NoticeSettings(agency="Default agency", language="en")


@pytest.mark.parametrize("host, expected", [
    ("example.tv", "example.tv"), ("WWW.Example.TV:8080", "www.example.tv"), ("example.tv.", "example.tv"),
    ("example.tv.:80", "example.tv"), ("  example.tv  ", "example.tv"), ("[::1]:80", "::1"), ("[::1]", "::1"),
    ("[2001:DB8::1]:8080", "2001:db8::1"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"), ("1.2.3.4:80", "1.2.3.4"),
    ("", ""), ("[", ""), ("[::1", "::1"), (":80", ""), ("example.tv:http", "example.tv:http"),
])
def test_host_name(host, expected):
    assert host_name(host) == expected


@PROPERTY
@given(st.text())
def test_host_name_never_raises(host):
    name = host_name(host)
    assert isinstance(name, str) and (not name.endswith(".") or host.strip().startswith("["))


def table():
    notices = {name: resolve_notice(name, DEFAULTS, language=lang) for name, lang in
               [("example.tv", "it"), ("line.example.tv", "fr"), ("seized-iptv.example", None)]}
    return DomainTable(notices, resolve_notice(None, DEFAULTS))


@pytest.mark.parametrize("host, domain", [
    ("example.tv", "example.tv"), ("www.example.tv", "example.tv"), ("a.b.c.example.tv", "example.tv"),
    ("EXAMPLE.TV:8080", "example.tv"), ("example.tv.", "example.tv"), ("line.example.tv:8080", "line.example.tv"),
    ("x.line.example.tv", "line.example.tv"), ("seized-iptv.example", "seized-iptv.example"),
    ("notexample.tv", None), ("example.tv.evil.com", None), ("tv", None), ("", None), ("1.2.3.4", None), ("[::1]:80", None),
    ("example", None), ("a..example.tv", "example.tv"),
])
def test_match(host, domain):
    assert table().match(host).domain == domain


def test_an_empty_port_is_no_part_of_the_name():
    """Host: example.tv: (an empty port, which RFC 9110/3986 allow) matches example.tv."""
    assert host_name("example.tv:") == "example.tv" and table().match("www.example.tv:").domain == "example.tv"


def test_match_gives_the_notice_with_defaults_filled_in():
    t = table()
    assert t.match("www.example.tv").language == "it" and t.match("www.example.tv").agency == "Default agency"
    assert t.match("seized-iptv.example").language == "en"  # None falls back to [notice]
    assert t.match("unknown.example") is t.default and t.default.domain is None
    assert len(t) == 3 and {n.domain for n in t.notices()} == {"example.tv", "line.example.tv", "seized-iptv.example"}


@PROPERTY
@given(st.binary(max_size=40) | st.sampled_from([b"WWW.EXAMPLE.TV", b"example.tv:80", b"\xe9xample.tv", b"line.example.tv."]))
def test_match_bytes_is_match_of_the_latin1_text(host):
    t = table()
    assert t.match_bytes(host) is t.match(host.decode("latin-1"))
    assert t.match_bytes(host) is t.match_bytes(host)  # remembered


def test_match_bytes_memory_is_bounded():
    t = table()
    for i in range(10_000):
        t.match_bytes(f"h{i}.example.tv".encode())
    assert len(t._by_host) <= 4096
    assert t.match_bytes(b"www.example.tv").domain == "example.tv"


def test_resolve_notice_ignores_empty_and_unknown_fields():
    notice = resolve_notice("x.tv", DEFAULTS, agency="", case_ref="C-1", status=200, notes="n", active=1, language=None)
    assert (notice.agency, notice.case_ref, notice.status, notice.language) == ("Default agency", "C-1", 200, "en")


def test_table_file_round_trip(tmp_path):
    path = tmp_path / "run" / "domains.json"
    t, stamp = read_table_file(path, DEFAULTS)
    assert len(t) == 0 and stamp == "missing"
    assert read_table_file(path, DEFAULTS, stamp) == (None, stamp)
    write_table_file(path, [{"name": "example.tv", "language": "it", "active": 1},
                            {"name": "off.tv", "language": "it", "active": 0}])
    t, stamp = read_table_file(path, DEFAULTS, stamp)
    assert t.match("www.example.tv").language == "it" and t.match("off.tv").domain is None
    assert read_table_file(path, DEFAULTS, stamp) == (None, stamp)
