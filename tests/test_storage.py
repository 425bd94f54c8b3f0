"""The compact hit layout (store/layout.py): header sets stored once, the view `hits` giving back
exactly the old record, both insert paths agreeing, the migration from the old table, CSV lines
built by SQLite equal to the csv module's, filters served by indexes. No server needed."""

import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from app.capture import Hit
from app.chain_format import link_v1
from app.evidence import GENESIS, chain_rows, verify
from app.query import Exporter, HitFilter, record
from app.record import COLUMNS, ip_key, to_row
from app.store.layout import STORED
from app.store.migrations import SQLITE as MIGRATIONS
from app.store.sqlite import INSERT_HIT, SQLiteStore, sqlite_where

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

AGENT = b"IPTVSmartersPlayer/3.1.5 (Linux; U; Android 11) okhttp/4.9.2"


def hits(count: int, start_ns: int = 1_795_000_000 * 10**9, node: str = "n1", **changes) -> list[Hit]:
    return [Hit(**{**dict(
        received_at_ns=start_ns + i * 1_234_567, node=node, host=b"line.seized-iptv.example:8080", domain="seized-iptv.example",
        scheme="http", method="GET", raw_path=b"/player_api.php", query=f"username=u{i % 7}&password=p".encode(),
        http_version="1.1", client_ip=f"93.184.{i % 3}.{i % 250}", client_port=1024 + i, peer_ip=f"93.184.{i % 3}.{i % 250}",
        peer_port=1024 + i, server_ip="2001:db8::80" if i % 4 else "192.0.2.80", server_port=8080,
        headers=[(b"host", b"line.seized-iptv.example:8080"), (b"user-agent", AGENT), (b"accept", b"*/*")],
        status=200, duration_ms=1.25 + i / 1000, client_kind="xtream_api", account=f"u{i % 7}"), **changes}) for i in range(count)]


def chained(rows: list[tuple], node: str = "n1") -> list[tuple]:
    return chain_rows(rows, {node: GENESIS})[0]


def chained_v1(rows: list[tuple]) -> list[tuple]:
    """Rows hashed as seized did before schema 16 (chain format 1), as an old database holds them."""
    prev, linked = GENESIS, []
    for row in rows:
        digest = link_v1(prev, dict(zip(COLUMNS, row)))
        linked.append((*row, prev, digest))
        prev = digest
    return linked


# Rows no writer makes, written by hand through the view: every representation's fallback.
ODD = [
    {"uid": "not-hex-at-all", "received_at": "2026-11-23 06:00:25", "prev_hash": None, "hash": None, "client_ip_key": "ZZ",
     "peer_ip": "10.9.9.9", "peer_port": 1, "duration_ms": 0.1 + 0.2, "body_sha256": "ABCDEF", "device": '{"sn": "x,y"}'},
    {"uid": "00" * 16, "received_at": "1969-12-31T23:59:59.999999Z", "client_ip": None, "client_ip_key": None, "peer_ip": None,
     "client_port": None, "peer_port": None, "duration_ms": 7, "error": 'line\r\nbreak, "quoted"', "path": "/a,b",
     "headers": '[["x-\\u00e9", "a\\"b"]]', "user_agent": None},
    {"uid": "ff" * 16, "received_at": "2026-02-30T00:00:00.000000Z", "duration_ms": 12345.678, "asn": 3269, "as_org": "A, B",
     "country": "IT", "city": "Roma", "password_hmac": "ab" * 32, "body_size": 3, "body_sha256": "cd" * 32, "device": "null"},
]


def odd_rows(base: tuple) -> list[tuple]:
    template = dict(zip(STORED, base))
    return [tuple({**template, "node": "odd", **odd}[c] for c in STORED) for odd in ODD]


