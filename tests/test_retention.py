"""Retention: old hits are purged in whole chain stretches; what remains still verifies, the
report says what was purged, and the writer's chain goes on from the cut. Each verdict is given
twice: by `seized verify` and by tests/chain_check.py, which knows nothing of seized's code; the
hits are seeded through the journal and the expectations come from what was seeded."""

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from types import SimpleNamespace

import pytest

from chain_check import check_chains, problems_of
from helpers import Server, request, seed_journal, sql, tamper, wait_for

DAY_NS = 86_400 * 10**9


def seized(*args, check=True):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, check=check)


def verify(db) -> dict:
    result = seized("verify", "--db", db, check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def stored_uids(database, node: str) -> list[str]:
    """A database's (URL, or SQLite file's path) uids of a node's hits, in id order."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    return [row["uid"] for row in sql(url, "SELECT uid FROM hits WHERE node = ? ORDER BY id", (node,))]


def tampered(db_path, tmp_path, *statements):
    """A copy of the database, changed by someone who has the file (and so can drop the triggers)."""
    copy = tmp_path / f"tampered-{len(list(tmp_path.glob('tampered-*.db')))}.db"
    with closing(sqlite3.connect(db_path)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    with closing(sqlite3.connect(copy)) as conn, conn:
        for trigger in ("hit_rows_no_update", "hit_rows_no_delete", "purges_no_update", "purges_no_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        for statement in statements:
            conn.execute(statement)
    return copy


@pytest.fixture(scope="module")
def purged(tmp_path_factory):
    """A server of node old-node (stopped), with hits seeded through its journal: 10 of old-node 30
    days old, 30 of `seed` 10 days old, then 20 of `seed` from now; then `seized purge --days 7`.
    `snapshot` is a copy of the database as the purge left it (test_purge_then_verify goes on with
    the server's own)."""
    server = Server(tmp_path_factory.mktemp("purged"), domains=[], settings={"node": "old-node"})
    try:
        yield build_purged(server, tmp_path_factory.mktemp("snapshot") / "purged.db")
    finally:
        code = server.stop()  # a test may have started it again
        assert code == 0


def build_purged(server: Server, snapshot) -> SimpleNamespace:
    server.start()
    old = seed_journal(server, 10, node="old-node", start_ns=time.time_ns() - 30 * DAY_NS)
    older_seed = seed_journal(server, 30, node="seed", start_ns=time.time_ns() - 10 * DAY_NS)
    recent_seed = seed_journal(server, 20, node="seed")
    assert server.stop() == 0
    db = server.db_url
    assert stored_uids(server.db_path, "old-node") == [old.uid(i) for i in range(10)]
    assert stored_uids(server.db_path, "seed") == [older_seed.uid(i) for i in range(30)] + [recent_seed.uid(i) for i in range(20)]
    assert verify(db)["ok"]
    assert problems_of(server.db_path) == {}
    before = check_chains(server.db_path)
    assert (before["old-node"].hits, before["seed"].hits, before["seed"].purges) == (10, 50, [])
    with closing(sqlite3.connect(server.db_path)) as conn:  # the 30th hit of `seed`: where the cut must fall
        (at_cut,) = conn.execute("SELECT hash FROM hits WHERE uid = ?", (older_seed.uid(29),)).fetchone()

    output = seized("purge", "--db", db, "--days", "7").stdout
    assert "nothing to purge" not in output
    with closing(sqlite3.connect(server.db_path)) as source, closing(sqlite3.connect(snapshot)) as target:
        source.backup(target)
    return SimpleNamespace(server=server, db=db, snapshot=snapshot, older_seed=older_seed, recent_seed=recent_seed,
                           before=before, at_cut=at_cut)


def test_purge_then_verify(purged):
    server, db, recent_seed, before = purged.server, purged.db, purged.recent_seed, purged.before
    assert verify(f"sqlite:///{purged.snapshot}") == verify(db)  # nothing but the purge since it was made
    report = verify(db)
    assert report["exit"] == 0 and report["ok"]
    nodes = {n["node"]: n for n in report["nodes"]}
    assert nodes["seed"]["hits"] == 20 and nodes["seed"]["purged"][0]["hits"] == 30

    chains = check_chains(server.db_path)
    assert {node: chain.problems for node, chain in chains.items()} == {"old-node": [], "seed": []}
    seed = chains["seed"]
    # What the seeding says must be left and gone: the 30 old hits of `seed`, every hit of old-node.
    assert stored_uids(server.db_path, "seed") == [recent_seed.uid(i) for i in range(20)]
    assert stored_uids(server.db_path, "old-node") == []
    assert (seed.hits, seed.purged_hits, seed.purged_chained, seed.length) == (20, 30, 30, 50)
    # The cut is where the chain stood after the 30th hit: the head the unpurged chain had there.
    assert seed.purges[0]["head_at_cut"] == purged.at_cut
    assert seed.head == before["seed"].head  # the same chain, its start cut off
    assert (chains["old-node"].hits, chains["old-node"].purged_hits, chains["old-node"].head) == (0, 10, before["old-node"].head)
    assert chains["old-node"].purges[0]["head_at_cut"] == before["old-node"].head
    assert "nothing to purge" in seized("purge", "--db", db, "--days", "7").stdout  # idempotent
    assert problems_of(server.db_path) == {}

    server.start()  # every hit of old-node is gone: its chain must go on from the recorded cut
    for i in range(3):
        server.request(target=f"/after/{i}")
    server.wait_rows("node = 'old-node'", count=3)
    assert server.stop() == 0
    report = verify(db)
    assert report["ok"], report
    old_report = next(n for n in report["nodes"] if n["node"] == "old-node")
    assert old_report["hits"] == 3 and old_report["purged"][0]["hits"] == 10
    assert old_report["checkpoints"][-1]["count"] == 13 and old_report["checkpoints"][-1]["problem"] is None
    chains = check_chains(server.db_path)
    assert all(not chain.problems for chain in chains.values()), {n: c.problems for n, c in chains.items()}
    old_chain = chains["old-node"]
    assert (old_chain.hits, old_chain.purged_hits, old_chain.length) == (3, 10, 13)
    assert old_chain.checkpoints_checked >= 1  # the final checkpoint (count 13) was found on the chain

    with closing(sqlite3.connect(server.db_path)) as conn:
        try:
            conn.execute("DELETE FROM purges")
            raise AssertionError("purge records must be append-only")
        except sqlite3.DatabaseError as error:
            assert "append-only" in str(error)


def test_a_purge_names_the_checkpoint_over_its_cut(purged, tmp_path):
    """Each purge record names the first checkpoint whose chain passes through its cut; verify checks
    that it is there, the first such, and at the cut's head when at the cut (unsigned here: what a
    pinned signer adds is in test_purge_records_are_signed_and_a_forged_one_fails_a_pinned_verify)."""
    cuts = {p["node"]: p for p in sql(f"sqlite:///{purged.snapshot}", "SELECT * FROM purges")}
    checkpoints = {c["id"]: c for c in sql(f"sqlite:///{purged.snapshot}", "SELECT * FROM checkpoints")}
    named = checkpoints[cuts["seed"]["checkpoint_id"]]
    assert named["node"] == "seed" and named["count"] >= cuts["seed"]["chained"]
    reported = {n["node"]: n["purged"][0] for n in verify(f"sqlite:///{purged.snapshot}")["nodes"]}
    assert reported["seed"]["checkpoint_id"] == named["id"] and reported["seed"]["problem"] is None
    other = next(c["id"] for c in checkpoints.values() if c["node"] == "old-node")
    for checkpoint_id, said in ((999, "is not among this node's checkpoints"), (other, "is not among this node's checkpoints")):
        copy = tampered(purged.snapshot, tmp_path, f"UPDATE purges SET checkpoint_id = {checkpoint_id} WHERE node = 'seed'")
        report = verify(f"sqlite:///{copy}")
        problem = {n["node"]: n["purged"][0]["problem"] for n in report["nodes"]}["seed"]
        assert report["exit"] == 1 and said in problem


def first_id(db_path, node: str, offset: int = 0) -> int:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("SELECT id FROM hits WHERE node = ? ORDER BY id LIMIT 1 OFFSET ?", (node, offset)).fetchone()[0]


@pytest.mark.parametrize("change, found", [
    # An edited field of a hit left after the cut.
    (lambda ids: f"UPDATE hit_rows SET client_port = 1 WHERE id = {ids['seed']}", "a field was edited"),
    # The first hits after the cut deleted, with no purge record for them: the chain no longer meets the anchor.
    (lambda ids: f"DELETE FROM hit_rows WHERE node = 'seed' AND id <= {ids['seed+1']}", "the chain does not start at the cut"),
    # A hit in the middle of what remains deleted.
    (lambda ids: f"DELETE FROM hit_rows WHERE id = {ids['seed+5']}", "prev_hash does not match"),
    # The purge record removed: the remaining chain has nothing to start from.
    (lambda ids: "DELETE FROM purges WHERE node = 'seed'", "the chain does not start at 64 zeros"),
    # The purge record's anchor changed.
    (lambda ids: f"UPDATE purges SET head_at_cut = '{'1' * 64}' WHERE node = 'seed'", "the chain does not start at the cut"),
    # The newest hits deleted: the checkpoint of the clean stop gives it away.
    (lambda ids: f"DELETE FROM hit_rows WHERE node = 'seed' AND id >= {ids['seed+18']}", "hits were deleted from its end"),
], ids=["edited", "deleted-after-the-cut", "deleted-in-the-middle", "purge-record-deleted", "anchor-changed", "deleted-at-the-end"])
def test_tampering_after_a_purge_is_caught_by_both_verifiers(purged, tmp_path, change, found):
    ids = {"seed": first_id(purged.snapshot, "seed"), **{f"seed+{n}": first_id(purged.snapshot, "seed", n) for n in (1, 5, 18)}}
    copy = tampered(purged.snapshot, tmp_path, change(ids))
    assert verify(f"sqlite:///{copy}")["exit"] == 1
    problems = problems_of(copy)
    assert list(problems) == ["seed"], problems
    assert any(found in problem for problem in problems["seed"]), problems


def test_the_server_purges_daily_when_configured(fresh_server):
    server = fresh_server(domains=[], retention_days=5).start()  # the purge at start finds nothing yet
    # 45 days old: a month that ended at least 14 days ago, so PostgreSQL (which drops whole months)
    # purges them with a 5-day retention as SQLite does.
    seeded = seed_journal(server, 25, node="seed", start_ns=time.time_ns() - 45 * DAY_NS)
    assert server.stop() == 0
    assert stored_uids(server.db_url, "seed") == [seeded.uid(i) for i in range(25)]
    server.start()  # the first purge runs at start
    wait_for(lambda: server.rows("node = 'seed'") == [], timeout=20, interval=0.2, message="the old hits were not purged")
    response = request(server.public_port, "GET", "/still-logging")
    assert server.row_for_port(response.local_port)["path"] == "/still-logging"
    assert server.stop() == 0
    assert verify(server.db_url)["ok"]
    chains = check_chains(server.db_url)
    assert {node: chain.problems for node, chain in chains.items()} == {"seed": [], "test-node": []}
    assert (chains["seed"].hits, chains["seed"].purged_hits) == (0, 25)
    assert [p["hits"] for p in chains["seed"].purges] == [25]


def test_purge_records_are_signed_and_a_forged_one_fails_a_pinned_verify(fresh_server, tmp_path):
    key_file = tmp_path / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    server = fresh_server(domains=[], signing_key_file=str(key_file)).start()
    seed_journal(server, 10, node="seed", start_ns=time.time_ns() - 45 * DAY_NS)  # in a month wholly past
    recent = seed_journal(server, 6, node="seed")
    assert server.stop() == 0
    url = server.db_url

    output = seized("purge", "--config", str(server.config_path), "--days", "7").stdout  # the config has the key
    assert "node seed: purged 10 hits" in output, output
    [cut] = sql(url, "SELECT * FROM purges")
    assert cut["public_key"] == public_key and len(cut["signature"]) == 128
    audit = sql(url, "SELECT * FROM audit WHERE endpoint = 'purge'")
    assert [(a["role"], a["rows"], json.loads(a["filters"])) for a in audit] == [("cli", 10, {"days": 7})]

    def seed_report(*options):
        result = seized("verify", "--db", url, *options, check=False)
        return result.returncode, next(n for n in json.loads(result.stdout)["nodes"] if n["node"] == "seed")
    code, node = seed_report("--public-key", public_key)
    assert code == 0 and [p["signature"] for p in node["purged"]] == ["valid"]

    # Whoever has the database deletes three more hits and writes a purge record to cover them, with
    # the head at the cut as the chain had it: the chain goes on from there, so only the record's
    # missing signature can give it away.
    kept = sql(url, "SELECT id, hash FROM hits WHERE node = 'seed' ORDER BY id")
    assert len(kept) == 6 and stored_uids(url, "seed") == [recent.uid(i) for i in range(6)]
    tamper(url, ("INSERT INTO purges (node, at, cutoff, first_id, last_id, hits, chained, head_at_cut) "
                 "VALUES ('seed', ?, ?, ?, ?, 3, 3, ?)", (cut["at"], cut["cutoff"], kept[0]["id"], kept[2]["id"], kept[2]["hash"])),
           ("DELETE FROM hit_rows WHERE node = 'seed' AND id <= ?", (kept[2]["id"],)))
    code, node = seed_report()
    assert code == 0 and node["hits"] == 3  # nothing pinned: the forged record is not told apart
    code, node = seed_report("--public-key", public_key)
    assert code == 1 and [p["signature"] for p in node["purged"]] == ["valid", "unsigned"]
