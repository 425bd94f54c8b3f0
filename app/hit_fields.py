"""The hit record's fields, defined once: name, type as the API gives it, what it means, and where
it lives. Everything else is derived from FIELDS: the stored row's columns and the order of
to_row's tuple (ROW_COLUMNS, hashed by the chain), the record every reader gets (RECORD_FIELDS:
API model, CSV and NDJSON exports, CLI), and the backends' views are checked against it.

Not here: capture.Hit, the request as received (bytes, before redaction), and the journal's
record format (capture.JOURNAL_FIELDS), which is a wire format with versions of its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: object  # the value's type in the record (JSON as the API sends it)
    about: str
    stored: bool = True  # part of the row ingest stores and the chain hashes (not: id, prev_hash, hash)
    public: bool = True  # part of the record readers get (not: client_ip_key, an index key)


FIELDS: tuple[Field, ...] = (
    Field("id", int, "position in the log (grows in commit order; keyset cursor)", stored=False),
    Field("uid", str, "unique id given when the hit was journaled (32 hex digits)"),
    Field("received_at", str, "UTC time the request head was complete, to the microsecond (RFC 3339, Z)"),
    Field("node", str, "the node that answered"),
    Field("host", str, "Host header as sent (or :authority)"),
    Field("domain", str | None, "the seized domain the host matched, if any"),
    Field("scheme", str, "http or https, as the listener or a trusted proxy saw it"),
    Field("method", str, "request method"),
    Field("path", str, "request path, passwords redacted"),
    Field("query", str, "query string, passwords redacted"),
    Field("http_version", str, "HTTP version of the request"),
    Field("client_ip", str | None, "the client's IP (from a trusted proxy's header if one is configured)"),
    Field("client_port", int | None, "the client's source port (RFC 6302)"),
    Field("peer_ip", str | None, "the IP of the TCP peer (the proxy, when behind one)"),
    Field("peer_port", int | None, "the source port of the TCP peer"),
    Field("server_ip", str | None, "the local IP address the connection arrived at (behind a proxy: the proxy-facing one)"),
    Field("server_port", int | None, "the local port the connection arrived at (behind a proxy: the proxy-facing one)"),
    Field("headers", list[list[str]], "every header as [name, value], in order, passwords redacted"),
    Field("user_agent", str | None, "the User-Agent header"),
    Field("body_size", int, "bytes of request body received"),
    Field("body_sha256", str | None, "SHA-256 of the body (of a form: after its passwords were redacted)"),
    Field("status", int, "HTTP status answered"),
    Field("duration_ms", float, "time taken to answer, in milliseconds"),
    Field("error", str | None, "why the request could not be parsed, if it could not"),
    Field("client_ip_key", str | None, "the client IP as 16 bytes of hex (IPv4 mapped): CIDR range key", public=False),
    Field("client_kind", str | None, "the kind of client: browser, an IPTV player, a set-top box..."),
    Field("account", str | None, "the IPTV account (username) the request named"),
    Field("device", dict[str, str] | None, "device identifiers a set-top box sent (MAC, serial, model)"),
    Field("password_hmac", str | None, "HMAC-SHA-256 of the password under the match key (never the password)"),
    Field("country", str | None, "ISO country of the client IP (GeoIP, if configured)"),
    Field("city", str | None, "city of the client IP (GeoIP, if configured)"),
    Field("asn", int | None, "autonomous system number of the client IP (if configured)"),
    Field("as_org", str | None, "organisation of that autonomous system"),
    Field("prev_hash", str | None, "hash of the node's previous hit (the chain)", stored=False),
    Field("hash", str | None, "SHA-256 of this hit's canonical record and prev_hash", stored=False),
)
BY_NAME = {field.name: field for field in FIELDS}
ROW_COLUMNS = tuple(f.name for f in FIELDS if f.stored)  # a stored row's values, in to_row's order
CHAIN_COLUMNS = ("prev_hash", "hash")  # what the chain adds to a row
RECORD_FIELDS = tuple(f.name for f in FIELDS if f.public)  # the record, in every reader's order
VIEW_COLUMNS = frozenset(f.name for f in FIELDS)  # what each backend's `hits` view must give


def check_view(backend: str, columns) -> None:
    """A backend's view of the record must give exactly the fields above (checked at import)."""
    if set(columns) != VIEW_COLUMNS:
        raise RuntimeError(f"{backend}'s hits view and hit_fields.FIELDS differ: "
                           f"{sorted(set(columns) ^ VIEW_COLUMNS)}")
