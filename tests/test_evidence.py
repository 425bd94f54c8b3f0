"""Tamper evidence: the hash chain verifies, each kind of tampering with the SQLite file is
detected, checkpoints are signed and checked, and anyone can re-verify with their own code."""

import hashlib
import json
from contextlib import closing
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from commands import fails, seized
from helpers import Server


def independent_verify(db_path, node):
    """The README's recipe, written without any of seized's code."""
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM hits WHERE node = ? ORDER BY id", (node,))]
    prev = "0" * 64
    for row in rows:
        record = {k: v for k, v in row.items() if k not in ("id", "prev_hash", "hash") and v is not None}
        text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256((prev + text).encode("utf-8")).hexdigest()
        if row["prev_hash"] != prev or row["hash"] != digest:
            return row["id"]
        prev = digest
    return None


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """A stopped server's database with 40 hits of varied shapes and its final checkpoint."""
    server = Server(tmp_path_factory.mktemp("chain"), domains=[{"name": "seized-iptv.example"}]).start()
    for i in range(40):
        server.request(["GET", "POST", "HEAD"][i % 3], f"/get.php?username=u{i}&password=p{i}&x=é{i}",
                       headers=[("User-Agent", f"Player/{i} \"quoted\"")], body=b"a=1" if i % 3 == 1 else b"")
    server.wait_rows(count=40)
    assert server.stop() == 0
    return server


