"""The embedded store: one SQLite file in WAL mode, reached through aiosqlite's thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from ..query import GROUP_SQL, HitFilter
from ..evidence import CHAIN_COLUMNS, GENESIS
from ..record import COLUMNS, ip_key, utc_text
from .migrations import SQLITE as MIGRATIONS

DOMAIN_FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes")
DENSE_RANGE = 20_000  # matches beyond which an export under a range filter walks the table in id order
SMALL_RANGE = 5_000  # a range with fewer matches is simply sorted
RECENT_WINDOW = 50_000  # rows a wide range's page looks at first, newest down
STORED = (*COLUMNS, *CHAIN_COLUMNS)
INSERT_HIT = f"INSERT INTO hits ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})"


def now_iso() -> str:
    return utc_text()


class SQLiteStore:
    def __init__(self, path: Path, busy_timeout: float = 5.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = await aiosqlite.connect(self.path, timeout=self.busy_timeout)
        self.db.row_factory = aiosqlite.Row
        await self.db.create_function("ip_key", 1, ip_key, deterministic=True)
        await self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives power loss, not only a crash of this process.
        await self.db.execute("PRAGMA synchronous=FULL")
        await self._migrate()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def _migrate(self) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        await self.db.commit()
        for version, step in enumerate(MIGRATIONS, start=1):
            if await self.schema_version() >= version:
                continue
            try:
                await self.db.executescript(
                    f"BEGIN IMMEDIATE; {step}; INSERT INTO migrations VALUES ({version}, '{now_iso()}'); COMMIT;"
                )
            except sqlite3.OperationalError:
                await self.db.rollback()
                if await self.schema_version() < version:  # not another process racing us: a real failure
                    raise

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT COALESCE(MAX(version), 0) FROM migrations") as cursor:
            return (await cursor.fetchone())[0]

    # -- hits --------------------------------------------------------------------------------

    async def insert_hits(self, rows: list[tuple]) -> int:
        """Chained rows (COLUMNS + prev_hash, hash) in one transaction; all or none."""
        before = self.db.total_changes
        try:
            await self.db.executemany(INSERT_HIT, rows)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return self.db.total_changes - before

    async def existing_uids(self, uids: list[str]) -> set[str]:
        found = set()
        for start in range(0, len(uids), 500):
            part = uids[start:start + 500]
            rows = await self._all(f"SELECT uid FROM hits WHERE uid IN ({','.join('?' * len(part))})", part)
            found.update(row["uid"] for row in rows)
        return found

    async def chain_head(self, node: str) -> tuple[str, int]:
        """(head hash, length) of a node's chain, purged stretches counted; GENESIS and 0 for a new node."""
        rows = await self._all("SELECT hash FROM hits WHERE node = ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1", [node])
        count = (await self._all("SELECT COUNT(*) AS n FROM hits WHERE node = ? AND hash IS NOT NULL", [node]))[0]["n"]
        purges = await self.purges(node)
        purged = sum(p["chained"] for p in purges)
        if rows:
            return rows[0]["hash"], count + purged
        return (purges[-1]["head_at_cut"] if purges else GENESIS), purged

    async def purges(self, node: str | None = None) -> list[dict]:
        where, params = ("WHERE node = ?", [node]) if node else ("", [])
        return await self._all(f"SELECT * FROM purges {where} ORDER BY id", params)

    async def purge(self, node: str, cutoff: str) -> dict | None:
        """Delete the node's oldest hits received before `cutoff`, as one stretch from the start of
        its chain (up to its first hit that is not older), and record the cut. None if nothing to do."""
        first_new = (await self._all("SELECT MIN(id) AS id FROM hits WHERE node = ? AND received_at >= ?", [node, cutoff]))[0]["id"]
        bound = first_new if first_new is not None else (await self.last_id_of(node)) + 1
        stretch = (await self._all(
            "SELECT MIN(id) AS first_id, MAX(id) AS last_id, COUNT(*) AS hits, COUNT(hash) AS chained FROM hits "
            "WHERE node = ? AND id < ?", [node, bound]))[0]
        if not stretch["hits"]:
            return None
        last = await self._all("SELECT hash FROM hits WHERE node = ? AND id < ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                               [node, bound])
        earlier = await self.purges(node)
        head_at_cut = last[0]["hash"] if last else (earlier[-1]["head_at_cut"] if earlier else GENESIS)
        record = {"node": node, "at": now_iso(), "cutoff": cutoff, "first_id": stretch["first_id"],
                  "last_id": stretch["last_id"], "hits": stretch["hits"], "chained": stretch["chained"], "head_at_cut": head_at_cut}
        try:
            await self.db.execute("DELETE FROM hits WHERE node = ? AND id < ?", [node, bound])
            await self.db.execute(f"INSERT INTO purges ({', '.join(record)}) VALUES ({', '.join('?' * len(record))})",
                                  list(record.values()))
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return record

    async def chain_heads(self) -> list[dict]:
        return await self._all(
            "SELECT node, COUNT(hash) AS count, MAX(id) AS last_id, "
            "(SELECT h.hash FROM hits h WHERE h.node = hits.node AND h.hash IS NOT NULL ORDER BY h.id DESC LIMIT 1) AS head "
            "FROM hits GROUP BY node ORDER BY node", [])

    async def iter_chain(self, node: str, chunk: int = 2000):
        """A node's hits in chain order (id order), with their hashes, `chunk` at a time."""
        after = 0
        while True:
            rows = await self._all("SELECT * FROM hits WHERE node = ? AND id > ? ORDER BY id LIMIT ?", [node, after, chunk])
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def nodes(self) -> list[str]:
        return [row["node"] for row in await self._all("SELECT DISTINCT node FROM hits ORDER BY node", [])]

    async def add_checkpoint(self, *, node, at, count, last_id, head, public_key, signature) -> None:
        await self.db.execute("INSERT INTO checkpoints (node, at, count, last_id, head, public_key, signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (node, at, count, last_id, head, public_key, signature))
        await self.db.commit()

    async def checkpoints(self, node: str | None = None) -> list[dict]:
        where, params = ("WHERE node = ?", [node]) if node else ("", [])
        return await self._all(f"SELECT * FROM checkpoints {where} ORDER BY id", params)

    async def last_id_of(self, node: str) -> int:
        rows = await self._all("SELECT MAX(id) AS top FROM hits WHERE node = ?", [node])
        return rows[0]["top"] or 0

    async def latest_hits(self, limit: int) -> list[dict]:
        return await self.query_hits(HitFilter(), None, limit)

    async def query_hits(self, where: HitFilter, before_id: int | None, limit: int) -> list[dict]:
        """One page, newest first: hits older than `before_id`. New hits get higher ids, so paging
        on while they arrive never repeats or skips one."""
        sql, params = where.where()
        if before_id is not None:
            sql, params = f"({sql}) AND id < ?", [*params, before_id]
        if not where.has_range:  # equality filters: their (column, id) indexes are already in id order
            return await self._all(f"SELECT * FROM hits WHERE {sql} ORDER BY id DESC LIMIT ?", [*params, limit])
        ids = await self._range_page_ids(where, sql, params, before_id, limit)
        if not ids:
            return []
        return await self._all(f"SELECT * FROM hits WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id DESC", ids)

    async def _range_page_ids(self, where: HitFilter, sql: str, params: list, before_id: int | None, limit: int) -> list[int]:
        """Ids of one page under a range filter (CIDR, time). SQLite reads such a range through its
        index and must sort every match by id: cheap for a few thousand ids, slow for a million. So
        a wide range first tries the newest RECENT_WINDOW rows in id order, where a busy range
        fills a page at once; only if that falls short are the range's ids sorted (ids only, from
        the index, not whole rows)."""
        # Named, so a page cursor (`id < ?`) cannot tempt the planner into walking the whole table.
        by_range = f"hits INDEXED BY {'hits_client_ip_key' if where.cidr is not None else 'hits_received_at'}"
        probe = await self._all(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {by_range} WHERE {sql} LIMIT {SMALL_RANGE})", params)
        if probe[0]["n"] >= SMALL_RANGE:
            top = before_id if before_id is not None else (await self._all("SELECT COALESCE(MAX(id), 0) + 1 AS top FROM hits", []))[0]["top"]
            recent = await self._all(f"SELECT id FROM hits NOT INDEXED WHERE ({sql}) AND id < ? AND id >= ? ORDER BY id DESC LIMIT ?",
                                     [*params, top, top - RECENT_WINDOW, limit])
            if len(recent) == limit:
                return [row["id"] for row in recent]
        rows = await self._all(f"SELECT id FROM {by_range} WHERE {sql} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [row["id"] for row in rows]

    async def iter_hits(self, where: HitFilter, chunk: int = 1000):
        """All matching hits, oldest first, `chunk` rows at a time; a snapshot as of the call."""
        sql, params = where.where()
        table = await self._table_for(where, sql, params)
        last_id = (await self._all("SELECT COALESCE(MAX(id), 0) AS top FROM hits", []))[0]["top"]
        after = 0
        while True:
            rows = await self._all(f"SELECT * FROM {table} WHERE ({sql}) AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                                   [*params, after, last_id, chunk])
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def _table_for(self, where: HitFilter, sql: str, params) -> str:
        """SQLite reads a range filter (CIDR, time) through its index, then sorts every match by id
        for the page: fine for a few thousand, seconds for a million. When the range holds many
        hits, walking the table by id and testing each row finds a page far sooner."""
        if not where.has_range:
            return "hits"
        probe = await self._all(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM hits WHERE {sql} LIMIT {DENSE_RANGE + 1})", params)
        return "hits NOT INDEXED" if probe[0]["n"] > DENSE_RANGE else "hits"

    async def iter_hits_by_time(self, where: HitFilter, chunk: int = 2000):
        """All matching hits in time order (received_at, then id), `chunk` at a time."""
        sql, params = where.where()
        last = ("", 0)
        while True:
            rows = await self._all(f"SELECT * FROM hits WHERE ({sql}) AND (received_at, id) > (?, ?) "
                                   f"ORDER BY received_at, id LIMIT ?", [*params, *last, chunk])
            if not rows:
                return
            yield rows
            last = (rows[-1]["received_at"], rows[-1]["id"])

    async def asn_plan(self, where: HitFilter) -> list[dict]:
        """Per autonomous system (ISP): hits and distinct client IPs, busiest first."""
        sql, params = where.where()
        return await self._all(
            f"SELECT asn, MAX(as_org) AS as_org, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hits WHERE {sql} GROUP BY asn ORDER BY hits DESC, asn", params)

    async def get_hit(self, hit_id: int) -> dict | None:
        rows = await self._all("SELECT * FROM hits WHERE id = ?", [hit_id])
        return rows[0] if rows else None

    async def hit_stats(self, where: HitFilter, group: str, limit: int = 10_000) -> list[dict]:
        sql, params = where.where()
        expression = GROUP_SQL[group]
        order = "grp" if group in ("hour", "day") else "hits DESC, grp"
        return await self._all(
            f"SELECT {expression} AS grp, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hits WHERE {sql} GROUP BY grp ORDER BY {order} LIMIT ?", [*params, limit])

    async def _all(self, sql: str, params) -> list[dict]:
        async with self.db.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def ping(self) -> None:
        await self._all("SELECT 1", [])

    # -- domains -----------------------------------------------------------------------------

    async def list_domains(self) -> list[dict]:
        async with self.db.execute("SELECT * FROM domains ORDER BY name") as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def add_domain(self, name: str, replace: bool = False, **fields) -> bool:
        """Insert a domain; with `replace`, overwrite its settings. False if it existed and was kept."""
        values = {k: fields.get(k) for k in DOMAIN_FIELDS}
        values["notes"] = values["notes"] or ""
        stamp = now_iso()
        conflict = (
            "DO UPDATE SET " + ", ".join(f"{k}=excluded.{k}" for k in DOMAIN_FIELDS) + ", active=1, updated_at=excluded.updated_at"
            if replace
            else "DO NOTHING"
        )
        cursor = await self.db.execute(
            f"INSERT INTO domains (name, {', '.join(DOMAIN_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(DOMAIN_FIELDS))}, ?, ?) ON CONFLICT(name) {conflict}",
            (name, *values.values(), stamp, stamp),
        )
        await self.db.commit()
        return cursor.rowcount > 0

    async def seed_domain(self, name: str, **fields) -> bool:
        """Add a domain from the config file, once per name ever: True if it was added now."""
        cursor = await self.db.execute("INSERT OR IGNORE INTO domain_seeds VALUES (?, ?)", (name, now_iso()))
        if cursor.rowcount == 0:
            await self.db.commit()
            return False
        return await self.add_domain(name, **fields)  # commits both

    async def get_domain(self, name: str) -> dict | None:
        rows = await self._all("SELECT * FROM domains WHERE name = ?", [name])
        return rows[0] if rows else None

    async def update_domain(self, name: str, **fields) -> bool:
        """Change only the given fields (None clears a notice field back to the [notice] default)."""
        allowed = {k: v for k, v in fields.items() if k in (*DOMAIN_FIELDS, "active")}
        if not allowed:
            return await self.get_domain(name) is not None
        assignments = ", ".join(f"{k} = ?" for k in allowed)
        cursor = await self.db.execute(f"UPDATE domains SET {assignments}, updated_at = ? WHERE name = ?",
                                       [*allowed.values(), now_iso(), name])
        await self.db.commit()
        return cursor.rowcount > 0

    async def remove_domain(self, name: str) -> bool:
        cursor = await self.db.execute("DELETE FROM domains WHERE name = ?", (name,))
        await self.db.commit()
        return cursor.rowcount > 0

    async def domains_version(self) -> tuple:
        """Changes whenever the domain list changes; cheap enough to poll."""
        async with self.db.execute("SELECT COUNT(*), MAX(updated_at), group_concat(name) FROM domains") as cursor:
            return tuple(await cursor.fetchone())

    # -- tokens ------------------------------------------------------------------------------

    async def add_token(self, token_id: str, name: str, role: str, secret_sha256: str, expires_at: str | None) -> None:
        await self.db.execute("INSERT INTO tokens (id, name, role, secret_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                              (token_id, name, role, secret_sha256, now_iso(), expires_at))
        await self.db.commit()

    async def get_token(self, token_id: str) -> dict | None:
        rows = await self._all("SELECT * FROM tokens WHERE id = ?", [token_id])
        return rows[0] if rows else None

    async def list_tokens(self) -> list[dict]:
        return await self._all("SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM tokens ORDER BY created_at", [])

    async def revoke_token(self, name: str) -> bool:
        cursor = await self.db.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now_iso(), name))
        await self.db.commit()
        return cursor.rowcount > 0

    async def touch_token(self, token_id: str) -> None:
        await self.db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now_iso(), token_id))
        await self.db.commit()

    async def has_active_token(self, role: str) -> bool:
        rows = await self._all("SELECT 1 FROM tokens WHERE role = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                               [role, now_iso()])
        return bool(rows)

    # -- audit -------------------------------------------------------------------------------

    async def add_audit(self, *, token_name, role, client_ip, method, endpoint, filters: str, rows, status) -> None:
        await self.db.execute(
            "INSERT INTO audit (at, token_name, role, client_ip, method, endpoint, filters, rows, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now_iso(), token_name, role, client_ip, method, endpoint, filters, rows, status))
        await self.db.commit()

    async def query_audit(self, *, since: str | None, until: str | None, token_name: str | None,
                          before_id: int | None, limit: int) -> list[dict]:
        clauses, params = [], []
        for clause, value in (("at >= ?", since), ("at < ?", until), ("token_name = ?", token_name), ("id < ?", before_id)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = " AND ".join(clauses) or "1"
        return await self._all(f"SELECT * FROM audit WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit])

    # -- subjects (seized subscriber records) ------------------------------------------------

    async def import_subjects(self, case_ref: str, records: list[tuple[str, str]]) -> tuple[int, int]:
        """(account, attributes JSON) pairs for a case; re-importing the same file changes nothing.
        Returns (added, changed)."""
        before = {row["account"]: row["attributes"] for row in
                  await self._all("SELECT account, attributes FROM subjects WHERE case_ref = ?", [case_ref])}
        stamp = now_iso()
        fresh = [(case_ref, account, attributes, stamp) for account, attributes in records if before.get(account) != attributes]
        await self.db.executemany(
            "INSERT INTO subjects VALUES (?, ?, ?, ?) ON CONFLICT(case_ref, account) "
            "DO UPDATE SET attributes = excluded.attributes, imported_at = excluded.imported_at", fresh)
        await self.db.commit()
        added = sum(1 for _, account, _, _ in fresh if account not in before)
        return added, len(fresh) - added

    async def subjects(self, case_ref: str | None = None) -> list[dict]:
        where, params = ("WHERE s.case_ref = ?", [case_ref]) if case_ref else ("", [])
        return await self._all(
            "SELECT s.case_ref, s.account, s.attributes, s.imported_at, COUNT(h.id) AS hits, "
            "MIN(h.received_at) AS first_seen, MAX(h.received_at) AS last_seen "
            f"FROM subjects s LEFT JOIN hits h ON h.account = s.account {where} "
            "GROUP BY s.case_ref, s.account ORDER BY s.case_ref, s.account", params)

    async def account_summary(self, account: str, tuple_limit: int) -> dict:
        totals = (await self._all("SELECT COUNT(*) AS hits, MIN(received_at) AS first_seen, MAX(received_at) AS last_seen, "
                                  "COUNT(DISTINCT client_ip) AS distinct_ips FROM hits WHERE account = ?", [account]))[0]
        tuples = await self._all("SELECT DISTINCT client_ip, client_port, received_at FROM hits WHERE account = ? "
                                 "ORDER BY received_at LIMIT ?", [account, tuple_limit])
        isps = await self._all("SELECT asn, MAX(as_org) AS as_org, COUNT(*) AS hits FROM hits WHERE account = ? "
                               "GROUP BY asn ORDER BY hits DESC", [account])
        return {**totals, "tuples": tuples, "isps": isps}

    async def unmatched_accounts(self, case_ref: str) -> list[dict]:
        """Accounts seen in hits that no imported record of the case names."""
        return await self._all(
            "SELECT account, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips, MIN(received_at) AS first_seen, "
            "MAX(received_at) AS last_seen FROM hits WHERE account IS NOT NULL AND account NOT IN "
            "(SELECT account FROM subjects WHERE case_ref = ?) GROUP BY account ORDER BY hits DESC", [case_ref])

    # -- the journal's ingest (ingest.py) -----------------------------------------------------

    async def journal_progress(self) -> dict[str, tuple[int, int]]:
        """segment name -> (bytes read, records read), as committed with the rows they made."""
        rows = await self._all("SELECT segment, offset, records FROM journal_progress", [])
        return {row["segment"]: (row["offset"], row["records"]) for row in rows}

    async def ingest_batch(self, rows: list[tuple], progress: dict[str, tuple[int, int]], gaps: list[dict]) -> None:
        """Chained rows, how far each segment has been read and the gaps found, in one transaction:
        after a crash, ingest resumes exactly where the last commit left off."""
        stamp = now_iso()
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            if rows:
                await self.db.executemany(INSERT_HIT, rows)
            await self.db.executemany(
                "INSERT INTO journal_progress (segment, offset, records, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(segment) DO UPDATE SET offset=excluded.offset, records=excluded.records, updated_at=excluded.updated_at",
                [(segment, offset, records, stamp) for segment, (offset, records) in progress.items()])
            if gaps:
                await self.db.executemany(
                    "INSERT INTO journal_gaps (segment, offset, length, reason, at) VALUES (?, ?, ?, ?, ?)",
                    [(g["segment"], g["offset"], g["length"], g["reason"], stamp) for g in gaps])
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise

    async def forget_segment(self, segment: str) -> None:
        """A journal segment fully ingested and deleted: its progress row goes too."""
        await self.db.execute("DELETE FROM journal_progress WHERE segment = ?", [segment])
        await self.db.commit()

    async def journal_gaps(self) -> list[dict]:
        return await self._all("SELECT * FROM journal_gaps ORDER BY id", [])
