"""GeoIP and ASN enrichment from MaxMind-format databases the administrator points to. Runs in
the writer's thread as each batch is turned into rows, never on the request path. A database
that is missing or unreadable gives one warning and null fields; a database replaced on disk
(new mtime, or SIGHUP) is picked up before the next batch."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geoip2.database
import geoip2.errors

log = logging.getLogger("seized.geo")
CACHE = 100_000  # addresses: IPTV players come back again and again from the same few


@dataclass(frozen=True, slots=True)
class Place:
    country: str | None = None
    city: str | None = None
    asn: int | None = None
    as_org: str | None = None


NOWHERE = Place()


class _Database:
    """One .mmdb file, reopened when its mtime changes."""

    def __init__(self, path: Path | None, kind: str):
        self.path, self.kind = path, kind
        self.reader = None
        self.mtime = None
        self.warned = False

    def refresh(self, force: bool = False) -> bool:
        """Reopen if the file changed; True if the reader changed."""
        if self.path is None:
            return False
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError as error:
            if not self.warned:
                log.warning("%s database %s unavailable (%s): %s fields stay empty", self.kind, self.path, error, self.kind)
                self.warned = True
            changed, self.reader, self.mtime = self.reader is not None, None, None
            return changed
        if mtime == self.mtime and not force:
            return False
        try:
            reader = geoip2.database.Reader(str(self.path))
        except Exception as error:
            if not self.warned:
                log.warning("%s database %s unreadable (%s): %s fields stay empty", self.kind, self.path, error, self.kind)
                self.warned = True
            self.reader, self.mtime = None, mtime
            return True
        if self.reader is not None:
            self.reader.close()
        self.reader, self.mtime, self.warned = reader, mtime, False
        log.info("%s database loaded: %s", self.kind, self.path)
        return True


class GeoLookup:
    def __init__(self, city_db: Path | None = None, asn_db: Path | None = None):
        self._city = _Database(city_db, "city/country")
        self._asn = _Database(asn_db, "ASN")
        self._lock = threading.Lock()
        self._reload_requested = False
        self.place = lru_cache(maxsize=CACHE)(self._place)

    @property
    def enabled(self) -> bool:
        return self._city.path is not None or self._asn.path is not None

    def request_reload(self) -> None:
        """From a signal handler (SIGHUP): reopen both databases before the next batch."""
        self._reload_requested = True

    def refresh(self) -> None:
        """Once per batch: pick up replaced files."""
        with self._lock:
            force, self._reload_requested = self._reload_requested, False
            if self._city.refresh(force) | self._asn.refresh(force):
                self.place.cache_clear()

    def _place(self, ip: str | None) -> Place:
        if not ip:
            return NOWHERE
        country = city = asn = as_org = None
        if self._city.reader is not None:
            try:
                # A Country database answers .country; a City database answers both.
                if "City" in self._city.reader.metadata().database_type:
                    answer = self._city.reader.city(ip)
                    city = answer.city.name
                else:
                    answer = self._city.reader.country(ip)
                country = answer.country.iso_code
            except (geoip2.errors.AddressNotFoundError, ValueError):
                pass
        if self._asn.reader is not None:
            try:
                answer = self._asn.reader.asn(ip)
                asn, as_org = answer.autonomous_system_number, answer.autonomous_system_organization
            except (geoip2.errors.AddressNotFoundError, ValueError):
                pass
        return Place(country, city, asn, as_org)
