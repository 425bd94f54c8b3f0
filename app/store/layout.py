"""How a hit is kept on disk (schema version 10 on): compact rows in `hit_rows`, each distinct set of
request headers once in `header_sets`, and the view `hits` that gives every reader the record as
it always was (same columns, same values; see migrations.py; server_ip added by schema 18).

A row of `hit_rows` differs from the record only in representation, never in content:

- `uid`, `client_ip_key`, `body_sha256`, `password_hmac`, `prev_hash`, `hash`: the bytes (BLOB)
  when the record holds lower-case hex of the expected length, else the text as given;
- `received_us`: microseconds since the epoch when the record holds the canonical UTC text
  '2026-11-23T06:00:25.123456Z' (from 1970 on), else the text as given;
- `peer_ip`, `peer_port`: an empty BLOB when equal to `client_ip`, `client_port`;
- `header_set`: the id of the (headers, user_agent) pair in `header_sets`.

The view turns each back; rows inserted through the view (its INSTEAD OF trigger, pure SQL) keep
the hex text, which SQLite 3.40 cannot turn into bytes, and read back the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

from ..hit_fields import CHAIN_COLUMNS
from ..record import COLUMNS, utc_second

STORED = (*COLUMNS, *CHAIN_COLUMNS)  # a row handed to the store: the record's columns, then the chain's
# hit_rows' columns after id, as physical() gives them (the table has server_ip last: a column added
# later); `header_set` stands for the record's headers and user_agent
PHYSICAL = (
    "uid", "received_us", "node", "domain", "method", "path", "query",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_ip", "server_port", "header_set", "body_size", "body_sha256",
    "status", "duration_us", "error", "client_ip_key", "client_kind", "account", "device", "password_hmac",
    "prev_hash", "hash", "country", "city", "asn", "as_org")


def insert_row(columns: tuple, with_id: bool = False) -> str:
    names = ("id", *columns) if with_id else columns
    return f"INSERT INTO hit_rows ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


INSERT_ROW = insert_row(PHYSICAL)
INSERT_ROW_WITH_ID = insert_row(PHYSICAL, with_id=True)

_AT = {name: STORED.index(name) for name in STORED}
_HEX = {"uid": 16, "client_ip_key": 16, "body_sha256": 32, "password_hmac": 32, "prev_hash": 32, "hash": 32}
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII)
SAME = b""  # peer_ip/peer_port: the same as the client's


def packed(value, size: int):
    """Lower-case hex of `size` bytes as those bytes; anything else unchanged."""
    if type(value) is str and len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return value
        if raw.hex() == value:
            return raw
    return value


@lru_cache(maxsize=4096)
def _epoch_seconds(text: str) -> int | None:
    import calendar
    import time

    try:
        seconds = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    return seconds if seconds >= 0 and utc_second(seconds) == text else None


def received_us(stamp):
    """'2026-11-23T06:00:25.123456Z' -> microseconds since the epoch; anything else unchanged."""
    if type(stamp) is str and _STAMP.fullmatch(stamp):
        seconds = _epoch_seconds(stamp[:19])
        if seconds is not None:
            return seconds * 1_000_000 + int(stamp[20:26])
    return stamp


def duration_us(ms):
    """Milliseconds (rounded to the microsecond, as record.py stores them) as integer microseconds
    when that gives back the very same float; anything else unchanged."""
    if type(ms) in (float, int):
        us = round(ms * 1000)
        if us / 1000 == ms:
            return us
    return ms


def header_digest(*values) -> bytes:
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).digest()


class HeaderSets:
    """(headers, user_agent, host, scheme, http_version) -> id in `header_sets`. The digests are
    cached; the ids are looked up once per batch (one indexed query for its few distinct sets), so
    a rolled-back transaction can never leave a stale id behind."""

    def __init__(self, limit: int = 50_000):
        self.digests: dict[tuple, bytes] = {}
        self.limit = limit

    def digest(self, key: tuple) -> bytes:
        found = self.digests.get(key)
        if found is None:
            if len(self.digests) >= self.limit:
                self.digests.clear()
            found = self.digests[key] = header_digest(*key)
        return found

    async def resolve(self, db, keys) -> dict:
        wanted = {key: self.digest(key) for key in dict.fromkeys(keys)}
        ids = await self._ids(db, wanted.values())
        missing = [(digest, *key) for key, digest in wanted.items() if digest not in ids]
        if missing:
            await db.executemany("INSERT OR IGNORE INTO header_sets (digest, headers, user_agent, host, scheme, http_version) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", missing)
            ids.update(await self._ids(db, [row[0] for row in missing]))
        return {key: ids[digest] for key, digest in wanted.items()}

    @staticmethod
    async def _ids(db, digests) -> dict[bytes, int]:
        digests, found = list(digests), {}
        for start in range(0, len(digests), 500):
            part = digests[start:start + 500]
            async with db.execute(f"SELECT digest, id FROM header_sets WHERE digest IN ({','.join('?' * len(part))})",
                                  part) as cursor:
                found.update({bytes(digest): set_id for digest, set_id in await cursor.fetchall()})
        return found


def physical(row, header_set: int) -> tuple:
    """A stored row (STORED order) as a row of hit_rows (PHYSICAL order)."""
    (uid, received_at, node, host, domain, scheme, method, path, query, http_version, client_ip, client_port,
     peer_ip, peer_port, server_ip, server_port, _headers, _user_agent, body_size, body_sha256, status, duration_ms, error,
     client_ip_key, client_kind, account, device, password_hmac, country, city, asn, as_org, prev_hash, digest) = row
    return (
        packed(uid, 16), received_us(received_at), node, domain, method, path, query,
        client_ip, client_port,
        SAME if peer_ip is not None and peer_ip == client_ip else peer_ip,
        SAME if peer_port is not None and peer_port == client_port else peer_port,
        server_ip, server_port, header_set, body_size, packed(body_sha256, 32), status, duration_us(duration_ms), error,
        packed(client_ip_key, 16), client_kind, account, device, packed(password_hmac, 32),
        packed(prev_hash, 32), packed(digest, 32), country, city, asn, as_org,
    )


SET_KEY = tuple(_AT[c] for c in ("headers", "user_agent", "host", "scheme", "http_version"))


def set_key(row, offset: int = 0) -> tuple:
    return tuple(row[offset + i] for i in SET_KEY)


async def write_rows(db, header_sets: HeaderSets, rows, with_id: bool = False, columns: tuple = PHYSICAL) -> None:
    """Rows (STORED order; with `with_id`, the id first) into hit_rows, in the caller's transaction.
    `columns`: those of PHYSICAL that hit_rows has, for a migration writing it as an older schema
    left it (the others must be null in every row)."""
    offset = 1 if with_id else 0
    keys = [set_key(row, offset) for row in rows]
    ids = await header_sets.resolve(db, keys)
    if columns != PHYSICAL:
        kept = [PHYSICAL.index(c) for c in columns]
        left = [i for i in range(len(PHYSICAL)) if i not in kept]
        values = [physical(row[offset:], ids[key]) for row, key in zip(rows, keys)]
        if any(v[i] is not None for v in values for i in left):
            raise ValueError(f"hit_rows has no {', '.join(PHYSICAL[i] for i in left)} for the values given")
        await db.executemany(insert_row(columns, with_id), [((row[0],) if with_id else ()) + tuple(v[i] for i in kept)
                                                            for row, v in zip(rows, values)])
    elif with_id:
        await db.executemany(INSERT_ROW_WITH_ID, [(row[0], *physical(row[1:], ids[key])) for row, key in zip(rows, keys)])
    else:
        await db.executemany(INSERT_ROW, [physical(row, ids[key]) for row, key in zip(rows, keys)])


def uid_forms(uid: str) -> list:
    """The ways a uid can be stored (bytes, or the text when it is not plain hex)."""
    compact = packed(uid, 16)
    return [uid] if compact is uid else [compact, uid]


def ip_key_forms(key: str) -> tuple:
    """A client_ip_key (32 hex digits) as stored by the writer (bytes) and through the view (text)."""
    return bytes.fromhex(key), key
