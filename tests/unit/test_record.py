"""app/record.py: a Hit becomes the stored row (decoded, redacted, keyed)."""

import hashlib
import hmac
import ipaddress
import unicodedata
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from app.capture import Hit
from app.geo import Place
from app.record import COLUMNS, RowBuilder, as_dict, ip_key, iso_utc, password_hmac, text_of, to_row, to_rows, utc_text

PROPERTY = settings(deadline=None, database=None)
R = "[REDACTED]"


@pytest.mark.parametrize("ip, key", [
    ("1.2.3.4", "00000000000000000000ffff01020304"), ("::ffff:1.2.3.4", "00000000000000000000ffff01020304"),
    ("0.0.0.0", "00000000000000000000ffff00000000"), ("255.255.255.255", "00000000000000000000ffffffffffff"),
    ("::1", "00000000000000000000000000000001"), ("2001:db8::1", "20010db8000000000000000000000001"),
    ("fe80::1%eth0", "fe800000000000000000000000000001"), ("", None), (None, None), ("junk", None), ("1.2.3.4:80", None),
])
def test_ip_key(ip, key):
    assert ip_key(ip) == key


@PROPERTY
@given(a=st.ip_addresses(), b=st.ip_addresses())
def test_ip_keys_sort_like_the_addresses(a, b):
    """So a CIDR is one range of keys (query.py): IPv4 as IPv4-mapped IPv6."""
    def mapped(x):
        return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + x.packed) if x.version == 4 else x
    ka, kb = ip_key(str(a)), ip_key(str(b))
    assert len(ka) == 32 and bytes.fromhex(ka) == mapped(a).packed
    assert (ka < kb) == (mapped(a) < mapped(b))


@PROPERTY
@given(network=st.ip_addresses(v=4).flatmap(lambda a: st.integers(8, 32).map(lambda p: ipaddress.ip_network(f"{a}/{p}", strict=False))),
       inside=st.integers(0, 2**24))
def test_an_ipv4_network_is_one_key_range(network, inside):
    address = network[inside % network.num_addresses]
    assert ip_key(str(network[0])) <= ip_key(str(address)) <= ip_key(str(network[-1]))


