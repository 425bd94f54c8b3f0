"""The embedded store: one SQLite file in WAL mode, reached through aiosqlite's thread."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import sqlite3
import time
from functools import lru_cache
from pathlib import Path

import aiosqlite

from ..evidence import GENESIS
from ..query import RECORD_FIELDS, HitFilter, csv_field
from ..record import ip_key, iso_utc, utc_text
from .contract import DuplicateHits, SchemaTooNew
from .layout import STORED, HeaderSets, received_us, uid_forms, write_rows
from .migrations import HITS_FROM, HITS_VIEW_COLUMNS, SQLITE as MIGRATIONS

# Python's sqlite3 binds int, float and str directly but looks every None and bytes value up in its
# adapter registry, then through attribute lookups: a third of the binding time of a 29-column
# hit row. Registered identity adapters are found at the first lookup.
sqlite3.register_adapter(type(None), lambda value: value)
sqlite3.register_adapter(bytes, lambda value: value)

DOMAIN_FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes")
DENSE_RANGE = 20_000  # matches beyond which an export under a range filter walks the table in id order
SMALL_RANGE = 5_000  # a range with fewer matches is simply sorted
RECENT_WINDOW = 50_000  # rows a wide range's page looks at first, newest down
EXPORT_CHUNK = 2_000  # rows per read: two in flight (one formatted, one read ahead) keep memory flat
# Through the view `hits` (its INSTEAD OF trigger): compatible, slower, and leaves hex as text. The
# store itself writes hit_rows directly (insert_hits).
INSERT_HIT = f"INSERT INTO hits ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})"
# The record's columns read from hit_rows r (and header_sets s): what the view gives, but with the
# WHERE clause on hit_rows' own columns, so its indexes serve the filters.
HIT_COLUMNS = ", ".join(f"{sql} AS {name}" for name, sql in HITS_VIEW_COLUMNS.items())
EXPORT_COLUMNS = ", ".join(HITS_VIEW_COLUMNS[name] for name in RECORD_FIELDS)


GROUP_SQL = {
    "asn": "asn",
    "country": "country",
    "account": "account",
    "client_kind": "client_kind",
    "domain": "domain",
    # over hit_rows (layout.py): received_us is microseconds, or a non-canonical stamp as text
    "hour": "CASE WHEN typeof(received_us) = 'integer' THEN strftime('%Y-%m-%dT%H:00Z', received_us / 1000000, 'unixepoch') "
            "ELSE substr(received_us, 1, 13) || ':00Z' END",
    "day": "CASE WHEN typeof(received_us) = 'integer' THEN strftime('%Y-%m-%d', received_us / 1000000, 'unixepoch') "
           "ELSE substr(received_us, 1, 10) END",
    "client_ip": "client_ip",
}

def sqlite_where(f: HitFilter, text_keys: bool = False) -> tuple[str, list]:
    """SQL over the columns of hit_rows (store/layout.py) and its parameters. `text_keys`: some
    rows hold client_ip_key as hex text (inserted through the view), so match that form too."""
    clauses, params = [], []

    def add(clause: str, *values) -> None:
        clauses.append(clause)
        params.extend(values)

    if f.since is not None:
        add("received_us >= ?", received_us(utc_text(f.since)))
    if f.until is not None:
        add("received_us < ?", received_us(utc_text(f.until)))
    if f.domain is not None:
        add("domain = ?", f.domain)
    if f.ip is not None:  # the key is indexed; the text tells 1.2.3.4 from ::ffff:1.2.3.4
        key = ip_key(f.ip)
        if text_keys:
            add("client_ip_key IN (?, ?) AND client_ip = ?", bytes.fromhex(key), key, f.ip)
        else:
            add("client_ip_key = ? AND client_ip = ?", bytes.fromhex(key), f.ip)
    if f.cidr is not None:
        network = ipaddress.ip_network(f.cidr)
        low, high = ip_key(str(network[0])), ip_key(str(network[-1]))
        if text_keys:
            add("(client_ip_key BETWEEN ? AND ? OR client_ip_key BETWEEN ? AND ?)",
                bytes.fromhex(low), bytes.fromhex(high), low, high)
        else:
            add("client_ip_key BETWEEN ? AND ?", bytes.fromhex(low), bytes.fromhex(high))
    if f.port is not None:
        add("client_port = ?", f.port)
    if f.method is not None:
        add("method = ?", f.method)
    if f.path_prefix is not None:
        add("substr(path, 1, ?) = ?", len(f.path_prefix), f.path_prefix)
    if f.ua is not None:  # tested once per distinct header set, not once per hit
        add("header_set IN (SELECT id FROM header_sets WHERE instr(lower(user_agent), lower(?)) > 0)", f.ua)
    for column in ("status", "node", "account", "client_kind", "asn"):
        if getattr(f, column) is not None:
            add(f"{column} = ?", getattr(f, column))
    if f.country is not None:
        add("country = ?", f.country.upper())
    return " AND ".join(clauses) or "1", params


def sqlite_in_chain(table: str = "r") -> str:
    """SQL: the row of hit_rows named `table` (its alias, or `hit_rows` itself) is one verify
    accounts for (evidence.py): an id of 1 or more (seized never gives another), and a hash unless it
    is one of its node's hits stored before the chain (legacy_unhashed). Always qualified: in the
    subquery a bare `node` would be legacy_unhashed's own. The subquery runs only for a row without
    a hash. The id is tested per row (unary +), never a range of the rowid to read by: SQLite would
    take it over a time or network index (stats scanning the whole table), or over an export's own
    `id > ?` (re-reading the table from its start for every chunk)."""
    return (f"+{table}.id >= 1 AND ({table}.hash IS NOT NULL OR {table}.id <= "
            f"COALESCE((SELECT l.last_id FROM legacy_unhashed l WHERE l.node = {table}.node), 0))")


IN_CHAIN = sqlite_in_chain("r")


@lru_cache(maxsize=4096)  # a box sends the same headers again and again
def csv_json(text):
    """Stored JSON as exports have always written it: json.dumps' default separators, quoted."""
    value = json.loads(text) if isinstance(text, str) else None
    return "" if value is None else csv_field(json.dumps(value, ensure_ascii=False))


