"""The hit query layer shared by the API and the CLI: filters, pages, exports, stats."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .clients import CLIENT_KINDS
from .config import canonical_domain
from .hit_fields import RECORD_FIELDS
from .record import utc_text

GROUPS = ("domain", "hour", "day", "client_ip", "account", "client_kind", "asn", "country")

MAX_PAGE = 1000
HEADERS, DEVICE = RECORD_FIELDS.index("headers"), RECORD_FIELDS.index("device")
MAX_ID = 2**63 - 1  # ids and cursors are 64-bit signed integers in both stores
# The times a filter can name: the stores keep received_at as microseconds since 1970 (SQLite) or a
# timestamptz, and compare the canonical 'YYYY-MM-DDTHH:MM:SS.ffffffZ' form (four-digit years).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

# Nothing outside the chain: every reader of hits (the stores' query_hits, iter_hits, get_hit, stats,
# plan...) leaves out the rows `seized verify` does not account for: ids below 1 (seized
# never gives one) and rows without a hash inside a node's chain. Those with ids below 1 matching a
# query are counted (store.outside_chain: an index range, cheap) and reported: the API in this
# header, the CLI on standard error. Counting the others would take a scan; verify reports them.
OUTSIDE_CHAIN_HEADER = "X-Seized-Outside-Chain"


def outside_chain_note(count: int) -> str:
    """What a reader says of the rows with ids below 1 it left out."""
    return (f"warning: {count} row{'s' if count != 1 else ''} outside the chain (id below 1, which seized never "
            "gives) left out; run `seized verify`")


def utc_moment(value: datetime) -> datetime:
    """A time a filter names, in UTC (naive means UTC); ValueError outside the range the stores can
    compare (EARLIEST..LATEST): 0001-01-01T00:00:00+14:00 is no instant of year 1 in UTC, nor
    9999-12-31T23:59:59-14:00 of year 9999."""
    try:
        moment = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise ValueError(f"out of range: {value.isoformat()} must be, in UTC, between "
                         f"{EARLIEST:%Y-%m-%dT%H:%M:%SZ} and {LATEST:%Y-%m-%dT%H:%M:%SZ}")
    return moment


class HitFilter(BaseModel):
    """Every filter is optional; given ones are combined with AND."""

    since: datetime | None = Field(None, description="received at or after (RFC 3339)")
    until: datetime | None = Field(None, description="received before (RFC 3339)")
    domain: str | None = Field(None, description="seized domain, exact")
    ip: str | None = Field(None, description="client IP, exact")
    cidr: str | None = Field(None, description="client IP inside this network (IPv4 or IPv6)")
    port: int | None = Field(None, ge=0, le=65535, description="client source port")
    method: str | None = Field(None, description="HTTP method, exact")
    path_prefix: str | None = Field(None, description="path starts with this")
    ua: str | None = Field(None, description="User-Agent contains this (case-insensitive)")
    status: int | None = Field(None, ge=100, le=599, description="response status")
    node: str | None = Field(None, description="node id, exact")
    account: str | None = Field(None, description="Xtream username or Stalker MAC, exact")
    client_kind: Literal[CLIENT_KINDS] | None = Field(None, description="kind of client")  # type: ignore[valid-type]
    asn: int | None = Field(None, ge=0, le=4_294_967_295, description="client's autonomous system number")
    country: str | None = Field(None, min_length=2, max_length=2, description="client's country, ISO 3166 alpha-2")

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError as error:
            raise ValueError(f"not an IP address: {value!r}") from error

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"not a network: {value!r}") from error

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return canonical_domain(value) if value is not None else None

    @field_validator("since", "until")
    @classmethod
    def _moment(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc_moment(value)

    @property
    def has_range(self) -> bool:
        """Filters served by an index range (rather than an equality lookup already in id order)."""
        return self.cidr is not None or self.since is not None or self.until is not None

    def active(self) -> dict:
        """The filters that were given, as JSON-ready values (for the audit log)."""
        return {k: (utc_text(v) if isinstance(v, datetime) else v) for k, v in self.model_dump().items() if v is not None}


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are opaque to clients; here, the id of the last hit of the previous page."""
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19 or int(cursor) > MAX_ID:  # ("²".isdigit() is true)
        raise ValueError("invalid cursor")
    return int(cursor)


def record(row) -> dict:
    """A stored row as an investigator sees it: headers as a list, no internal columns."""
    out = {name: row[name] for name in RECORD_FIELDS}
    out["headers"] = json.loads(out["headers"])
    out["device"] = json.loads(out["device"]) if out["device"] else None
    return out


# CSV formula injection (OWASP): a spreadsheet evaluates a cell that begins with =, +, -, @, tab or
# CR. Every CSV seized writes (exports, a package's hits.csv) writes such a text cell as a single
# quote followed by the text, the whole cell quoted: '=cmd|...' reads back as "'=cmd|...". Only
# text is changed: numbers (a negative one too) are written as they are. The package checkers
# compare hits.csv against records.jsonl through csv_cell; app/verifier/verify.js repeats the rule.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Could any cell of this CSV text begin with one of them? (A cell begins a line, or follows a comma,
# perhaps after its opening quote.) A match may be a false alarm, never a miss.
_MAYBE_FORMULA = re.compile(r'(?:^|,)"?[=+\-@\t\r]', re.MULTILINE)
_QUOTED = re.compile('[",\r\n]')  # what makes the csv module quote a text field


def is_formula(value) -> bool:
    """A text value a spreadsheet would evaluate as a formula."""
    return type(value) is str and value.startswith(FORMULA_START)


