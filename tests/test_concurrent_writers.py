"""Keyset pages and exports on PostgreSQL while two nodes' ingests write at once: each page walk is
exactly the hits up to its newest (none repeated, none skipped) and each export a snapshot. One
writer holds its transactions open after its rows are in, so that if a later id could commit
before an earlier one, the readers would see it. The stores are the app's own, one per node, on
one real PostgreSQL database; the rows are made by the app's chain code (what is tested here is
the store's ordering, not the chain)."""

import asyncio
import time

import pytest

from app.capture import Hit
from app.evidence import GENESIS, chain_rows
from app.query import RECORD_FIELDS, HitFilter
from app.record import to_row
from app.store import open_store
from helpers import sql

BATCHES, BATCH = 30, 40
ID = RECORD_FIELDS.index("id")


def batch(node: str, number: int, heads: dict) -> tuple[list[tuple], dict]:
    hits = [to_row(Hit(received_at_ns=time.time_ns(), node=node, host=b"seized-iptv.example", domain=None,
                       scheme="http", method="GET", raw_path=f"/{node}/{number}/{i}".encode(), query=b"",
                       http_version="1.1", client_ip="203.0.113.7", client_port=40000 + i, peer_ip="127.0.0.1",
                       peer_port=50000, server_ip="127.0.0.1", server_port=8080, headers=[(b"host", b"seized-iptv.example")],
                       status=451))
            for i in range(BATCH)]
    return chain_rows(hits, heads)


@pytest.mark.backends("postgres")
def test_pages_and_exports_neither_repeat_nor_skip_while_two_nodes_write(postgres_database, tmp_path):
    url = postgres_database(tmp_path)

    async def run():
        stores = {name: await open_store(url) for name in ("slow-node", "fast-node", "reader")}
        # The slow node's transactions stay open 0.1 s after its rows are in (its ids drawn, not committed).
        sql(url, "CREATE FUNCTION hold_open() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF EXISTS (SELECT 1 FROM written WHERE node = 'slow-node') THEN PERFORM pg_sleep(0.1); END IF; "
                 "RETURN NULL; END $$")
        sql(url, "CREATE TRIGGER hold_open AFTER INSERT ON hit_rows REFERENCING NEW TABLE AS written "
                 "FOR EACH STATEMENT EXECUTE FUNCTION hold_open()")
        writing, walks, exports = True, [], []

        async def write(node):
            heads = {node: GENESIS}
            for number in range(BATCHES):
                rows, heads = batch(node, number, heads)
                await stores[node].insert_hits(rows)

        async def walk():
            ids, cursor = [], None
            while True:
                page = await stores["reader"].query_hits(HitFilter(), cursor, 25)
                ids += [row["id"] for row in page]
                if len(page) < 25:
                    return ids
                cursor = page[-1]["id"]

        async def export():
            return [row[ID] async for rows in stores["reader"].iter_hits(HitFilter(), "ndjson", chunk=50) for row in rows]

        async def read():
            while writing:
                walks.append(await walk())
                exports.append(await export())

        reader = asyncio.create_task(read())
        await asyncio.gather(write("slow-node"), write("fast-node"))
        writing = False
        await reader
        final = await export()
        for store in stores.values():
            await store.close()
        return walks, exports, final

    walks, exports, final = asyncio.run(run())
    assert len(final) == 2 * BATCHES * BATCH and final == sorted(set(final))
    overlapping = [ids for ids in walks if 0 < len(ids) < len(final)]
    assert len(overlapping) >= 5, [len(ids) for ids in walks]  # the readers really read during the writing
    for ids in walks:
        assert ids == sorted(set(ids), reverse=True), "a walk repeated a hit or left id order"
        assert ids == [i for i in reversed(final) if ids and i <= ids[0]], "a walk skipped a hit"
    for ids in exports:
        assert ids == [i for i in final if ids and i <= ids[-1]], "an export is not a snapshot"