# Text a spreadsheet would evaluate (query.FORMULA_START: =, +, -, @, tab, CR), as SQL: the class
# GLOB tests a first character against ('-' last in a class is itself).
_FORMULA_CLASS = "'[=+@' || char(9, 13) || '-]'"


def _csv_sql(value: str) -> str:
    """SQL: a value as its CSV field. Text is quoted here when it holds a comma, quote, CR or LF, and
    neutralised as query.csv_field does (a single quote before it, quoted) when it begins as a formula;
    anything that is neither text, integer nor null goes to csv_field, so it reads as it always did."""
    return (f"CASE typeof({value}) WHEN 'null' THEN '' WHEN 'integer' THEN {value} "
            f"WHEN 'text' THEN CASE WHEN substr({value}, 1, 1) GLOB {_FORMULA_CLASS} "
            f"THEN '\"''' || replace({value}, '\"', '\"\"') || '\"' "
            f"WHEN instr({value}, ',') OR instr({value}, '\"') OR instr({value}, char(10)) "
            f"OR instr({value}, char(13)) "
            f"THEN '\"' || replace({value}, '\"', '\"\"') || '\"' ELSE {value} END ELSE csv_field({value}) END")


def _csv_column(name: str) -> str:
    if name == "received_at":  # as stored, to the microsecond
        return f"CASE WHEN typeof(r.received_us) = 'integer' THEN {HITS_VIEW_COLUMNS[name]} ELSE {_csv_sql('r.received_us')} END"
    if name in ("headers", "device"):  # (a device is mostly null: no call then)
        return f"CASE WHEN {HITS_VIEW_COLUMNS[name]} IS NULL THEN '' ELSE csv_json({HITS_VIEW_COLUMNS[name]}) END"
    if name == "duration_ms":  # integer microseconds written as Python writes the float (1.5, 2.0, 0.015)
        return ("CASE WHEN typeof(r.duration_us) = 'integer' AND r.duration_us BETWEEN 0 AND 999999999999 "
                "THEN (r.duration_us / 1000) || '.' || COALESCE(NULLIF(rtrim(printf('%03d', r.duration_us % 1000), '0'), ''), '0') "
                f"ELSE csv_field({HITS_VIEW_COLUMNS[name]}) END")
    if name in ("peer_ip", "peer_port"):
        column = name.replace("peer", "client")
        return f"CASE WHEN typeof(r.{name}) = 'blob' THEN {_csv_sql(f'r.{column}')} ELSE {_csv_sql(f'r.{name}')} END"
    if name in ("uid", "body_sha256", "password_hmac", "prev_hash", "hash"):
        return f"CASE WHEN typeof(r.{name}) = 'blob' THEN lower(hex(r.{name})) ELSE {_csv_sql(f'r.{name}')} END"
    return _csv_sql(HITS_VIEW_COLUMNS[name])


_PRINTF = f"printf('{','.join(['%s'] * len(RECORD_FIELDS))}', "
_HEX = ("uid", "body_sha256", "password_hmac", "prev_hash", "hash")
_INTEGERS = ("client_port", "server_port", "body_size", "status", "asn")
_TEXTS = ("node", "host", "domain", "scheme", "method", "path", "query", "http_version", "client_ip", "server_ip", "error",
          "client_kind", "account", "country", "city", "as_org")