@pytest.mark.parametrize("raw, text", [
    (b"", ""), (b"plain", "plain"), ("\u00e9\u20ac\U0001f4fa".encode(), "\u00e9\u20ac\U0001f4fa"), (b"\xff", "\\xff"),
    (b"a\x00b", "a\\x00b"), (b"\xc3", "\\xc3"), (b"\xc3\xa9\xe9", "\u00e9\\xe9"), (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # a surrogate
    (b"\r\n\t\x7f", "\\x0d\\x0a\t\\x7f"), (b"\x1b[31m", "\\x1b[31m"), (b"\xc2\x85", "\\u0085"),  # controls, C1 too
])
def test_text_of(raw, text):
    assert text_of(raw) == text


def from_text(text: str) -> bytes:
    """The inverse of text_of for bytes without a backslash."""
    out, i = bytearray(), 0
    while i < len(text):
        if text.startswith("\\x", i):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif text.startswith("\\u", i):  # a C1 control character
            out += chr(int(text[i + 2:i + 6], 16)).encode()
            i += 6
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


@PROPERTY
@given(st.binary(max_size=64))
def test_text_of_accounts_for_every_byte(raw):
    text = text_of(raw)
    text.encode("utf-8")  # storable: no lone surrogate, whatever the bytes
    assert "\x00" not in text and all(c == "\t" or c.isprintable() or not unicodedata.category(c).startswith("Cc") for c in text)
    if b"\\" not in raw:  # (a literal `\xNN` in the input reads the same as the byte: see the report)
        assert from_text(text) == raw


def test_text_of_is_ambiguous_for_a_literal_backslash():
    assert text_of(b"\\xff") == text_of(b"\xff")


@pytest.mark.parametrize("ns, text", [
    (0, "1970-01-01T00:00:00.000000Z"), (1, "1970-01-01T00:00:00.000000Z"), (999, "1970-01-01T00:00:00.000000Z"),
    (1_000, "1970-01-01T00:00:00.000001Z"), (1_795_413_625_123_456_789, "2026-11-23T06:00:25.123456Z"),
    (1_795_413_625_999_999_999, "2026-11-23T06:00:25.999999Z"), (4_102_444_799_999_999_000, "2099-12-31T23:59:59.999999Z"),
])
def test_iso_utc(ns, text):
    assert iso_utc(ns) == text


@PROPERTY
@given(st.integers(0, 253_402_300_799_999_999_999))  # up to 9999-12-31
def test_iso_utc_is_utc_text_truncated_to_the_microsecond(ns):
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
    assert iso_utc(ns) == utc_text(moment)
    assert len(iso_utc(ns)) == 27


@PROPERTY
@given(a=st.integers(0, 4_102_444_800 * 10**9), b=st.integers(0, 4_102_444_800 * 10**9))
def test_iso_utc_sorts_as_text(a, b):
    if a // 1000 != b // 1000:
        assert (iso_utc(a) < iso_utc(b)) == (a < b)


def test_utc_text():
    assert utc_text(datetime(2026, 11, 23, 6, 0, 25, 123456)) == "2026-11-23T06:00:25.123456Z"  # naive is UTC
    assert utc_text(datetime(2026, 11, 23, 7, 0, 25, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-23T06:00:25.000000Z"
    assert utc_text(datetime(2026, 11, 22, 20, 0, tzinfo=timezone(timedelta(hours=-10)))) == "2026-11-23T06:00:00.000000Z"
    now = utc_text()
    assert now.endswith("Z") and abs(datetime.fromisoformat(now[:-1]).replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_password_hmac():
    # RFC 4231-style check against the standard library, and the well-known HMAC-SHA256 vector
    assert password_hmac("The quick brown fox jumps over the lazy dog", b"key") == \
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert password_hmac("p\u00e4ss", b"k") == hmac.new(b"k", "p\u00e4ss".encode(), hashlib.sha256).hexdigest()
    assert password_hmac(None, b"k") is None and password_hmac("", b"k") is None
    assert password_hmac("x", None) is None and password_hmac("x", b"") is None  # without a key no trace is kept


def hit(**fields) -> Hit:
    base = dict(received_at_ns=1_795_413_625_123_456_789, node="node-1", host=b"seized-iptv.example", domain="seized-iptv.example",
                scheme="http", method="GET", raw_path=b"/player_api.php", query=b"username=alice&password=s3cret",
                http_version="1.1", client_ip="203.0.113.5", client_port=40001, peer_ip="203.0.113.5", peer_port=40001,
                server_ip="192.0.2.80", server_port=8080,
                headers=[(b"host", b"seized-iptv.example"), (b"user-agent", b"IPTVSmartersPro"),
                         (b"authorization", b"Bearer tok"), (b"referer", b"http://x/live/alice/s3cret/1.ts")],
                status=200, duration_ms=1.23456, client_kind="xtream_api", account="alice", password="s3cret",
                uid="0000000000000001abcd00000001")
    base.update(fields)
    return Hit(**base)


def test_every_field_of_a_row():
    row = as_dict(RowBuilder(b"key").row(hit()))
    assert list(row) == list(COLUMNS)
    assert row == {
        "uid": "0000000000000001abcd00000001", "received_at": "2026-11-23T06:00:25.123456Z", "node": "node-1",
        "host": "seized-iptv.example", "domain": "seized-iptv.example", "scheme": "http", "method": "GET",
        "path": "/player_api.php", "query": f"username=alice&password={R}", "http_version": "1.1",
        "client_ip": "203.0.113.5", "client_port": 40001, "peer_ip": "203.0.113.5", "peer_port": 40001,
        "server_ip": "192.0.2.80", "server_port": 8080,
        "headers": json.dumps([["host", "seized-iptv.example"], ["user-agent", "IPTVSmartersPro"], ["authorization", f"Bearer {R}"],
                               ["referer", f"http://x/live/alice/{R}/1.ts"]], separators=(",", ":")),
        "user_agent": "IPTVSmartersPro", "body_size": 0, "body_sha256": None, "status": 200, "duration_ms": 1.235, "error": None,
        "client_ip_key": "00000000000000000000ffffcb007105", "client_kind": "xtream_api", "account": "alice", "device": None,
        "password_hmac": hmac.new(b"key", b"s3cret", hashlib.sha256).hexdigest(),
        "country": None, "city": None, "asn": None, "as_org": None,
    }


def test_no_password_anywhere_in_the_row():
    h = hit(raw_path=b"/live/alice/s3cret/1.ts", query=b"pwd=s3cret", form_body=b"password=s3cret&x=1", body_size=19)
    for key in (None, b"key"):
        row = RowBuilder(key).row(h)
        assert "s3cret" not in json.dumps(row)
        assert as_dict(row)["body_sha256"] == hashlib.sha256(f"password={R}&x=1".encode()).hexdigest()
    assert as_dict(to_row(h))["password_hmac"] is None


def test_bytes_as_sent_and_odd_values():
    h = hit(host=b"\xffhost\x00", raw_path=b"/\xc3\xa9t\xe9", query=b"", headers=[(b"x-odd", b"\x00\xff"), (b"user-agent", b"\xe9")],
            password=None, uid=None, device={"sn": "S1", "model": "MAG250"}, duration_ms=0.0004)
    row = as_dict(RowBuilder().row(h))
    assert (row["host"], row["path"], row["query"]) == ("\\xffhost\\x00", "/\u00e9t\\xe9", "")
    assert json.loads(row["headers"]) == [["x-odd", "\\x00\\xff"], ["user-agent", "\\xe9"]] and row["user_agent"] == "\\xe9"
    assert row["device"] == '{"model":"MAG250","sn":"S1"}' and row["duration_ms"] == 0.0 and row["password_hmac"] is None
    assert row["uid"].startswith(f"{h.received_at_ns:016x}") and len(row["uid"]) == 32  # made up when the journal gave none
    assert as_dict(RowBuilder().row(hit(headers=[])))["user_agent"] is None


class FakeGeo:
    def __init__(self):
        self.refreshed = 0

    def refresh(self):
        self.refreshed += 1

    def place(self, ip):
        return Place("IT", "Roma", 64500, "Example ISP") if ip == "203.0.113.5" else Place()


def test_geo_fields_and_refresh_per_batch():
    geo = FakeGeo()
    rows = to_rows([hit(), hit(client_ip="198.51.100.1")], geo=geo)
    assert geo.refreshed == 1
    assert [as_dict(r)["country"] for r in rows] == ["IT", None] and as_dict(rows[0])["asn"] == 64500


def test_repeated_values_are_cached_without_changing_results():
    builder = RowBuilder(b"k")
    builder.LIMIT = 2  # every cache overflows and is emptied along the way
    hits = [hit(raw_path=f"/live/u{i % 3}/p{i % 5}/1.ts".encode(), query=f"password=p{i % 4}".encode(),
                headers=[(b"user-agent", f"ua{i % 3}".encode())], password=f"p{i % 5}", host=f"h{i % 2}".encode()) for i in range(30)]
    assert [builder.row(h) for h in hits] == [RowBuilder(b"k").row(h) for h in hits]
