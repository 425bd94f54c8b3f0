"""A Hit becomes a stored row: bytes decoded, secrets redacted, headers as JSON. Runs in the
ingest process, never on the request path."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import time
from collections import namedtuple
from datetime import datetime, timezone
from functools import lru_cache

from .capture import Hit
from .hit_fields import ROW_COLUMNS
from .clients import redact_path
from .geo import NOWHERE, GeoLookup
from .redact import REDACTED, redact_form, redact_header

COLUMNS = ROW_COLUMNS
Row = namedtuple("Row", ROW_COLUMNS)  # built by name: the order comes from hit_fields alone


@lru_cache(maxsize=65_536)  # players poll: the same few addresses come back again and again
def ip_key(ip: str | None) -> str | None:
    """An IP as 32 hex digits, IPv4 as IPv4-mapped IPv6: text that sorts like the address, so a
    CIDR is one range (see query.py)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.version == 4:
        address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    return address.packed.hex()


# Control characters (C0 but tab, and DEL, as `\xNN`; C1, as `\u00NN`): stored text that a terminal, a log viewer or a
# spreadsheet shows as it is can carry no escape sequence, bare CR or NUL.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0a, 0x20), 0x7f)} | {c: f"\\u{c:04x}" for c in range(0x80, 0xa0)}


def text_of(raw: bytes) -> str:
    """Bytes as sent, as text: UTF-8 where valid, `\\xNN` for any other byte and for a control
    character, so every byte is accounted for and the text is storable and showable everywhere."""
    text = raw.decode("utf-8", "backslashreplace")
    return text.translate(_CONTROLS) if not text.isprintable() else text


@lru_cache(maxsize=64)
def utc_second(seconds: int, separator: str = "T") -> str:
    """'2026-11-23T06:00:25'; cached, as a busy second formats thousands of stamps."""
    return time.strftime(f"%Y-%m-%d{separator}%H:%M:%S", time.gmtime(seconds))


def utc_text(moment: datetime | None = None) -> str:
    """A datetime (default: now; naive means UTC) in the stored form, '2026-11-23T06:00:25.123456Z'."""
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_utc(ns: int) -> str:
    """Nanoseconds since the epoch -> '2026-11-23T06:00:25.123456Z' (sorts as text)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{utc_second(seconds)}.{rest // 1000:06d}Z"


def password_hmac(password: str | None, match_key: bytes | None) -> str | None:
    """HMAC-SHA256(match_key, password): matches a seized subscriber database without plaintext.
    Without a key nothing is kept: a bare hash of a password can be reversed by guessing."""
    if not password or not match_key:
        return None
    return hmac.new(match_key, password.encode("utf-8"), hashlib.sha256).hexdigest()


def to_row(hit: Hit, match_key: bytes | None = None, geo: GeoLookup | None = None) -> tuple:
    """The stored row, its values in COLUMNS order."""
    return RowBuilder(match_key, geo).row(hit)


def to_rows(hits: list[Hit], match_key: bytes | None = None, geo: GeoLookup | None = None) -> list[tuple]:
    return RowBuilder(match_key, geo).rows(hits)


class RowBuilder:
    """Hits into rows, remembering what repeats: a box sends the same header set, path and
    password thousands of times, so each distinct one is decoded, redacted and encoded once."""

    LIMIT = 65_536  # entries per cache; a full cache is emptied, not grown

    def __init__(self, match_key: bytes | None = None, geo: GeoLookup | None = None):
        self.match_key = match_key
        self.geo = geo
        self._headers: dict[tuple, tuple[str, str | None]] = {}
        self._texts: dict[bytes, str] = {}
        self._paths: dict[bytes, str] = {}
        self._queries: dict[bytes, str] = {}
        self._hmacs: dict[str, str | None] = {}

    def rows(self, hits: list[Hit]) -> list[tuple]:
        if self.geo is not None:
            self.geo.refresh()  # a database replaced on disk is used from this batch on
        return [self.row(hit) for hit in hits]

    def _remember(self, cache: dict, key, make):
        value = cache.get(key)
        if value is None:
            if len(cache) >= self.LIMIT:
                cache.clear()
            value = cache[key] = make(key)
        return value

    @staticmethod
    def _header_set(headers: tuple) -> tuple[str, str | None]:
        pairs = []
        for raw_name, raw_value in headers:
            name = text_of(raw_name)
            pairs.append([name, redact_header(name, text_of(raw_value))])
        user_agent = next((value for name, value in pairs if name == "user-agent"), None)
        return json.dumps(pairs, ensure_ascii=False, separators=(",", ":")), user_agent

    def row(self, hit: Hit) -> tuple:
        place = self.geo.place(hit.client_ip) if self.geo is not None else NOWHERE
        headers, user_agent = self._remember(self._headers, tuple(hit.headers), self._header_set)
        body_sha256 = hit.body_sha256
        if hit.form_body is not None:
            # The hash of a form that holds a password would let anyone test guesses against it.
            body_sha256 = hashlib.sha256(redact_form(text_of(hit.form_body)).encode("utf-8")).hexdigest()
        remember = self._remember
        return Row(
            # Unique across nodes and restarts, given when the hit is journaled: what makes ingesting
            # a record twice harmless.
            uid=hit.uid or f"{hit.received_at_ns:016x}{os.urandom(8).hex()}",
            received_at=iso_utc(hit.received_at_ns),
            node=hit.node,
            host=remember(self._texts, hit.host, text_of),
            domain=hit.domain,
            scheme=hit.scheme,
            method=hit.method,
            path=remember(self._paths, hit.raw_path, lambda raw: redact_path(text_of(raw), REDACTED)),
            query=remember(self._queries, hit.query, lambda raw: redact_form(text_of(raw))),
            http_version=hit.http_version,
            client_ip=hit.client_ip,
            client_port=hit.client_port,
            peer_ip=hit.peer_ip,
            peer_port=hit.peer_port,
            server_ip=hit.server_ip,
            server_port=hit.server_port,
            headers=headers,
            user_agent=user_agent,
            body_size=hit.body_size,
            body_sha256=body_sha256,
            status=hit.status,
            duration_ms=round(hit.duration_ms, 3),
            error=hit.error,
            client_ip_key=ip_key(hit.client_ip),
            client_kind=hit.client_kind,
            account=hit.account,
            # Compact, keys sorted: the chain's canonical form, so chain_format uses the text as it is.
            device=json.dumps(hit.device, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if hit.device else None,
            password_hmac=remember(self._hmacs, hit.password, lambda password: password_hmac(password, self.match_key) or "")
            or None if hit.password else None,
            country=place.country,
            city=place.city,
            asn=place.asn,
            as_org=place.as_org,
        )


def as_dict(row: tuple) -> dict:
    return dict(zip(COLUMNS, row, strict=True))