def _plain_column(name: str) -> str:
    """SQL: the field as is, for a row known to need no quoting (see EXPORT_CSV_LINE)."""
    if name in _HEX:
        return f"CASE WHEN typeof(r.{name}) = 'blob' THEN lower(hex(r.{name})) ELSE r.{name} END"
    if name in ("received_at", "headers", "device", "duration_ms", "user_agent"):
        return _csv_column(name)
    return HITS_VIEW_COLUMNS[name]


# A row whose text fields hold no comma, quote, CR or LF, none beginning as a formula, and whose
# number fields are integers (nearly every row) needs no per-field quoting: two GLOBs per text field
# (a NULL one matches neither; cheaper than one GLOB over the fields joined), then the fields as they are.
_PLAIN_FIELDS = ([HITS_VIEW_COLUMNS[name] for name in _TEXTS]
                 + [f"CASE WHEN typeof(r.{name}) = 'blob' THEN NULL ELSE r.{name} END" for name in (*_HEX, "peer_ip")]
                 + ["CASE WHEN typeof(r.received_us) = 'integer' THEN NULL ELSE r.received_us END"])
_QUOTED = "'*[\",' || char(10, 13) || ']*'"
_PLAIN = " AND ".join(
    ["(" + " OR ".join(f"{f} GLOB {_QUOTED} OR {f} GLOB {_FORMULA_CLASS} || '*'" for f in _PLAIN_FIELDS) + ") IS NOT 1"]
    + [f"(r.{name} IS NULL OR typeof(r.{name}) = 'integer')" for name in _INTEGERS]
    + ["(typeof(r.peer_port) IN ('null', 'integer', 'blob'))"])
# One export row as its CSV line, built by SQLite: the csv module, field by field, was most of an
# export's time. tests/test_storage.py checks the lines against the csv module's.
EXPORT_CSV_LINE = (f"CASE WHEN {_PLAIN} THEN {_PRINTF}{', '.join(_plain_column(n) for n in RECORD_FIELDS)}) "
                   f"ELSE {_PRINTF}{', '.join(_csv_column(n) for n in RECORD_FIELDS)}) END")


def hit_select(table: str = "hit_rows r", columns: str = HIT_COLUMNS) -> str:
    return f"SELECT {columns} FROM {HITS_FROM.replace('hit_rows r', table)}"


def now_iso() -> str:
    return utc_text()


def _undone_on_error(write):
    """A write that fails (locked past the busy timeout, a full disk...) rolls its transaction back.
    Left open, the next read would pin its snapshot: stale reads (domain changes never seen), a WAL
    that only grows, and every later write refused at once (tests/test_outside_lock.py)."""
    @functools.wraps(write)
    async def guarded(self, *args, **kwargs):
        try:
            return await write(self, *args, **kwargs)
        except BaseException:
            if self.db is not None and self.db.in_transaction:
                await self.db.rollback()
            raise
    return guarded


