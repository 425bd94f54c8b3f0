"""The scale-out store: PostgreSQL through asyncpg (bench/pg_driver.py: its binary COPY took 86k
hit rows/s at 6 µs of client CPU each; psycopg 3's COPY 55k at 12 µs). Several nodes write one
database; each node's ingest commits its batches under one advisory lock, so ids are committed in
increasing order and a keyset page (`id < cursor`) can never skip a row committed later."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

import asyncpg

from ..evidence import GENESIS
from ..query import RECORD_FIELDS, HitFilter
from ..record import iso_utc, utc_text
from .contract import DuplicateHits, SchemaTooNew
from .layout import STORED, header_digest, set_key
from .postgres_schema import (HITS_FROM, POSTGRES as MIGRATIONS, RECORD_SQL, month_of, next_month, partition_name,
                              partition_sql)

DOMAIN_FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes")
MIGRATE_LOCK = 0x5E12ED01  # advisory lock ids: one migration at a time, one ingest commit at a time
log = logging.getLogger("seized.store")
INGEST_LOCK = 0x5E12ED02
EXPORT_CHUNK = 2_000
HIT_COLUMNS = ", ".join(f"{sql} AS {name}" for name, sql in RECORD_SQL.items())
EXPORT_COLUMNS = ", ".join(RECORD_SQL[name] for name in RECORD_FIELDS)  # received_at to the microsecond
# hit_rows' columns as ingest fills them (the id comes from the identity).
PHYSICAL = (
    "uid", "received_at", "node", "domain", "method", "path", "query", "client_ip", "client_inet", "client_ip_key",
    "client_port", "peer_same", "peer_ip", "peer_port", "server_ip", "server_port", "header_set", "body_size", "body_sha256",
    "status", "duration_ms", "error", "client_kind", "account", "device", "password_hmac", "prev_hash", "hash",
    "country", "city", "asn", "as_org")
GROUP_SQL = {
    "asn": "asn", "country": "country", "account": "account", "client_kind": "client_kind", "domain": "domain",
    "client_ip": "client_ip",
    "hour": "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\":00Z\"')",
    "day": "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


def moment(text: str) -> datetime:
    """The stored UTC text as a timestamptz value."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def physical(row: tuple, header_set: int) -> tuple:
    """A stored row (layout.STORED order) as a row of hit_rows (PHYSICAL order)."""
    (uid, received_at, node, _host, domain, _scheme, method, path, query, _http_version, client_ip, client_port,
     peer_ip, peer_port, server_ip, server_port, _headers, _user_agent, body_size, body_sha256, status, duration_ms, error,
     client_ip_key, client_kind, account, device, password_hmac, country, city, asn, as_org, prev_hash, digest) = row
    same = peer_ip == client_ip and peer_port == client_port
    return (
        unhex(uid), moment(received_at), node, domain, method, path, query, client_ip,
        client_ip if client_ip_key is not None else None, unhex(client_ip_key), client_port,
        same, None if same else peer_ip, None if same else peer_port, server_ip, server_port, header_set, body_size,
        unhex(body_sha256), status, float(duration_ms), error, client_kind, account, device, unhex(password_hmac),
        unhex(prev_hash), unhex(digest), country, city, asn, as_org)


# SQL: the row of hit_rows r is one verify accounts for (evidence.py): an id of 1 or more (seized
# never gives another), and a hash unless it is one of its node's hits stored before the chain
# (legacy_unhashed, filled by a copy of such an SQLite database). The subquery is for rows without one.
IN_CHAIN = ("r.id >= 1 AND (r.hash IS NOT NULL OR r.id <= "
            "COALESCE((SELECT l.last_id FROM legacy_unhashed l WHERE l.node = r.node), 0))")