async def open_store(path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


def view_rows(path, where: str = "1") -> list[dict]:
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM hits WHERE {where} ORDER BY id")]


def test_identical_headers_are_stored_once_and_read_back_unchanged(tmp_path):
    rows = chained([to_row(hit) for hit in hits(1000)])

    async def run():
        store = await open_store(tmp_path / "s.db")
        try:
            for start in range(0, 1000, 300):
                await store.insert_hits(rows[start:start + 300])
            assert (await verify(store))["ok"]
        finally:
            await store.close()

    asyncio.run(run())
    with closing(sqlite3.connect(tmp_path / "s.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM header_sets").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM hit_rows").fetchone()[0] == 1000
        assert db.execute("SELECT typeof(uid), typeof(hash), typeof(received_us), typeof(peer_ip) FROM hit_rows LIMIT 1"
                          ).fetchone() == ("blob", "blob", "integer", "blob")
    got = view_rows(tmp_path / "s.db")
    assert list(got[0]) == ["id", *STORED[:STORED.index("prev_hash")][:28], "prev_hash", "hash",
                            *STORED[28:32]]  # the old table's column order, server_ip (schema 18) before server_port
    assert [tuple(r[c] for c in STORED) for r in got] == rows
    assert [r["id"] for r in got] == list(range(1, 1001))


def test_the_view_insert_and_the_store_insert_read_back_the_same(tmp_path):
    rows = chained([to_row(hit) for hit in hits(20)])
    rows += odd_rows(rows[0])

    async def run():
        store = await open_store(tmp_path / "fast.db")
        await store.insert_hits(rows)
        await store.close()
        store = await open_store(tmp_path / "view.db")
        await store.close()

    asyncio.run(run())
    with closing(sqlite3.connect(tmp_path / "view.db")) as db, db:
        db.executemany(INSERT_HIT, rows)
    fast, through_view = view_rows(tmp_path / "fast.db"), view_rows(tmp_path / "view.db")
    assert fast == through_view
    assert [tuple(r[c] for c in STORED) for r in fast] == rows
    assert [type(r["duration_ms"]) for r in fast] == [float] * len(rows)


def old_database(path, rows: list[tuple], sequence: int | None = None) -> None:
    """A database as schema version 9 left it: the table `hits` (no server_ip: rows must hold none)."""
    columns = [c for c in STORED if c != "server_ip"]
    assert all(row[STORED.index("server_ip")] is None for row in rows)
    with closing(sqlite3.connect(path)) as db, db:
        db.create_function("ip_key", 1, ip_key)
        db.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, step in enumerate(MIGRATIONS[:9], start=1):
            db.executescript(step)
            db.execute("INSERT INTO migrations VALUES (?, '2026-01-01T00:00:00.000000Z')", (version,))
        db.executemany(f"INSERT INTO hits ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                       [tuple(v for c, v in zip(STORED, row) if c != "server_ip") for row in rows])
        if sequence is not None:
            db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'hits'", (sequence,))


def test_an_old_database_is_migrated_keeping_every_hit(tmp_path):
    rows = chained_v1([to_row(hit) for hit in hits(2500, server_ip=None)])  # before schema 18: no server_ip
    rows += odd_rows(rows[0])
    path = tmp_path / "old.db"
    old_database(path, rows, sequence=5000)
    before = view_rows(path)

    async def run():
        store = await open_store(path)
        try:
            assert await store.schema_version() == len(MIGRATIONS)
            report = await verify(store, "n1")
            assert report["nodes"][0]["hits"] == 2500 and report["nodes"][0]["first_break"] is None
            # the chain goes on where it was, and ids after the old sequence
            head, length = await store.chain_head("n1")
            assert (head, length) == (rows[2499][-1], 2500)
            more = chain_rows([to_row(hit) for hit in hits(3, start_ns=1_796_000_000 * 10**9)], {"n1": head})[0]
            await store.insert_hits(more)
            assert (await verify(store, "n1"))["ok"]
        finally:
            await store.close()

    asyncio.run(run())
    after = view_rows(path)
    assert [r.pop("server_ip") for r in after[:len(before)]] == [None] * len(before)  # schema 18's column, empty
    assert after[:len(before)] == before  # every hit, id, uid, hash and field, in id order
    assert [r["server_ip"] for r in after[len(before):]] == ["192.0.2.80", "2001:db8::80", "2001:db8::80"]
    assert [r["id"] for r in after[len(before):]] == [5001, 5002, 5003]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT type FROM sqlite_master WHERE name = 'hits'").fetchone() == ("view",)
        assert db.execute("SELECT COUNT(*) FROM header_sets").fetchone()[0] == 2  # one odd row has headers of its own
        assert db.execute("SELECT COUNT(*) FROM hit_rows WHERE typeof(hash) = 'blob'").fetchone()[0] == 2505


def test_csv_lines_built_by_sqlite_equal_the_csv_modules(tmp_path):
    rows = chained([to_row(hit) for hit in hits(30)])
    rows += odd_rows(rows[0])
    rows.append(tuple({**dict(zip(STORED, rows[1])), "uid": "u-x", "user_agent": 'a "b", c', "query": "x=1,2",
                       "node": "n,1", "client_port": 2.5, "status": "451", "host": "h\nx", "city": "Zürich"}[c] for c in STORED))
    # formulas (OWASP: =, +, -, @, tab, CR first), each alone in an otherwise plain row, and all at once;
    # negative numbers are no text; a char(1) inside a field is no formula
    formula = {"path": "=cmd|'/c calc'!A1", "user_agent": "+1", "method": "-2", "host": "@SUM(A1)", "query": "\tx",
               "error": "\rx", "account": '=HYPERLINK("x")', "uid": "-u", "as_org": "@", "server_ip": "=1+1",
               "client_kind": "\x01=no"}
    for name, value in formula.items():
        rows.append(tuple({**dict(zip(STORED, rows[2])), "uid": f"f-{name}", name: value}[c] for c in STORED))
    rows.append(tuple({**dict(zip(STORED, rows[3])), **formula, "uid": "-all", "client_port": -5, "asn": -1}[c] for c in STORED))

    async def run():
        store = await open_store(tmp_path / "s.db")
        try:
            await store.insert_hits(rows)
            built, expected = Exporter("csv"), Exporter("csv")
            text = built.start() + "".join([built.rows(chunk) async for chunk in store.iter_hits(HitFilter(), "csv", chunk=7)])
            # (what readers show: the odd row without a hash is outside the chain, left out)
            shown = "SELECT * FROM hits WHERE id >= 1 AND hash IS NOT NULL ORDER BY id"
            old = expected.start() + expected.items(record(row) for row in await store._all(shown, []))
            assert text == old
            cells = [cell for row in __import__("csv").reader(text.splitlines(keepends=True)) for cell in row]
            assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r")) and cell != "-5"
                        and cell != "-1"], "a formula left as it was"
            assert {"'=cmd|'/c calc'!A1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "'-u", "\x01=no", "-5"} <= set(cells)
            # NDJSON goes through the same rows, formatted in Python
            ndjson = "".join([Exporter("ndjson").rows(chunk) async for chunk in store.iter_hits(HitFilter(), "ndjson")])
            assert ndjson == Exporter("ndjson").items(record(row) for row in await store._all(shown, []))
        finally:
            await store.close()

    asyncio.run(run())


@pytest.mark.parametrize("filters, index", [
    ({"domain": "seized-iptv.example"}, "hit_rows_domain"),
    ({"ip": "93.184.1.7"}, "hit_rows_client_ip_key"),
    ({"port": 1030}, "hit_rows_client_port"),
    ({"node": "n1"}, "hit_rows_node"),
    ({"account": "u3"}, "hit_rows_account"),
    ({"client_kind": "xtream_api"}, "hit_rows_client_kind"),
    ({"asn": 3269}, "hit_rows_asn"),
    ({"country": "IT"}, "hit_rows_country"),
])
def test_equality_filters_page_straight_off_their_index(tmp_path, filters, index):
    from app.store.sqlite import hit_select

    async def run():
        store = await open_store(tmp_path / "s.db")
        try:
            sql, params = sqlite_where(HitFilter(**filters))
            plan = await store._all(f"EXPLAIN QUERY PLAN {hit_select()} WHERE {sql} AND r.id < ? ORDER BY r.id DESC LIMIT 100",
                                    [*params, 10**9])
            details = " | ".join(row["detail"] for row in plan)
            assert f"USING INDEX {index}" in details and "TEMP B-TREE" not in details, details
        finally:
            await store.close()

    asyncio.run(run())


def test_hits_are_deleted_only_under_a_purge_record(tmp_path):
    rows = chained([to_row(hit) for hit in hits(10, start_ns=1_700_000_000 * 10**9)])

    async def run():
        store = await open_store(tmp_path / "s.db")
        try:
            await store.insert_hits(rows)
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                await store.db.execute("DELETE FROM hit_rows WHERE id = 3")
            await store.db.rollback()
            assert await store.purge("n1", rows[4][1]) is None  # no checkpoint covers them yet: kept
            head = rows[-1][-1]
            await store.add_checkpoint(node="n1", at="2026-11-23T06:00:00.000000Z", count=10, last_id=10, head=head,
                                       public_key=None, signature=None)
            cut = await store.purge("n1", rows[4][1])  # the first four are older
            assert (cut["first_id"], cut["last_id"], cut["hits"]) == (1, 4, 4)
            assert cut["checkpoint_id"] == (await store.checkpoints("n1"))[0]["id"]
            assert (await verify(store))["ok"]
        finally:
            await store.close()

    asyncio.run(run())
    assert [r["id"] for r in view_rows(tmp_path / "s.db")] == list(range(5, 11))


def test_a_realistic_request_takes_less_room_than_its_raw_bytes(tmp_path):
    """bench/storage.py at a small scale: 635 raw bytes, far fewer stored."""
    import storage

    target, _, headers = storage.raw_request(0)
    raw = storage.raw_size(target, headers)
    path = tmp_path / "s.db"
    asyncio.run(storage.fill(path, 0, 50))
    empty = storage.space(path)
    asyncio.run(storage.fill(path, 5000, 50))
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    grown = sum(size - empty.get(name, 0) for name, size in storage.space(path).items())
    assert raw == 635
    assert grown / 5000 < 635, f"{grown / 5000:.0f} bytes per hit"


def test_a_rolled_back_batch_leaves_no_stale_header_set(tmp_path):
    first = chained([to_row(hit) for hit in hits(5)])
    other = [to_row(hit) for hit in hits(5, start_ns=1_796_000_000 * 10**9, headers=[(b"user-agent", b"Other/1")])]

    async def run():
        store = await open_store(tmp_path / "s.db")
        try:
            await store.db.execute("BEGIN IMMEDIATE")
            await store.write_hits(chain_rows(other, {"n1": GENESIS})[0])  # a new header set, then rolled back
            await store.db.rollback()
            await store.insert_hits(first)
            await store.insert_hits(chain_rows(other, {"n1": first[-1][-1]})[0])
        finally:
            await store.close()

    asyncio.run(run())
    got = view_rows(tmp_path / "s.db")
    assert [r["user_agent"] for r in got] == [AGENT.decode()] * 5 + ["Other/1"] * 5