class SQLiteStore:
    unavailable = (sqlite3.OperationalError,)  # locked past the busy timeout, unreadable, disk I/O

    def __init__(self, path: Path, busy_timeout: float = 5.0, cache_mib: int | None = None):
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        self.busy_timeout = busy_timeout
        self.cache_mib = cache_mib
        self.db: aiosqlite.Connection | None = None
        self.header_sets = HeaderSets()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = await aiosqlite.connect(self.path, timeout=self.busy_timeout)
        self.db.row_factory = aiosqlite.Row
        await self.db.create_function("ip_key", 1, ip_key, deterministic=True)
        await self.db.create_function("csv_field", 1, csv_field, deterministic=True)
        await self.db.create_function("csv_json", 1, csv_json, deterministic=True)
        await self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives power loss, not only a crash of this process.
        await self.db.execute("PRAGMA synchronous=FULL")
        if self.cache_mib:
            await self.db.execute(f"PRAGMA cache_size=-{int(self.cache_mib) * 1024}")
        await self._migrate()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def _migrate(self, patience: float = 600) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        await self.db.commit()
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise SchemaTooNew(f"the database is at schema version {current}, newer than this seized knows "
                               f"({len(MIGRATIONS)}): upgrade seized before using it")
        deadline = time.monotonic() + patience
        for version, step in enumerate(MIGRATIONS, start=1):
            while await self.schema_version() < version:
                try:
                    if callable(step):  # a step with Python in it (copying rows): one transaction
                        await self.db.execute("BEGIN IMMEDIATE")
                        try:
                            if await self.schema_version() < version:
                                await step(self.db)
                                await self.db.execute("INSERT INTO migrations VALUES (?, ?)", (version, now_iso()))
                            await self.db.commit()
                        except BaseException:
                            await self.db.rollback()
                            raise
                    else:
                        await self.db.executescript(
                            f"BEGIN IMMEDIATE; {step}; INSERT INTO migrations VALUES ({version}, '{now_iso()}'); COMMIT;"
                        )
                except sqlite3.OperationalError as error:
                    await self.db.rollback()
                    if await self.schema_version() >= version:
                        break  # another process applied it meanwhile
                    # Another process holds the lock, maybe migrating a big table: wait for it.
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT COALESCE(MAX(version), 0) FROM migrations") as cursor:
            return (await cursor.fetchone())[0]

    # -- hits --------------------------------------------------------------------------------
    # Stored in hit_rows and header_sets, read as the record through the view `hits` (layout.py).
    # Queries filter on hit_rows' columns (HitFilter.where) and read the record's columns from it.

    @_undone_on_error
    async def insert_hits(self, rows: list[tuple]) -> int:
        """Chained rows (COLUMNS + prev_hash, hash) in one transaction; all or none."""
        before = self.db.total_changes
        try:
            await self.write_hits(rows)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return self.db.total_changes - before

    @_undone_on_error
    async def write_hits(self, rows: list[tuple]) -> None:
        """Chained rows (COLUMNS + prev_hash, hash) into hit_rows, each distinct header set once,
        in the caller's transaction (not committed here)."""
        if rows:
            try:
                await write_rows(self.db, self.header_sets, rows)
            except sqlite3.IntegrityError as error:
                if "hit_rows.uid" in str(error):
                    raise DuplicateHits(str(error)) from error
                raise

    async def existing_uids(self, uids: list[str]) -> set[str]:
        found = set()
        for start in range(0, len(uids), 400):
            forms = {form: uid for uid in uids[start:start + 400] for form in uid_forms(uid)}
            rows = await self._all(f"SELECT uid FROM hit_rows WHERE uid IN ({','.join('?' * len(forms))})", list(forms))
            found.update(forms[row["uid"]] for row in rows)
        return found

    async def _text_keys(self) -> bool:
        """Whether any row holds client_ip_key as text (inserted through the view): text sorts
        before every BLOB, so one index probe tells."""
        rows = await self._all("SELECT 1 FROM hit_rows WHERE client_ip_key >= '' AND client_ip_key < X'' LIMIT 1", [])
        return bool(rows)

    async def _where(self, where: HitFilter) -> tuple[str, list]:
        return sqlite_where(where, text_keys=(where.ip is not None or where.cidr is not None) and await self._text_keys())

    async def chain_head(self, node: str) -> tuple[str, int]:
        """(head hash, length) of a node's chain, purged stretches counted; GENESIS and 0 for a new node."""
        rows = await self._all("SELECT hash FROM hits WHERE node = ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1", [node])
        count = (await self._all("SELECT COUNT(hash) AS n FROM hit_rows WHERE node = ?", [node]))[0]["n"]
        purges = await self.purges(node)
        purged = sum(p["chained"] for p in purges)
        if rows:
            return rows[0]["hash"], count + purged
        return (purges[-1]["head_at_cut"] if purges else GENESIS), purged

    async def purges(self, node: str | None = None) -> list[dict]:
        where, params = ("WHERE node = ?", [node]) if node else ("", [])
        return await self._all(f"SELECT * FROM purges {where} ORDER BY id", params)

    async def legacy_unhashed(self) -> dict[str, int]:
        async with self.db.execute("SELECT node, last_id FROM legacy_unhashed") as cursor:
            return {node: last_id for node, last_id in await cursor.fetchall()}

    async def chain_position(self, node: str, hit_id: int) -> int:
        """The chain position of a node's hit (its count at that hit, purged stretches included)."""
        stored = (await self._all("SELECT COUNT(hash) AS n FROM hit_rows WHERE node = ? AND id > 0 AND id <= ?",
                                  [node, hit_id]))[0]["n"]
        return stored + sum(p["chained"] for p in await self.purges(node))

    async def chain_v1(self) -> dict[str, int]:
        return {row["node"]: row["last_id"] for row in await self._all("SELECT node, last_id FROM chain_v1", [])}

    async def purge_before(self, cutoff: str, signer=None) -> list[dict]:
        """Every node's hits received before `cutoff`, each node's as one stretch (purge)."""
        return [record for node in await self.nodes() if (record := await self.purge(node, cutoff, signer))]

    @_undone_on_error
    async def purge(self, node: str, cutoff: str, signer=None) -> dict | None:
        """Delete the node's oldest hits received before `cutoff`, as one stretch from the start of
        its chain (up to its first hit that is not older, and no further than a checkpoint covers),
        and record the cut, naming the first checkpoint whose chain passes through it. None if
        nothing to do. The record goes in first: hit_rows refuses a DELETE that no purge record covers."""
        first_new = (await self._all("SELECT MIN(id) AS id FROM hit_rows WHERE node = ? AND received_us >= ?",
                                     [node, received_us(cutoff)]))[0]["id"]
        bound = first_new if first_new is not None else (await self.last_id_of(node)) + 1
        checkpoints = await self.checkpoints(node)
        if not checkpoints:
            return None  # nothing signed covers any of those hits yet: they wait for a checkpoint
        last_purged = (await self._all("SELECT MAX(id) AS id FROM hit_rows WHERE node = ? AND id < ?", [node, bound]))[0]["id"]
        checkpoint = next((cp for cp in checkpoints if cp["last_id"] >= (last_purged or 0)), None)
        if checkpoint is None:  # hits newer than the last checkpoint: cut at it
            checkpoint = max(checkpoints, key=lambda cp: cp["count"])
            bound = checkpoint["last_id"] + 1
        stretch = (await self._all(
            "SELECT MIN(id) AS first_id, MAX(id) AS last_id, COUNT(*) AS hits, COUNT(hash) AS chained FROM hit_rows "
            "WHERE node = ? AND id < ?", [node, bound]))[0]
        if not stretch["hits"]:
            return None
        last = await self._all("SELECT hash FROM hits WHERE node = ? AND id < ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                               [node, bound])
        earlier = await self.purges(node)
        head_at_cut = last[0]["hash"] if last else (earlier[-1]["head_at_cut"] if earlier else GENESIS)
        record = {"node": node, "at": now_iso(), "cutoff": cutoff, "first_id": stretch["first_id"],
                  "last_id": stretch["last_id"], "hits": stretch["hits"], "chained": stretch["chained"], "head_at_cut": head_at_cut,
                  "checkpoint_id": checkpoint["id"]}
        record["public_key"], record["signature"] = signer(record) if signer else (None, None)
        try:
            await self.db.execute(f"INSERT INTO purges ({', '.join(record)}) VALUES ({', '.join('?' * len(record))})",
                                  list(record.values()))
            await self.db.execute("DELETE FROM hit_rows WHERE node = ? AND id < ?", [node, bound])
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return record

    async def chain_heads(self) -> list[dict]:
        return await self._all(
            "SELECT node, COUNT(hash) AS count, MAX(id) AS last_id, "
            "(SELECT h.hash FROM hits h WHERE h.node = r.node AND h.hash IS NOT NULL ORDER BY h.id DESC LIMIT 1) AS head "
            "FROM hit_rows r GROUP BY node ORDER BY node", [])

    async def iter_chain(self, node: str, chunk: int = 2000, after: int | None = None):
        """A node's hits in chain order (id order), with their hashes, `chunk` at a time; every one,
        ids below 1 too (none is made by seized: verify must see a forged one); or those after id `after`."""
        while True:
            if after is None:
                rows = await self._all(f"{hit_select()} WHERE r.node = ? ORDER BY r.id LIMIT ?", [node, chunk])
            else:
                rows = await self._all(f"{hit_select()} WHERE r.node = ? AND r.id > ? ORDER BY r.id LIMIT ?", [node, after, chunk])
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def nodes(self) -> list[str]:
        return [row["node"] for row in await self._all("SELECT DISTINCT node FROM hit_rows ORDER BY node", [])]

    @_undone_on_error
    async def add_checkpoint(self, *, node, at, count, last_id, head, public_key, signature, clock=None,
                             tsa_token=None) -> None:
        await self.db.execute("INSERT INTO checkpoints (node, at, count, last_id, head, public_key, signature, clock, "
                              "tsa_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (node, at, count, last_id, head, public_key, signature, clock, tsa_token))
        await self.db.commit()

    async def checkpoints(self, node: str | None = None) -> list[dict]:
        where, params = ("WHERE node = ?", [node]) if node else ("", [])
        return await self._all(f"SELECT * FROM checkpoints {where} ORDER BY id", params)

    async def last_id_of(self, node: str) -> int:
        rows = await self._all("SELECT MAX(id) AS top FROM hit_rows WHERE node = ?", [node])
        return rows[0]["top"] or 0

    async def latest_hits(self, limit: int) -> list[dict]:
        return await self.query_hits(HitFilter(), None, limit)

    async def query_hits(self, where: HitFilter, before_id: int | None, limit: int) -> list[dict]:
        """One page, newest first: hits older than `before_id`. New hits get higher ids, so paging
        on while they arrive never repeats or skips one. Rows outside the chain (IN_CHAIN) are left
        out; outside_chain counts those with ids below 1."""
        sql, params = await self._where(where)
        if not where.has_range:  # equality filters: their (column, id) indexes are already in id order
            if before_id is not None:
                sql, params = f"({sql}) AND r.id < ?", [*params, before_id]
            return await self._all(f"{hit_select()} WHERE ({sql}) AND {IN_CHAIN} ORDER BY r.id DESC LIMIT ?", [*params, limit])
        # The page's ids come from the range's index, which holds ids but not hashes: the chain is
        # tested as its row is read, and a row left out is made up from further down.
        rows, before = [], before_id
        while len(rows) < limit:
            want = limit - len(rows)
            page_sql, page_params = (f"({sql}) AND r.id < ?", [*params, before]) if before is not None else (sql, params)
            ids = await self._range_page_ids(where, page_sql, page_params, before, want)
            if ids:
                rows += await self._all(f"{hit_select()} WHERE r.id IN ({','.join('?' * len(ids))}) AND {IN_CHAIN} "
                                        "ORDER BY r.id DESC", ids)
            if len(ids) < want:
                break
            before = ids[-1]
        return rows

    async def _range_page_ids(self, where: HitFilter, sql: str, params: list, before_id: int | None, limit: int) -> list[int]:
        """Ids of one page under a range filter (CIDR, time). SQLite reads such a range through its
        index and must sort every match by id: cheap for a few thousand ids, slow for a million. So
        a wide range first tries the newest RECENT_WINDOW rows in id order, where a busy range
        fills a page at once; only if that falls short are the range's ids sorted (ids only, from
        the index, not whole rows)."""
        # Named, so a page cursor (`id < ?`) cannot tempt the planner into walking the whole table.
        by_range = f"hit_rows r INDEXED BY {'hit_rows_client_ip_key' if where.cidr is not None else 'hit_rows_received'}"
        probe = await self._all(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {by_range} WHERE {sql} LIMIT {SMALL_RANGE})", params)
        if probe[0]["n"] >= SMALL_RANGE:
            top = before_id if before_id is not None else (await self._all("SELECT COALESCE(MAX(id), 0) + 1 AS top FROM hit_rows", []))[0]["top"]
            recent = await self._all(f"SELECT id FROM hit_rows r NOT INDEXED WHERE ({sql}) AND id < ? AND id >= ? ORDER BY id DESC LIMIT ?",
                                     [*params, top, top - RECENT_WINDOW, limit])
            if len(recent) == limit:
                return [row["id"] for row in recent]
        rows = await self._all(f"SELECT r.id FROM {by_range} WHERE {sql} ORDER BY r.id DESC LIMIT ?", [*params, limit])
        return [row["id"] for row in rows]

    async def iter_hits(self, where: HitFilter, fmt: str = "ndjson", chunk: int = EXPORT_CHUNK):
        """All matching hits for an export in `fmt`, oldest first, `chunk` rows at a time; a snapshot
        as of the call. For query.Exporter(fmt).rows: for CSV, (id, line) pairs, the line built by
        SQLite; else plain tuples in RECORD_FIELDS order, received_at to the microsecond (as exports
        carry it), headers and device as their stored JSON."""
        sql, params = await self._where(where)
        table = await self._table_for(where, sql, params)
        last_id = (await self._all("SELECT COALESCE(MAX(id), 0) AS top FROM hit_rows", []))[0]["top"]
        columns = f"r.id, {EXPORT_CSV_LINE}" if fmt == "csv" else EXPORT_COLUMNS
        query = f"{hit_select(table, columns)} WHERE ({sql}) AND {IN_CHAIN} AND r.id > ? AND r.id <= ? ORDER BY r.id LIMIT ?"

        async def fetch(after: int) -> list[tuple]:
            async with self.db.execute(query, [*params, after, last_id, chunk]) as cursor:
                cursor.row_factory = None  # plain tuples: a Row per value is what made exports slow
                return await cursor.fetchall()

        # The next chunk is read (in aiosqlite's thread) while the caller formats and sends this one.
        pending = asyncio.ensure_future(fetch(0))
        try:
            while rows := await pending:
                pending = asyncio.ensure_future(fetch(rows[-1][0]))
                yield rows
        finally:
            pending.cancel()

    async def _table_for(self, where: HitFilter, sql: str, params) -> str:
        """SQLite reads a range filter (CIDR, time) through its index, then sorts every match by id
        for the page: fine for a few thousand, seconds for a million. When the range holds many
        hits, walking the table by id and testing each row finds a page far sooner."""
        if not where.has_range:
            return "hit_rows r"
        probe = await self._all(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM hit_rows WHERE {sql} LIMIT {DENSE_RANGE + 1})", params)
        return "hit_rows r NOT INDEXED" if probe[0]["n"] > DENSE_RANGE else "hit_rows r"

    async def iter_hits_by_time(self, where: HitFilter, chunk: int = 2000):
        """All matching hits in time order (received_at, then id), `chunk` at a time."""
        sql, params = await self._where(where)
        last = (-1, 0)
        while True:
            rows = await self._all(f"{hit_select(columns=HIT_COLUMNS + ', r.received_us AS received_us')} "
                                   f"WHERE ({sql}) AND {IN_CHAIN} AND (r.received_us, r.id) > (?, ?) "
                                   "ORDER BY r.received_us, r.id LIMIT ?",
                                   [*params, *last, chunk])
            if not rows:
                return
            yield rows
            last = (rows[-1]["received_us"], rows[-1]["id"])

    async def asn_plan(self, where: HitFilter) -> list[dict]:
        """Per autonomous system (ISP): hits and distinct client IPs, busiest first."""
        sql, params = await self._where(where)
        return await self._all(
            f"SELECT asn, MAX(as_org) AS as_org, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hit_rows WHERE ({sql}) AND {sqlite_in_chain('hit_rows')} GROUP BY asn ORDER BY hits DESC, asn", params)

    async def get_hit(self, hit_id: int) -> dict | None:
        """The hit with this id; None for none, or for a row outside the chain (IN_CHAIN)."""
        rows = await self._all(f"{hit_select()} WHERE r.id = ? AND {IN_CHAIN}", [hit_id])
        return rows[0] if rows else None

    async def outside_chain(self, where: HitFilter) -> int:
        """How many rows matching `where` the readers leave out for an id below 1 (IN_CHAIN): a
        range of the rowid, cheap. Rows without a hash inside a chain are left out too but not
        counted here, which would take a scan of every row (verify finds them)."""
        sql, params = await self._where(where)
        # NOT INDEXED: the filter's own index must not be walked for it; the rowid range still serves.
        return (await self._all(f"SELECT COUNT(*) AS n FROM hit_rows r NOT INDEXED WHERE r.id < 1 AND ({sql})", params))[0]["n"]

    async def hit_stats(self, where: HitFilter, group: str, limit: int = 10_000) -> list[dict]:
        sql, params = await self._where(where)
        expression = GROUP_SQL[group]
        order = "grp" if group in ("hour", "day") else "hits DESC, grp"
        return await self._all(
            f"SELECT {expression} AS grp, COUNT(*) AS hits, COUNT(DISTINCT client_ip) AS distinct_ips "
            f"FROM hit_rows WHERE ({sql}) AND {sqlite_in_chain('hit_rows')} GROUP BY grp ORDER BY {order} LIMIT ?",
            [*params, limit])

    async def _all(self, sql: str, params) -> list[dict]:
        async with self.db.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def ping(self) -> None:
        await self._all("SELECT 1", [])

    # -- moving a deployment (dbcopy.py) --------------------------------------------------------

    async def dump_table(self, table: str, chunk: int = 5000):
        rows, offset = None, 0
        while rows is None or len(rows) == chunk:
            rows = await self._all(f'SELECT * FROM "{table}" ORDER BY rowid LIMIT ? OFFSET ?', [chunk, offset])
            offset += len(rows)
            if rows:
                yield rows

    @_undone_on_error
    async def load_table(self, table: str, rows: list[dict]) -> None:
        if rows:
            columns = list(rows[0])
            await self.db.executemany(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})',
                                      [[row[c] for c in columns] for row in rows])
            await self.db.commit()

    async def dump_hits(self, chunk: int = 5000):
        after = 0
        while rows := await self._all(f"{hit_select()} WHERE r.id > ? ORDER BY r.id LIMIT ?", [after, chunk]):
            yield rows
            after = rows[-1]["id"]

    @_undone_on_error
    async def load_hits(self, rows: list[dict]) -> None:
        """Hits with their ids, uids and hashes as they were (a copy, not an ingest)."""
        try:
            await write_rows(self.db, self.header_sets, [(row["id"], *(row[c] for c in STORED)) for row in rows], with_id=True)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise

    async def count_rows(self, table: str) -> int:
        return (await self._all(f'SELECT COUNT(*) AS n FROM "{table}"', []))[0]["n"]

    # -- node leases ----------------------------------------------------------------------------

    @_undone_on_error
    async def claim_node(self, node: str, holder: str, ttl_s: float) -> dict | None:
        """Take or renew the lease on `node` for `ttl_s` seconds. None when `holder` has it now; the
        other holder's lease when that one is still live."""
        now = time.time_ns()
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            rows = await self._all("SELECT * FROM node_leases WHERE node = ?", [node])
            if rows and rows[0]["holder"] != holder and rows[0]["expires_at"] > iso_utc(now):
                await self.db.rollback()
                return rows[0]
            await self.db.execute(
                "INSERT INTO node_leases VALUES (?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET holder = excluded.holder, "
                "claimed_at = CASE WHEN holder = excluded.holder THEN claimed_at ELSE excluded.claimed_at END, "
                "expires_at = excluded.expires_at", (node, holder, iso_utc(now), iso_utc(now + int(ttl_s * 1e9))))
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return None

    @_undone_on_error
    async def release_node(self, node: str, holder: str) -> None:
        await self.db.execute("DELETE FROM node_leases WHERE node = ? AND holder = ?", (node, holder))
        await self.db.commit()

    # -- domains -----------------------------------------------------------------------------

    async def list_domains(self) -> list[dict]:
        async with self.db.execute("SELECT * FROM domains ORDER BY name") as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    @_undone_on_error
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

    @_undone_on_error
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

    @_undone_on_error
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

    @_undone_on_error
    async def remove_domain(self, name: str) -> bool:
        cursor = await self.db.execute("DELETE FROM domains WHERE name = ?", (name,))
        await self.db.commit()
        return cursor.rowcount > 0

    async def domain_changes(self) -> None:
        """None: one SQLite file has no notifications; the domain list is polled."""
        return None

    async def domains_version(self) -> tuple:
        """Changes whenever the domain list changes; cheap enough to poll."""
        async with self.db.execute("SELECT COUNT(*), MAX(updated_at), group_concat(name) FROM domains") as cursor:
            return tuple(await cursor.fetchone())

    # -- tokens ------------------------------------------------------------------------------

    @_undone_on_error
    async def add_token(self, token_id: str, name: str, role: str, secret_sha256: str, expires_at: str | None) -> None:
        await self.db.execute("INSERT INTO tokens (id, name, role, secret_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                              (token_id, name, role, secret_sha256, now_iso(), expires_at))
        await self.db.commit()

    async def get_token(self, token_id: str) -> dict | None:
        rows = await self._all("SELECT * FROM tokens WHERE id = ?", [token_id])
        return rows[0] if rows else None

    async def list_tokens(self) -> list[dict]:
        return await self._all("SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM tokens ORDER BY created_at", [])

    @_undone_on_error
    async def revoke_token(self, name: str) -> bool:
        cursor = await self.db.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now_iso(), name))
        await self.db.commit()
        return cursor.rowcount > 0

    @_undone_on_error
    async def touch_token(self, token_id: str) -> None:
        await self.db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now_iso(), token_id))
        await self.db.commit()

    async def has_active_token(self, role: str) -> bool:
        rows = await self._all("SELECT 1 FROM tokens WHERE role = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                               [role, now_iso()])
        return bool(rows)

    # -- audit -------------------------------------------------------------------------------

    @_undone_on_error
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

    @_undone_on_error
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
        """The imported records (of one case, or all), by case and account. Their hits are matched
        in app/subjects.py (`match`), as the report matches them."""
        where, params = ("WHERE case_ref = ?", [case_ref]) if case_ref else ("", [])
        return await self._all(f"SELECT case_ref, account, attributes, imported_at FROM subjects {where} "
                               "ORDER BY case_ref, account", params)

    # -- the journal's ingest (ingest.py) -----------------------------------------------------

    async def journal_progress(self) -> dict[str, tuple[int, int]]:
        """segment name -> (bytes read, records read), as committed with the rows they made."""
        rows = await self._all("SELECT segment, offset, records FROM journal_progress", [])
        return {row["segment"]: (row["offset"], row["records"]) for row in rows}

    @_undone_on_error
    async def ingest_batch(self, rows: list[tuple], progress: dict[str, tuple[int, int]], gaps: list[dict]) -> None:
        """Chained rows, how far each segment has been read and the gaps found, in one transaction:
        after a crash, ingest resumes exactly where the last commit left off."""
        stamp = now_iso()
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            await self.write_hits(rows)  # hit_rows directly: the view's trigger is slower and keeps hex as text
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

    @_undone_on_error
    async def forget_segment(self, segment: str) -> None:
        """A journal segment fully ingested and deleted: its progress row goes too."""
        await self.db.execute("DELETE FROM journal_progress WHERE segment = ?", [segment])
        await self.db.commit()

    async def journal_gaps(self) -> list[dict]:
        return await self._all("SELECT * FROM journal_gaps ORDER BY id", [])