def report(db_path) -> dict:
    result = seized("verify", "--db", f"sqlite:///{db_path}", check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def tampered(chained, tmp_path, *statements) -> dict:
    copy = tmp_path / "tampered.db"
    with closing(sqlite3.connect(chained.db_path)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)  # the WAL's content included
    with closing(sqlite3.connect(copy)) as db, db:  # an attacker with the file can drop the append-only triggers
        for trigger in ("hit_rows_no_update", "hit_rows_no_delete", "header_sets_no_update"):
            db.execute(f"DROP TRIGGER {trigger}")
        for statement in statements:
            db.execute(*([statement] if isinstance(statement, str) else statement))
    return report(copy)


def test_an_untouched_chain_verifies(chained):
    result = report(chained.db_path)
    assert result["exit"] == 0 and result["ok"]
    node = result["nodes"][0]
    assert (node["node"], node["hits"], node["first_break"]) == ("test-node", 40, None)
    assert node["checkpoints"][-1]["count"] == 40 and node["checkpoints"][-1]["problem"] is None
    assert independent_verify(chained.db_path, "test-node") is None
    with sqlite3.connect(chained.db_path) as db:
        assert db.execute("SELECT hash FROM hits ORDER BY id DESC LIMIT 1").fetchone()[0] == node["head"]


@pytest.mark.parametrize("statements, broken_id, reason", [
    # The hits are stored in hit_rows and header_sets (the view `hits` reads them): that is what an attacker edits.
    (["UPDATE hit_rows SET client_ip = '203.0.113.9' WHERE id = 17"], 17, "edited"),
    (["UPDATE header_sets SET headers = replace(headers, 'Player', 'Playa') WHERE id = (SELECT header_set FROM hit_rows WHERE id = 5)"],
     5, "edited"),
    (["DELETE FROM hit_rows WHERE id = 20"], 21, "deleted, inserted or moved"),
    (["UPDATE hit_rows SET id = id + 1000 WHERE id > 30", "CREATE TEMP TABLE forged AS SELECT * FROM hits WHERE id = 30",
      "UPDATE forged SET id = 31, uid = 'forged-uid', client_ip = '198.51.100.1'", "INSERT INTO hits SELECT * FROM forged"],
     31, "edited"),  # a row inserted with a copied hash
    (["UPDATE hit_rows SET id = -10 WHERE id = 10", "UPDATE hit_rows SET id = 10 WHERE id = 11",
      "UPDATE hit_rows SET id = 11 WHERE id = -10"],
     10, "deleted, inserted or moved"),
])
def test_each_kind_of_tampering_is_detected(chained, tmp_path, statements, broken_id, reason):
    result = tampered(chained, tmp_path, *statements)
    assert result["exit"] == 1 and not result["ok"]
    first_break = result["nodes"][0]["first_break"]
    assert first_break["id"] == broken_id and reason in first_break["reason"]
    assert independent_verify(tmp_path / "tampered.db", "test-node") == broken_id


def test_a_forged_row_with_a_valid_hash_inserted_mid_chain_is_detected(chained, tmp_path):
    """The forger computes a correct hash for the forged row: the row after it no longer links."""
    with closing(sqlite3.connect(chained.db_path)) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM hits WHERE id = 30").fetchone())
    forged = {**row, "id": 31, "uid": "forged", "client_ip": "198.51.100.1", "prev_hash": row["hash"]}
    record = {k: v for k, v in forged.items() if k not in ("id", "prev_hash", "hash") and v is not None}
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    forged["hash"] = hashlib.sha256((forged["prev_hash"] + text).encode("utf-8")).hexdigest()
    insert = (f"INSERT INTO hits ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})", tuple(forged.values()))
    result = tampered(chained, tmp_path, "UPDATE hit_rows SET id = id + 1000 WHERE id > 30", insert)
    first_break = result["nodes"][0]["first_break"]
    assert result["exit"] == 1 and first_break["id"] == 1031 and "deleted, inserted or moved" in first_break["reason"]


def test_deleting_the_newest_hits_is_caught_by_the_checkpoint(chained, tmp_path):
    result = tampered(chained, tmp_path, "DELETE FROM hit_rows WHERE id > 37")
    node = result["nodes"][0]
    assert result["exit"] == 1 and node["first_break"] is None and node["hits"] == 37
    assert "deleted from its end" in node["checkpoints"][-1]["problem"]


def test_signed_checkpoints(tmp_path):
    key_file = tmp_path / "keys" / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    assert len(public_key) == 64 and oct(key_file.stat().st_mode)[-3:] == "600"
    key_bytes = key_file.read_bytes()
    assert "exists; not overwriting a key" in fails("evidence", "keygen", "--out", str(key_file))
    assert key_file.read_bytes() == key_bytes  # never overwritten
    server = Server(tmp_path / "srv", settings={"signing_key_file": str(key_file), "checkpoint_every_hits": 10})
    server.start()
    try:
        for i in range(25):
            server.request(target=f"/x/{i}")
            if i in (9, 19):  # let each ten be their own batch: checkpoints fall due after a batch
                server.wait_rows(count=i + 1)
        server.wait_rows(count=25)
        token = server.new_token("auditor")
        head = server.api("GET", "/api/v1/evidence/head", token).json()
        assert head[0]["count"] == 25 and head[0]["node"] == "test-node"
        verified = server.api("GET", "/api/v1/evidence/verify", token).json()
        assert verified["ok"]
    finally:
        assert server.stop() == 0
    with sqlite3.connect(server.db_path) as db:
        db.row_factory = sqlite3.Row
        checkpoints = [dict(r) for r in db.execute("SELECT * FROM checkpoints ORDER BY id")]
    assert [c["count"] for c in checkpoints] == [10, 20, 25]  # every 10 hits, and at the clean stop
    for cp in checkpoints:  # checked with the published public key, by code that is not ours
        message = json.dumps({"node": cp["node"], "count": cp["count"], "last_id": cp["last_id"], "head": cp["head"],
                              "at": cp["at"]}, sort_keys=True, separators=(",", ":")).encode()
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(cp["signature"]), message)
        assert cp["public_key"] == public_key
    result = report(server.db_path)
    assert result["ok"] and [c["signature"] for c in result["nodes"][0]["checkpoints"]] == ["valid"] * 3
    with sqlite3.connect(server.db_path) as db:
        db.execute("DROP TRIGGER checkpoints_no_update")
        db.execute("UPDATE checkpoints SET head = ? WHERE count = 20", ("f" * 64,))
    broken = report(server.db_path)
    assert broken["exit"] == 1
    assert [c["signature"] for c in broken["nodes"][0]["checkpoints"]] == ["valid", "invalid", "valid"]
    assert broken["nodes"][0]["checkpoints"][1]["problem"] == "the chain at this position differs from the checkpoint"


def test_hits_journaled_while_the_database_is_locked_join_the_chain(tmp_path):
    server = Server(tmp_path).start()
    try:
        for i in range(5):
            server.request(target=f"/before/{i}")
        server.wait_rows(count=5)
        holder = sqlite3.connect(server.db_path, isolation_level=None, timeout=10)
        holder.execute("BEGIN EXCLUSIVE")
        for i in range(20):
            server.request(target=f"/during/{i}")
        import time
        deadline = time.monotonic() + 30
        while server.health()["journal"]["journaled"] < 25 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.health()["journal"]["journaled"] == 25
        assert len(server.rows("path LIKE '/during/%'")) == 0  # still waiting in the journal
        holder.execute("ROLLBACK")
        holder.close()
        assert len(server.wait_rows(count=25)) == 25
    finally:
        assert server.stop() == 0
    assert report(server.db_path)["ok"]
    assert independent_verify(server.db_path, "test-node") is None
