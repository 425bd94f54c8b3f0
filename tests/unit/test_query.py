"""app/query.py: the export writers (CSV per RFC 4180, NDJSON), filters and cursors."""

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from app.query import RECORD_FIELDS, Exporter, HitFilter, csv_cell, parse_cursor, record
from app.store.sqlite import sqlite_where

PROPERTY = settings(deadline=None, database=None)
HEADERS_JSON = '[["host","seized-iptv.example"],["user-agent","VLC/3.0.20"],["x-odd","a,\\"b\\"\\r\\nc"]]'


def stored(**fields) -> dict:
    """A row of the hits view, as the store gives it (headers and device as stored JSON text)."""
    row = dict.fromkeys(RECORD_FIELDS)
    row.update(id=1, uid="0000000000000001abcd00000001", received_at="2026-11-23T06:00:25.123456Z", node="node-1",
               host="seized-iptv.example", domain="seized-iptv.example", scheme="http", method="GET", path="/live/u/[REDACTED]/1.ts",
               query="", http_version="1.1", client_ip="203.0.113.5", client_port=40001, peer_ip="203.0.113.5", peer_port=40001,
               server_ip="192.0.2.80", server_port=8080, headers=HEADERS_JSON, user_agent="VLC/3.0.20", body_size=0, status=200,
               duration_ms=1.5,
               client_kind="stream", account="u", prev_hash="0" * 64, hash="a" * 64)
    row.update(fields)
    return row


def as_export_row(row: dict) -> tuple:
    """What SQLiteStore.iter_hits yields: RECORD_FIELDS order, received_at as stored (microseconds)."""
    return tuple(row[f] for f in RECORD_FIELDS)


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_header_and_line_ends():
    exporter = Exporter("csv")
    header = exporter.start()
    assert header == ",".join(RECORD_FIELDS) + "\r\n"
    body = exporter.rows([as_export_row(stored())])
    assert body.endswith("\r\n") and read_csv(header + body)[0] == list(RECORD_FIELDS)
    assert Exporter("ndjson").start() == ""


def test_csv_fields_read_back_with_the_csv_module():
    row = stored(user_agent='=cmd|" /C calc"!A0, "quoted"\r\nnext line', device='{"sn":"S1","model":"MAG 250"}', error=None,
                 path="/\u00e9t\u00e9,x", country="IT", asn=64500)
    [line] = read_csv(Exporter("csv").rows([as_export_row(row)]))
    got = dict(zip(RECORD_FIELDS, line, strict=True))
    assert got["received_at"] == "2026-11-23T06:00:25.123456Z"
    assert got["user_agent"] == "'" + row["user_agent"] and got["path"] == row["path"]  # a formula: neutralised
    assert got["error"] == "" and got["client_port"] == "40001" and got["duration_ms"] == "1.5" and got["asn"] == "64500"
    # JSON columns as json.dumps writes them (default separators), one CSV field each
    assert got["headers"] == json.dumps(json.loads(HEADERS_JSON), ensure_ascii=False)
    assert json.loads(got["device"]) == {"sn": "S1", "model": "MAG 250"} and got["device"] == '{"sn": "S1", "model": "MAG 250"}'


def test_csv_lines_built_by_the_store_are_joined_with_crlf():
    assert Exporter("csv").rows([(1, "a,b"), (2, '"c\r\nd",e')]) == 'a,b\r\n"c\r\nd",e\r\n'


def test_rows_and_items_write_the_same_export():
    """The store's rows (CLI, API export) and the API's records give byte-identical exports."""
    rows = [stored(), stored(id=2, device='{"sn":"S"}', user_agent=None, headers="[]"), stored(id=3, client_port=None, duration_ms=12.0)]
    items = [record(r) for r in rows]
    for fmt in ("csv", "ndjson"):
        assert Exporter(fmt).rows([as_export_row(r) for r in rows]) == Exporter(fmt).items(items)


def test_ndjson_lines():
    rows = [stored(), stored(id=2, device='{"sn":"S"}', user_agent="\u00e9\u2028")]
    text = Exporter("ndjson").rows([as_export_row(r) for r in rows])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3  # one line per hit: a U+2028 in a value does not break it
    first, second = (json.loads(line) for line in lines[:2])
    assert list(first) == list(RECORD_FIELDS) and first["received_at"] == "2026-11-23T06:00:25.123456Z"
    assert first["headers"] == json.loads(HEADERS_JSON) and first["device"] is None and second["device"] == {"sn": "S"}
    assert second["user_agent"] == "\u00e9\u2028" and "\u00e9" in lines[1]  # UTF-8, not \\u escapes


