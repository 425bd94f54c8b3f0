"""Retention on PostgreSQL: hit_rows is partitioned by month, and a purge drops the months wholly
past the cutoff instead of deleting rows, each node's loss recorded first as a stretch from the
start of its chain, so `seized verify` and tests/chain_check.py still pass and the chains go on.
Hits are seeded through the journal at chosen times; expectations come from what was seeded."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from chain_check import check_chains, problems_of
from commands import seized
from helpers import seed_journal, sql, tamper, wait_for

pytestmark = pytest.mark.backends("postgres")


def month_start(moment: datetime, back: int = 0) -> datetime:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(back):
        start = (start - timedelta(days=1)).replace(day=1)
    return start


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9


def partitions(url: str) -> set[str]:
    return {r["relname"] for r in sql(url, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                           "WHERE i.inhparent = 'hit_rows'::regclass")}


def verify(url: str) -> dict:
    result = seized("verify", "--db", url, check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def test_a_purge_drops_whole_months_and_every_chain_still_verifies(fresh_server):
    now = datetime.now(timezone.utc)
    m3, m2, m1 = (month_start(now, back) for back in (3, 2, 1))
    # A checkpoint after every batch (a running node makes one a minute): a purge cuts only what one covers.
    server = fresh_server(node="edge-a", checkpoint_every_hits=1).start()
    url = server.db_url
    seeded = {  # (node, month): hits, received on the given day of that month
        ("edge-a", m3): seed_journal(server, 5, node="edge-a", start_ns=ns(m3 + timedelta(days=9))),
        ("edge-a", m2): seed_journal(server, 7, node="edge-a", start_ns=ns(m2 + timedelta(days=3))),
        ("edge-b", m2): seed_journal(server, 4, node="edge-b", start_ns=ns(m2 + timedelta(days=20))),
        ("edge-a", m1): seed_journal(server, 3, node="edge-a", start_ns=ns(m1 + timedelta(days=2))),
        ("edge-b", m1): seed_journal(server, 2, node="edge-b", start_ns=ns(m1 + timedelta(days=4))),
    }
    seeded_now = seed_journal(server, 6, node="edge-a")
    months = {f"hit_rows_{m:%Y_%m}" for m in (m3, m2, m1)}
    assert months <= partitions(url)
    before = check_chains(url)
    assert verify(url)["ok"] and problems_of(url) == {}

    # A cutoff in the middle of last month: the two months before it go whole, last month stays
    # (its first days too: a partition is dropped only once all of it is past the cutoff).
    days = (now - (m1 + timedelta(days=15))).days
    output = seized("purge", "--db", url, "--days", str(days)).stdout
    assert f"node edge-a: purged 12 hits" in output and f"node edge-b: purged 4 hits" in output, output
    assert f"hit_rows_{m3:%Y_%m}" not in partitions(url) and f"hit_rows_{m2:%Y_%m}" not in partitions(url)
    assert f"hit_rows_{m1:%Y_%m}" in partitions(url)
    kept = {node: [r["uid"] for r in sql(url, "SELECT uid FROM hits WHERE node = ? ORDER BY id", (node,))]
            for node in ("edge-a", "edge-b")}
    assert kept["edge-a"] == [seeded["edge-a", m1].uid(i) for i in range(3)] + [seeded_now.uid(i) for i in range(6)]
    assert kept["edge-b"] == [seeded["edge-b", m1].uid(i) for i in range(2)]

    cuts = {r["node"]: r for r in sql(url, "SELECT * FROM purges")}
    assert cuts["edge-a"]["hits"] == cuts["edge-a"]["chained"] == 12 and cuts["edge-b"]["hits"] == 4
    assert cuts["edge-a"]["cutoff"] == cuts["edge-b"]["cutoff"] == f"{m1:%Y-%m-%d}T00:00:00.000000Z"
    report = verify(url)
    assert report["exit"] == 0 and report["ok"], report
    chains = check_chains(url)
    assert problems_of(url) == {}
    assert (chains["edge-a"].hits, chains["edge-a"].purged_hits, chains["edge-a"].length) == (9, 12, 21)
    assert chains["edge-a"].head == before["edge-a"].head and chains["edge-b"].head == before["edge-b"].head
    assert "nothing to purge" in seized("purge", "--db", url, "--days", str(days)).stdout  # idempotent

    server.request(target="/after-the-purge")  # the chain goes on from its head
    server.wait_rows("path = '/after-the-purge'")
    assert verify(url)["ok"] and problems_of(url) == {}

    # Dropping a month without a purge record is what an attacker with the owner's rights could do: caught.
    tamper(url, f"DROP TABLE hit_rows_{m1:%Y_%m}")
    report = verify(url)
    assert report["exit"] != 0 and not report["ok"]
    assert "edge-a" in problems_of(url)  # its chain no longer links to the cut (edge-b, with no checkpoint
    # and every hit in that month, is indistinguishable from a node that never logged since: issue 11)
    assert server.stop() == 0


def test_hit_rows_refuse_changes_in_every_partition(fresh_server):
    server = fresh_server().start()
    server.request(target="/kept-as-it-is")
    server.wait_rows("path = '/kept-as-it-is'")
    url = server.db_url
    [partition] = [p for p in partitions(url) if sql(url, f"SELECT 1 FROM {p} LIMIT 1")]
    for statement in (f"UPDATE {partition} SET path = '/changed'", f"DELETE FROM {partition}",
                      f"TRUNCATE {partition}", "TRUNCATE hit_rows", "UPDATE hit_rows SET path = '/changed'"):
        with pytest.raises(Exception, match="append-only"):
            sql(url, statement)
    assert [r["path"] for r in server.rows()] == ["/kept-as-it-is"]
    assert server.stop() == 0
