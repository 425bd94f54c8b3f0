"""Which seized domain a request's Host names, and the notice settings that apply to it."""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import NoticeSettings, Settings

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("seized.domains")


# eq=False: hashed by identity, so per-notice caches cost nothing per request; a changed
# domain list builds new Notice objects.
@dataclass(frozen=True, slots=True, eq=False)
class Notice:
    """Everything the notice for one domain (or for unknown hosts, domain=None) needs."""

    domain: str | None
    agency: str
    case_ref: str
    legal_basis: str
    language: str
    status: int
    blocked_by: str


NOTICE_TEXT_FIELDS = ("agency", "case_ref", "legal_basis", "language", "blocked_by")


def clean_text(text: str) -> str:
    """Notice text as shown: a tab or line break becomes a space, any other control character
    (NUL, ESC, DEL, C1) is dropped. Whatever an admin typed (config, API, CLI, a database written by
    an older version), nothing that could pass for a page marker or split a header reaches a page."""
    if text.isprintable():
        return text
    return "".join(" " if char in "\t\n\r\v\f" else char for char in text
                   if char in "\t\n\r\v\f" or unicodedata.category(char) != "Cc")


def resolve_notice(domain: str | None, defaults: NoticeSettings, **fields) -> Notice:
    """A domain's notice: its own non-empty fields, the [notice] defaults for the rest; text cleaned
    of control characters (clean_text)."""
    merged = defaults.model_dump()
    merged.update({k: v for k, v in fields.items() if k in merged and v not in (None, "")})
    for name in NOTICE_TEXT_FIELDS:
        if isinstance(merged.get(name), str):
            merged[name] = clean_text(merged[name])
    return Notice(domain=domain, **merged)


def host_name(host: str) -> str:
    """'WWW.Example.TV:8080' -> 'www.example.tv'; '[::1]:80' -> '::1'. Never raises.
    The name is config.canonical_domain's spelling, but cased and stripped around the port rather
    than by calling it: 'a.tv :80' stays 'a.tv ' (no match), as it always has (tests/unit/test_domain_names.py)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    if sep and (port.isdigit() or not port) and ":" not in name:  # an empty port (`a.tv:`) is allowed too (RFC 3986)
        host = name
    return host.rstrip(".")


class DomainTable:
    """Maps a Host header to the notice of the seized domain it falls under (itself or a subdomain)."""

    def __init__(self, notices: dict[str, Notice], default: Notice):
        self._notices = notices
        self.default = default
        self._by_host: dict[bytes, Notice] = {}

    def match_bytes(self, host: bytes) -> Notice:
        """`match` for a raw Host header, remembered (bounded): the listener asks for every request."""
        notice = self._by_host.get(host)
        if notice is None:
            if len(self._by_host) >= 4096:
                self._by_host.clear()
            notice = self._by_host[host] = self.match(host.decode("latin-1"))
        return notice

    def match(self, host: str) -> Notice:
        name = host_name(host)
        while name:
            notice = self._notices.get(name)
            if notice is not None:
                return notice
            name = name.partition(".")[2]
        return self.default

    def notices(self) -> list[Notice]:
        return list(self._notices.values())

    def __len__(self) -> int:
        return len(self._notices)


async def load_table(store: Store, defaults: NoticeSettings) -> DomainTable:
    """The active domains in the database, with the [notice] defaults for unknown hosts."""
    notices = {row["name"]: resolve_notice(row["name"], defaults, **row) for row in await store.list_domains() if row["active"]}
    return DomainTable(notices, resolve_notice(None, defaults))


# The listener workers hold no database connection: the supervisor writes the active domains to a
# file (atomically, by rename) whenever the list changes, and each worker reloads it when it changes.

def write_table_file(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([row for row in rows if row["active"]], default=str))
    os.replace(temporary, path)


def read_table_file(path: Path, defaults: NoticeSettings, known=None) -> tuple[DomainTable | None, object]:
    """(table, stamp) if the file changed since `known` (or is read for the first time), else (None, known).
    No file yet: no seized domain, only the default notice."""
    try:
        status = path.stat()
    except FileNotFoundError:
        if known is None:
            return DomainTable({}, resolve_notice(None, defaults)), "missing"
        return None, known
    stamp = (status.st_mtime_ns, status.st_ino, status.st_size)
    if stamp == known:
        return None, known
    rows = json.loads(path.read_text())
    notices = {row["name"]: resolve_notice(row["name"], defaults, **row) for row in rows}
    return DomainTable(notices, resolve_notice(None, defaults)), stamp


async def seed_domains(store: Store, settings: Settings) -> None:
    """The config file seeds each domain once; the database wins afterwards (a domain edited or
    removed through the CLI or API stays so)."""
    for seed in settings.domains:
        if await store.seed_domain(**seed.model_dump()):
            log.info("seeded domain %s from the config file", seed.name)