class Where:
    """A HitFilter as SQL over hit_rows r with numbered parameters ($1, $2, ...)."""

    def __init__(self, where: HitFilter, first: int = 1):
        self.clauses: list[str] = []
        self.params: list = []
        self.first = first
        f = where
        if f.since is not None:
            self.add("r.received_at >= {}", aware(f.since))
        if f.until is not None:
            self.add("r.received_at < {}", aware(f.until))
        for column in ("domain", "method", "status", "node", "account", "client_kind", "asn"):
            value = getattr(f, column)
            if value is not None:
                self.add(f"r.{column} = {{}}", value)
        if f.ip is not None:  # the text tells 1.2.3.4 from ::ffff:1.2.3.4; inet finds it through its index
            self.add("r.client_inet = {}::inet AND r.client_ip = {}", f.ip, f.ip)
        if f.cidr is not None:
            self.add("r.client_inet <<= {}::inet", f.cidr)
        if f.port is not None:
            self.add("r.client_port = {}", f.port)
        if f.path_prefix is not None:
            self.add("starts_with(r.path, {})", f.path_prefix)
        if f.ua is not None:  # tested once per distinct header set, not once per hit
            self.add("r.header_set IN (SELECT id FROM header_sets WHERE strpos(lower(user_agent), lower({})) > 0)", f.ua)
        if f.country is not None:
            self.add("r.country = {}", f.country.upper())

    def add(self, clause: str, *values) -> None:
        numbers = [f"${self.first + len(self.params) + i}" for i in range(len(values))]
        self.clauses.append(clause.format(*numbers))
        self.params.extend(values)

    def next(self, count: int = 1) -> list[str]:
        """Placeholders for parameters the caller appends after these."""
        start = self.first + len(self.params)
        return [f"${start + i}" for i in range(count)]

    def in_chain(self) -> "Where":
        """Only rows verify accounts for (IN_CHAIN), as every reader of hits wants."""
        self.clauses.append(IN_CHAIN)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"