def csv_cell(value) -> str:
    """The text a CSV reader gets back from the cell seized writes for `value` (None: empty)."""
    return "" if value is None else "'" + value if is_formula(value) else str(value)


def csv_field(value) -> str:
    """One value as its CSV field: as Python's csv module writes it (RFC 4180 quoting, floats as
    repr), a formula-looking text neutralised and quoted."""
    if type(value) is str:  # text as the csv module quotes it (QUOTE_MINIMAL), without a writer per field
        if value.startswith(FORMULA_START):
            return "\"'" + value.replace('"', '""') + '"'
        return '"' + value.replace('"', '""') + '"' if _QUOTED.search(value) else value
    if value is None:
        return ""
    if type(value) is int:
        return str(value)
    buffer = io.StringIO()  # (the line end is what tells the csv module to quote a CR or LF)
    csv.writer(buffer, lineterminator="\r\n").writerow([value, ""])
    return buffer.getvalue()[:-3]


class CsvWriter:
    """Rows to CSV text: RFC 4180, CRLF line ends, fields quoted when they need it (Python's csv
    module), formula-looking text cells neutralised (FORMULA_START). Every CSV seized writes goes
    through one of these."""

    def __init__(self):
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def lines(self, rows) -> str:
        rows = rows if isinstance(rows, list) else list(rows)
        text = self._write(rows)
        if _MAYBE_FORMULA.search(text) is None:  # nearly always: the csv module's text as it is
            return text
        return "".join(",".join(map(csv_field, row)) + "\r\n" if any(map(is_formula, row)) else self._write([row])
                       for row in rows)

    def _write(self, rows) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerows(rows)
        return self._buffer.getvalue()


class Exporter:
    """Rows to export text, a chunk at a time so memory stays flat however many rows there are.
    `Exporter(fmt)` is the writer of that format in EXPORT_FORMATS.
    The rows are what a store's iter_hits(filters, fmt) yields: plain tuples in RECORD_FIELDS order,
    received_at as stored (to the microsecond, like every time seized writes), headers and device as
    their stored JSON text."""

    def __new__(cls, fmt: str | None = None):
        return super().__new__(EXPORT_FORMATS[fmt].writer if cls is Exporter else cls)

    def __init__(self, fmt: str | None = None):
        # stored JSON -> as this format writes it; a box sends the same headers again and again
        self._json: dict[str, object] = {}

    def start(self) -> str:
        """What comes before the first row."""
        return ""

    def rows(self, rows) -> str:
        """Export rows (a store's iter_hits(filters, fmt)) to export text."""
        raise NotImplementedError

    def items(self, items) -> str:
        """Hit records (as the API returns them) to export text."""
        raise NotImplementedError


class CsvExporter(Exporter):
    """CSV follows RFC 4180: a header row, CRLF line ends, fields quoted when they need it."""

    def __init__(self, fmt: str | None = None):
        super().__init__(fmt)
        self._csv_lines = CsvWriter().lines

    def start(self) -> str:
        return self._csv_lines([RECORD_FIELDS])

    def rows(self, rows) -> str:
        if rows and len(rows[0]) == 2:  # (id, line): the store built the lines
            return "\r\n".join([line for _, line in rows]) + "\r\n"
        cache, lines = self._json, []
        for row in rows:
            line = list(row)
            text = line[HEADERS]
            line[HEADERS] = cache.get(text) or self._reformat(text)
            text = line[DEVICE]
            if text:
                line[DEVICE] = cache.get(text) or self._reformat(text)
            lines.append(line)
        return self._csv_lines(lines)

    def _reformat(self, text: str) -> str:
        """Stored JSON as the CSV has always carried it (json.dumps' default separators)."""
        if len(self._json) > 10_000:
            self._json.clear()
        self._json[text] = json.dumps(json.loads(text), ensure_ascii=False)
        return self._json[text]

    def items(self, items) -> str:
        return self._csv_lines([
            ["" if item[f] is None else json.dumps(item[f], ensure_ascii=False) if f in ("headers", "device") else item[f]
             for f in RECORD_FIELDS]
            for item in items
        ])


class NdjsonExporter(Exporter):
    """One JSON object per line, LF line ends."""

    def rows(self, rows) -> str:
        parsed = self._parse
        return "".join([json.dumps({**dict(zip(RECORD_FIELDS, row)), "headers": parsed(row[HEADERS]),
                                    "device": parsed(row[DEVICE]) if row[DEVICE] else None}, ensure_ascii=False) + "\n"
                        for row in rows])

    def _parse(self, text: str):
        if text not in self._json:
            if len(self._json) > 10_000:
                self._json.clear()
            self._json[text] = json.loads(text)
        return self._json[text]

    def items(self, items) -> str:
        return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


@dataclass(frozen=True)
class ExportSpec:
    label: str  # as the API's documentation names it
    media_type: str  # the answer's Content-Type
    suffix: str  # of the file name, hits.<suffix>
    writer: type[Exporter]


# The export formats: the CLI's --format choices, the API's `format` parameter, its media types and
# the OpenAPI document's content types are all made from this. A new format is one more entry.
EXPORT_FORMATS: dict[str, ExportSpec] = {
    "csv": ExportSpec("CSV (RFC 4180, header row)", "text/csv; charset=utf-8", "csv", CsvExporter),
    "ndjson": ExportSpec("NDJSON", "application/x-ndjson", "ndjson", NdjsonExporter),
}
ExportFormat = Literal[tuple(EXPORT_FORMATS)]  # type: ignore[valid-type]