def test_empty_chunks():
    assert Exporter("ndjson").rows([]) == "" and Exporter("csv").rows([]) == "" and Exporter("csv").items([]) == ""


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@PROPERTY
@given(values=st.lists(st.tuples(TEXT, TEXT, st.one_of(st.none(), st.integers(0, 65535)), st.dictionaries(TEXT, TEXT, max_size=3)),
                       min_size=1, max_size=5))
def test_any_text_survives_csv_and_ndjson(values):
    rows = [stored(id=i, user_agent=ua, path=path, client_port=port, headers=json.dumps([[k, v] for k, v in headers.items()]),
                   device=json.dumps(headers) if headers else None)
            for i, (ua, path, port, headers) in enumerate(values)]
    exporter = Exporter("csv")
    parsed = read_csv(exporter.start() + exporter.rows([as_export_row(r) for r in rows]))
    assert parsed[0] == list(RECORD_FIELDS) and len(parsed) == len(rows) + 1
    for row, line in zip(rows, parsed[1:], strict=True):
        got = dict(zip(RECORD_FIELDS, line, strict=True))
        assert got["user_agent"] == csv_cell(row["user_agent"]) and got["path"] == csv_cell(row["path"])
        assert got["client_port"] == ("" if row["client_port"] is None else str(row["client_port"]))
        assert json.loads(got["headers"]) == json.loads(row["headers"])
    lines = Exporter("ndjson").rows([as_export_row(r) for r in rows]).split("\n")
    assert [json.loads(line)["user_agent"] for line in lines[:-1]] == [r["user_agent"] for r in rows]


def test_exported_items_keep_microseconds():
    item = {**record(stored()), "received_at": "2026-11-23T06:00:25.000001Z"}
    assert json.loads(Exporter("ndjson").items([item]))["received_at"] == "2026-11-23T06:00:25.000001Z"
    assert dict(zip(RECORD_FIELDS, read_csv(Exporter("csv").items([item]))[0]))["received_at"] == "2026-11-23T06:00:25.000001Z"


@pytest.mark.parametrize("cursor, expected", [(None, None), ("0", 0), ("12345", 12345)])
def test_parse_cursor(cursor, expected):
    assert parse_cursor(cursor) == expected


@pytest.mark.parametrize("cursor", ["", "-1", "1.5", "abc", " 1", "\u00b2"])
def test_parse_cursor_refuses(cursor):
    with pytest.raises(ValueError):
        parse_cursor(cursor)


def test_filters_normalise_and_refuse():
    f = HitFilter(ip=" ::FFFF:1.2.3.4 ", cidr="10.1.2.3/8", domain="Example.TV.", since="2026-11-23T07:00:00+01:00")
    assert (f.ip, f.cidr, f.domain) == ("::ffff:102:304", "10.0.0.0/8", "example.tv")
    assert f.since == datetime(2026, 11, 23, 6, tzinfo=timezone.utc) and f.has_range
    assert f.active()["since"] == "2026-11-23T06:00:00.000000Z"
    for bad in ({"ip": "1.2.3"}, {"cidr": "10.0.0.0/33"}, {"port": 70000}, {"client_kind": "robot"}, {"country": "ITA"}):
        with pytest.raises(ValidationError):
            HitFilter(**bad)


def test_sqlite_where_clauses():
    assert sqlite_where(HitFilter()) == ("1", [])
    sql, params = sqlite_where(HitFilter(cidr="10.0.0.0/8", method="GET", path_prefix="/live/"))
    assert sql == "client_ip_key BETWEEN ? AND ? AND method = ? AND substr(path, 1, ?) = ?"
    assert params == [bytes.fromhex("00000000000000000000ffff0a000000"), bytes.fromhex("00000000000000000000ffff0affffff"),
                      "GET", 6, "/live/"]
    sql, params = sqlite_where(HitFilter(ip="1.2.3.4"), text_keys=True)
    assert sql == "client_ip_key IN (?, ?) AND client_ip = ?" and params[1:] == ["00000000000000000000ffff01020304", "1.2.3.4"]