class PostgresStore:
    unavailable = (ConnectionError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                   asyncpg.CannotConnectNowError, asyncpg.ObjectNotInPrerequisiteStateError,
                   asyncpg.OperatorInterventionError)  # refused, cut, shutting down, not accepting connections

    def __init__(self, url: str, pool_size: int = 4):
        self.url = url
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None
        self.listener: asyncpg.Connection | None = None
        self.changed = asyncio.Event()
        self.header_ids: dict[bytes, int] = {}  # digest -> id; ids never change (header_sets is append-only)
        self.partitions: set[datetime] | None = None  # hit_rows' months that have a partition; None: read them

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size, command_timeout=300)
        try:
            await self._migrate()
            async with self.pool.acquire() as conn, conn.transaction():  # this month's and the next, ahead of need
                await conn.execute("SELECT pg_advisory_xact_lock($1)", INGEST_LOCK)
                this_month = month_of(datetime.now(timezone.utc))
                await self._ensure_partitions(conn, {this_month, next_month(this_month)})
        except BaseException:
            await self.close()
            raise

    async def domain_changes(self) -> asyncio.Event:
        """An event set whenever any node changes the domain list (LISTEN/NOTIFY), on a connection
        of its own; the caller clears it and asks again each round. A listening connection that was
        lost (PostgreSQL restarted) is opened anew, with the event set so the caller re-reads the list
        it may have missed; while it cannot be, this raises and the caller polls."""
        if self.listener is not None and not self.listener.is_closed():
            return self.changed
        self.listener = await asyncpg.connect(self.url)
        await self.listener.add_listener("seized_domains", lambda *_: self.changed.set())
        self.changed.set()
        return self.changed

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.terminate()
            self.listener = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)")
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            if current > len(MIGRATIONS):
                raise SchemaTooNew(f"the database is at schema version {current}, newer than this seized knows "
                                   f"({len(MIGRATIONS)}): upgrade seized before using it")
            for version in range(current + 1, len(MIGRATIONS) + 1):
                await conn.execute(MIGRATIONS[version - 1])
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, utc_text())

    async def schema_version(self) -> int:
        return await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def _all(self, sql: str, *params) -> list[dict]:
        return [dict(row) for row in await self.pool.fetch(sql, *params)]

    async def _one(self, sql: str, *params) -> dict | None:
        row = await self.pool.fetchrow(sql, *params)
        return dict(row) if row is not None else None

    async def _changed(self, sql: str, *params) -> bool:
        status = await self.pool.execute(sql, *params)
        return not status.endswith(" 0")

    # -- hits ---------------------------------------------------------------------------------

    def _forget_cached(self) -> None:
        """After a rolled-back write: the header sets and partitions it made were never stored."""
        self.header_ids.clear()
        self.partitions = None

    async def _ensure_partitions(self, conn, months: set[datetime]) -> None:
        """Partitions for these months (month_of), in the caller's transaction, under the ingest lock.
        Made a month ahead at open, so a write seldom makes one (that waits for readers of hit_rows)."""
        if self.partitions is None:
            names = await conn.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = 'hit_rows'::regclass")
            self.partitions = {datetime.strptime(r["relname"], "hit_rows_%Y_%m").replace(tzinfo=timezone.utc) for r in names}
        for start in sorted(months - self.partitions):
            await conn.execute(partition_sql(start))
            self.partitions.add(start)

    async def _write_hits(self, conn, rows: list[tuple], ids: list[int] | None = None) -> None:
        """Chained rows (layout.STORED order) into hit_rows, in the caller's transaction, after the
        ingest lock: ids are drawn and committed in order."""
        await conn.execute("SELECT pg_advisory_xact_lock($1)", INGEST_LOCK)
        if not rows:
            return
        # received_at is the stored UTC text ('2026-11-23T06:…Z'): its month is its first 7 characters
        months = {datetime(int(m[:4]), int(m[5:7]), 1, tzinfo=timezone.utc) for m in {row[1][:7] for row in rows}}
        await self._ensure_partitions(conn, months)
        keys = [set_key(row) for row in rows]
        digests = {key: header_digest(*key) for key in dict.fromkeys(keys)}
        missing = [digest for digest in digests.values() if digest not in self.header_ids]
        if missing:
            await conn.executemany(
                "INSERT INTO header_sets (digest, headers, user_agent, host, scheme, http_version) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
                [(digest, *key) for key, digest in digests.items() if digest in missing])
            for record in await conn.fetch("SELECT digest, id FROM header_sets WHERE digest = ANY($1)", missing):
                self.header_ids[bytes(record["digest"])] = record["id"]
        records = [physical(row, self.header_ids[digests[key]]) for row, key in zip(rows, keys)]
        columns = PHYSICAL
        if ids is not None:
            records, columns = [(hit_id, *record) for hit_id, record in zip(ids, records)], ("id", *PHYSICAL)
        try:
            await conn.copy_records_to_table("hit_rows", columns=columns, records=records)
        except asyncpg.UniqueViolationError as error:
            raise DuplicateHits(str(error)) from error

    async def insert_hits(self, rows: list[tuple]) -> int:
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await self._write_hits(conn, rows)
            except BaseException:
                self._forget_cached()
                raise
        return len(rows)

    async def ingest_batch(self, rows: list[tuple], progress: dict[str, tuple[int, int]], gaps: list[dict]) -> None:
        stamp = utc_text()
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await self._write_hits(conn, rows)
                    await conn.executemany(
                        'INSERT INTO journal_progress (segment, "offset", records, updated_at) VALUES ($1, $2, $3, $4) '
                        'ON CONFLICT (segment) DO UPDATE SET "offset" = excluded."offset", records = excluded.records, '
                        "updated_at = excluded.updated_at",
                        [(segment, offset, records, stamp) for segment, (offset, records) in progress.items()])
                    if gaps:
                        await conn.executemany(
                            'INSERT INTO journal_gaps (segment, "offset", length, reason, at) VALUES ($1, $2, $3, $4, $5)',
                            [(g["segment"], g["offset"], g["length"], g["reason"], stamp) for g in gaps])
            except BaseException:
                self._forget_cached()
                raise

    async def existing_uids(self, uids: list[str]) -> set[str]:
        rows = await self.pool.fetch("SELECT encode(uid, 'hex') AS uid FROM hit_rows WHERE uid = ANY($1)",
                                     [bytes.fromhex(uid) for uid in uids])
        return {row["uid"] for row in rows}

    async def journal_progress(self) -> dict[str, tuple[int, int]]:
        rows = await self._all('SELECT segment, "offset", records FROM journal_progress')
        return {row["segment"]: (row["offset"], row["records"]) for row in rows}

    async def forget_segment(self, segment: str) -> None:
        await self.pool.execute("DELETE FROM journal_progress WHERE segment = $1", segment)

    async def journal_gaps(self) -> list[dict]:
        return await self._all("SELECT * FROM journal_gaps ORDER BY id")

    def _select(self, columns: str = HIT_COLUMNS) -> str:
        return f"SELECT {columns} FROM {HITS_FROM}"

    async def latest_hits(self, limit: int) -> list[dict]:
        return await self.query_hits(HitFilter(), None, limit)

    async def query_hits(self, where: HitFilter, before_id: int | None, limit: int) -> list[dict]:
        """One page, newest first: hits older than `before_id`; rows outside the chain left out."""
        w = Where(where).in_chain()
        if before_id is not None:
            w.add("r.id < {}", before_id)
        limit_at, = w.next()
        return await self._all(f"{self._select()} WHERE {w.sql} ORDER BY r.id DESC LIMIT {limit_at}",
                               *w.params, limit)

    async def iter_hits(self, where: HitFilter, fmt: str = "ndjson", chunk: int = EXPORT_CHUNK):
        """All matching hits, oldest first, as tuples in RECORD_FIELDS order (received_at to the
        microsecond): one snapshot, read through a server-side cursor in one transaction. Rows
        outside the chain left out."""
        w = Where(where).in_chain()
        query = f"{self._select(EXPORT_COLUMNS)} WHERE {w.sql} ORDER BY r.id"
        async for batch in self._snapshot(query, w.params, chunk, tuple):
            yield batch

    async def _snapshot(self, query: str, params, chunk: int, shape):
        """A query's rows, `chunk` at a time as `shape` (tuple, dict), from one repeatable-read
        snapshot through a server-side cursor: constant memory, and rows committed meanwhile unseen."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            batch = []
            async for record in conn.cursor(query, *params, prefetch=chunk):
                batch.append(shape(record))
                if len(batch) >= chunk:
                    yield batch
                    batch = []
            if batch:
                yield batch

    async def iter_hits_by_time(self, where: HitFilter, chunk: int = 2000):
        """All matching hits in time order (received_at, then id), `chunk` at a time."""
        last = (datetime.min.replace(tzinfo=timezone.utc), 0)
        while True:
            w = Where(where).in_chain()
            w.add("(r.received_at, r.id) > ({}, {})", *last)
            limit_at, = w.next()
            rows = await self._all(f"{self._select(HIT_COLUMNS + ', r.received_at AS received_moment')} "
                                   f"WHERE {w.sql} ORDER BY r.received_at, r.id LIMIT {limit_at}",
                                   *w.params, chunk)
            if not rows:
                return
            last = (rows[-1].pop("received_moment"), rows[-1]["id"])
            for row in rows:
                row.pop("received_moment", None)
            yield rows

    async def get_hit(self, hit_id: int) -> dict | None:
        """The hit with this id; None for none, or for a row outside the chain (IN_CHAIN)."""
        return await self._one(f"{self._select()} WHERE r.id = $1 AND {IN_CHAIN}", hit_id)

    async def outside_chain(self, where: HitFilter) -> int:
        """How many rows matching `where` the readers leave out for an id below 1 (IN_CHAIN): through
        the primary key's index (or a filter's (column, id) one), cheap. Rows without a hash inside a
        chain are left out too but not counted here, which would take a scan (verify finds them)."""
        w = Where(where)
        w.add("r.id < 1")
        return await self.pool.fetchval(f"SELECT COUNT(*) FROM hit_rows r WHERE {w.sql}", *w.params)

    async def hit_stats(self, where: HitFilter, group: str, limit: int = 10_000) -> list[dict]:
        w = Where(where).in_chain()
        order = "grp" if group in ("hour", "day") else "hits DESC, grp"
        limit_at, = w.next()
        return await self._all(
            f"SELECT {GROUP_SQL[group]} AS grp, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hit_rows r WHERE {w.sql} GROUP BY grp ORDER BY {order} LIMIT {limit_at}", *w.params, limit)

    async def asn_plan(self, where: HitFilter) -> list[dict]:
        w = Where(where).in_chain()
        return await self._all(
            f"SELECT asn, MAX(as_org) AS as_org, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hit_rows r WHERE {w.sql} GROUP BY asn ORDER BY hits DESC, asn", *w.params)

    # -- the chains ---------------------------------------------------------------------------

    async def chain_head(self, node: str) -> tuple[str, int]:
        head = await self.pool.fetchval(
            "SELECT encode(hash, 'hex') FROM hit_rows WHERE node = $1 AND hash IS NOT NULL ORDER BY id DESC LIMIT 1", node)
        count = await self.pool.fetchval("SELECT COUNT(hash) FROM hit_rows WHERE node = $1", node)
        purges = await self.purges(node)
        purged = sum(p["chained"] for p in purges)
        if head is not None:
            return head, count + purged
        return (purges[-1]["head_at_cut"] if purges else GENESIS), purged

    async def chain_heads(self) -> list[dict]:
        return await self._all(
            "SELECT node, COUNT(hash) AS count, MAX(id) AS last_id, "
            "(SELECT encode(h.hash, 'hex') FROM hit_rows h WHERE h.node = r.node AND h.hash IS NOT NULL "
            "ORDER BY h.id DESC LIMIT 1) AS head FROM hit_rows r GROUP BY node ORDER BY node")

    async def iter_chain(self, node: str, chunk: int = 2000, after: int | None = None):
        """As SQLiteStore.iter_chain: every hit of the node, ids below 1 too; or those after id `after`."""
        while True:
            if after is None:
                rows = await self._all(f"{self._select()} WHERE r.node = $1 ORDER BY r.id LIMIT $2", node, chunk)
            else:
                rows = await self._all(f"{self._select()} WHERE r.node = $1 AND r.id > $2 ORDER BY r.id LIMIT $3", node, after, chunk)
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def nodes(self) -> list[str]:
        return [row["node"] for row in await self._all("SELECT DISTINCT node FROM hit_rows ORDER BY node")]

    async def last_id_of(self, node: str) -> int:
        return await self.pool.fetchval("SELECT COALESCE(MAX(id), 0) FROM hit_rows WHERE node = $1", node)

    async def add_checkpoint(self, *, node, at, count, last_id, head, public_key, signature, clock=None,
                             tsa_token=None) -> None:
        await self.pool.execute("INSERT INTO checkpoints (node, at, count, last_id, head, public_key, signature, clock, "
                                "tsa_token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", node, at, count, last_id,
                                head, public_key, signature, clock, tsa_token)

    async def checkpoints(self, node: str | None = None) -> list[dict]:
        if node:
            return await self._all("SELECT * FROM checkpoints WHERE node = $1 ORDER BY id", node)
        return await self._all("SELECT * FROM checkpoints ORDER BY id")

    async def purges(self, node: str | None = None) -> list[dict]:
        if node:
            return await self._all("SELECT * FROM purges WHERE node = $1 ORDER BY id", node)
        return await self._all("SELECT * FROM purges ORDER BY id")

    async def legacy_unhashed(self) -> dict[str, int]:
        return {row["node"]: row["last_id"] for row in await self._all("SELECT node, last_id FROM legacy_unhashed")}

    async def chain_position(self, node: str, hit_id: int) -> int:
        stored = await self.pool.fetchval("SELECT COUNT(hash) FROM hit_rows WHERE node = $1 AND id > 0 AND id <= $2",
                                          node, hit_id)
        return stored + sum(p["chained"] for p in await self.purges(node))

    async def chain_v1(self) -> dict[str, int]:
        return {row["node"]: row["last_id"] for row in await self._all("SELECT node, last_id FROM chain_v1")}

    async def purge_before(self, cutoff: str, signer=None) -> list[dict]:
        """Drop the partitions (whole months) of hits all received before `cutoff`, recording first
        each node's cut: the ids it loses, how many were chained, its chain's head there. A month is
        kept while dropping it would take from some node hits that are not a stretch from the start
        of its chain (a hit of that month stored after a later one: ingested late)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", INGEST_LOCK)  # the chains stand still meanwhile
            self.partitions = None
            await self._ensure_partitions(conn, set())
            months = sorted(start for start in self.partitions if next_month(start) <= moment(cutoff))
            while months:
                boundary = next_month(months[-1])
                stretches = await conn.fetch(
                    "SELECT node, MIN(id) AS first_id, MAX(id) AS last_id, COUNT(*) AS hits, COUNT(hash) AS chained, "
                    "(SELECT MIN(k.id) FROM hit_rows k WHERE k.node = r.node AND k.received_at >= $1) AS first_kept "
                    "FROM hit_rows r WHERE received_at < $1 GROUP BY node ORDER BY node", boundary)
                covering = {s["node"]: await conn.fetchval(
                    "SELECT MIN(id) FROM checkpoints WHERE node = $1 AND last_id >= $2", s["node"], s["last_id"])
                    for s in stretches}
                if not all(s["first_kept"] is None or s["last_id"] < s["first_kept"] for s in stretches):
                    log.warning("retention keeps the month from %s: it holds hits stored after later ones", months[-1])
                elif None in covering.values():
                    log.warning("retention keeps the month from %s: no checkpoint covers its last hits yet", months[-1])
                else:
                    break
                months.pop()
            if not months:
                return []
            records = []
            for stretch in stretches:
                node = stretch["node"]
                head = await conn.fetchval("SELECT encode(hash, 'hex') FROM hit_rows WHERE node = $1 AND received_at < $2 "
                                           "AND hash IS NOT NULL ORDER BY id DESC LIMIT 1", node, boundary)
                if head is None:
                    earlier = await conn.fetchval("SELECT head_at_cut FROM purges WHERE node = $1 ORDER BY id DESC LIMIT 1", node)
                    head = earlier or GENESIS
                record = {"node": node, "at": utc_text(), "cutoff": utc_text(boundary),
                          **{k: stretch[k] for k in ("first_id", "last_id", "hits", "chained")}, "head_at_cut": head,
                          "checkpoint_id": covering[node]}  # the first checkpoint whose chain passes through the cut
                record["public_key"], record["signature"] = signer(record) if signer else (None, None)
                await conn.execute(f"INSERT INTO purges ({', '.join(record)}) VALUES "
                                   f"({', '.join(f'${i + 1}' for i in range(len(record)))})", *record.values())
                records.append(record)
            for start in months:
                await conn.execute(f"DROP TABLE {partition_name(start)}")
            self.partitions = None
            return records

    # -- moving a deployment (dbcopy.py) --------------------------------------------------------

    async def dump_table(self, table: str, chunk: int = 5000):
        async for batch in self._snapshot(f'SELECT * FROM "{table}" ORDER BY 1', (), chunk, dict):
            yield batch

    async def load_table(self, table: str, rows: list[dict]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        async with self.pool.acquire() as conn, conn.transaction():
            # ids as they were (OVERRIDING: the identity would number them anew), then the identity after them
            await conn.executemany(
                f'INSERT INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) OVERRIDING SYSTEM VALUE '
                f'VALUES ({", ".join(f"${i + 1}" for i in range(len(columns)))})', [[row[c] for c in columns] for row in rows])
            await self._identity_after(conn, table)

    @staticmethod
    async def _identity_after(conn, table: str) -> None:
        """A table's identity numbers on after the ids copied into it (tables keyed by text have none)."""
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence(table_name, 'id') FROM information_schema.columns "
                                       "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id'", table)
        if sequence:
            await conn.execute(f'SELECT setval($1::regclass, (SELECT MAX(id) FROM "{table}"))', sequence)

    async def dump_hits(self, chunk: int = 5000):
        after = 0
        while rows := await self._all(f"{self._select()} WHERE r.id > $1 ORDER BY r.id LIMIT $2", after, chunk):
            yield rows
            after = rows[-1]["id"]

    async def load_hits(self, rows: list[dict]) -> None:
        """Hits with their ids, uids and hashes as they were (a copy, not an ingest)."""
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await self._write_hits(conn, [tuple(row[c] for c in STORED) for row in rows], ids=[row["id"] for row in rows])
                    await self._identity_after(conn, "hit_rows")
            except BaseException:
                self._forget_cached()
                raise

    async def count_rows(self, table: str) -> int:
        return await self.pool.fetchval(f'SELECT COUNT(*) FROM "{table}"')

    # -- node leases ----------------------------------------------------------------------------

    async def claim_node(self, node: str, holder: str, ttl_s: float) -> dict | None:
        """Take or renew the lease on `node`; the other holder's lease when that one is still live."""
        now = time.time_ns()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM node_leases WHERE node = $1 FOR UPDATE", node)
            if row is not None and row["holder"] != holder and row["expires_at"] > iso_utc(now):
                return dict(row)
            await conn.execute(
                "INSERT INTO node_leases AS l VALUES ($1, $2, $3, $4) ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, "
                "claimed_at = CASE WHEN l.holder = excluded.holder THEN l.claimed_at ELSE excluded.claimed_at END, "
                "expires_at = excluded.expires_at", node, holder, iso_utc(now), iso_utc(now + int(ttl_s * 1e9)))
        return None

    async def release_node(self, node: str, holder: str) -> None:
        await self.pool.execute("DELETE FROM node_leases WHERE node = $1 AND holder = $2", node, holder)

    # -- domains ------------------------------------------------------------------------------

    async def list_domains(self) -> list[dict]:
        return await self._all("SELECT * FROM domains ORDER BY name")

    async def add_domain(self, name: str, replace: bool = False, **fields) -> bool:
        async with self.pool.acquire() as conn:
            return await self._add_domain(conn, name, replace, fields)

    async def _add_domain(self, conn, name: str, replace: bool, fields: dict) -> bool:
        values = {k: fields.get(k) for k in DOMAIN_FIELDS}
        values["notes"] = values["notes"] or ""
        stamp = utc_text()
        conflict = ("DO UPDATE SET " + ", ".join(f"{k} = excluded.{k}" for k in DOMAIN_FIELDS)
                    + ", active = 1, updated_at = excluded.updated_at") if replace else "DO NOTHING"
        placeholders = ", ".join(f"${i}" for i in range(1, len(DOMAIN_FIELDS) + 4))
        status = await conn.execute(
            f"INSERT INTO domains (name, {', '.join(DOMAIN_FIELDS)}, created_at, updated_at) VALUES ({placeholders}) "
            f"ON CONFLICT (name) {conflict}", name, *values.values(), stamp, stamp)
        return not status.endswith(" 0")

    async def seed_domain(self, name: str, **fields) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute("INSERT INTO domain_seeds VALUES ($1, $2) ON CONFLICT DO NOTHING", name, utc_text())
            if status.endswith(" 0"):
                return False
            return await self._add_domain(conn, name, False, fields)

    async def get_domain(self, name: str) -> dict | None:
        return await self._one("SELECT * FROM domains WHERE name = $1", name)

    async def update_domain(self, name: str, **fields) -> bool:
        allowed = {k: v for k, v in fields.items() if k in (*DOMAIN_FIELDS, "active")}
        if not allowed:
            return await self.get_domain(name) is not None
        assignments = ", ".join(f"{k} = ${i}" for i, k in enumerate(allowed, start=1))
        n = len(allowed)
        return await self._changed(f"UPDATE domains SET {assignments}, updated_at = ${n + 1} WHERE name = ${n + 2}",
                                   *[int(v) if isinstance(v, bool) else v for v in allowed.values()], utc_text(), name)

    async def remove_domain(self, name: str) -> bool:
        return await self._changed("DELETE FROM domains WHERE name = $1", name)

    async def domains_version(self) -> tuple:
        row = await self.pool.fetchrow("SELECT COUNT(*), MAX(updated_at), string_agg(name, ',' ORDER BY name) FROM domains")
        return tuple(row)

    # -- tokens and the audit log -------------------------------------------------------------

    async def add_token(self, token_id: str, name: str, role: str, secret_sha256: str, expires_at: str | None) -> None:
        try:
            await self.pool.execute("INSERT INTO tokens (id, name, role, secret_sha256, created_at, expires_at) "
                                    "VALUES ($1, $2, $3, $4, $5, $6)", token_id, name, role, secret_sha256, utc_text(), expires_at)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise ValueError(str(error)) from error

    async def get_token(self, token_id: str) -> dict | None:
        return await self._one("SELECT * FROM tokens WHERE id = $1", token_id)

    async def list_tokens(self) -> list[dict]:
        return await self._all("SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM tokens ORDER BY created_at")

    async def revoke_token(self, name: str) -> bool:
        return await self._changed("UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL", utc_text(), name)

    async def touch_token(self, token_id: str) -> None:
        await self.pool.execute("UPDATE tokens SET last_used_at = $1 WHERE id = $2", utc_text(), token_id)

    async def has_active_token(self, role: str) -> bool:
        return bool(await self.pool.fetchval(
            "SELECT 1 FROM tokens WHERE role = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) LIMIT 1",
            role, utc_text()))

    async def add_audit(self, *, token_name, role, client_ip, method, endpoint, filters: str, rows, status) -> None:
        await self.pool.execute(
            "INSERT INTO audit (at, token_name, role, client_ip, method, endpoint, filters, rows, status) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            utc_text(), token_name, role, client_ip, method, endpoint, filters, rows, status)

    async def query_audit(self, *, since: str | None, until: str | None, token_name: str | None,
                          before_id: int | None, limit: int) -> list[dict]:
        clauses, params = [], []
        for clause, value in (("at >= {}", since), ("at < {}", until), ("token_name = {}", token_name), ("id < {}", before_id)):
            if value is not None:
                params.append(value)
                clauses.append(clause.format(f"${len(params)}"))
        where = " AND ".join(clauses) or "true"
        return await self._all(f"SELECT * FROM audit WHERE {where} ORDER BY id DESC LIMIT ${len(params) + 1}", *params, limit)

    # -- subjects -----------------------------------------------------------------------------

    async def import_subjects(self, case_ref: str, records: list[tuple[str, str]]) -> tuple[int, int]:
        async with self.pool.acquire() as conn, conn.transaction():
            before = {row["account"]: row["attributes"] for row in
                      await conn.fetch("SELECT account, attributes FROM subjects WHERE case_ref = $1 FOR UPDATE", case_ref)}
            stamp = utc_text()
            fresh = [(case_ref, account, attributes, stamp) for account, attributes in records if before.get(account) != attributes]
            await conn.executemany(
                "INSERT INTO subjects VALUES ($1, $2, $3, $4) ON CONFLICT (case_ref, account) "
                "DO UPDATE SET attributes = excluded.attributes, imported_at = excluded.imported_at", fresh)
        added = sum(1 for _, account, _, _ in fresh if account not in before)
        return added, len(fresh) - added

    async def subjects(self, case_ref: str | None = None) -> list[dict]:
        """The imported records (of one case, or all), by case and account. Their hits are matched
        in app/subjects.py (`match`), as the report matches them."""
        where, params = ("WHERE case_ref = $1", [case_ref]) if case_ref else ("", [])
        return await self._all(f"SELECT case_ref, account, attributes, imported_at FROM subjects {where} "
                               "ORDER BY case_ref, account", *params)
