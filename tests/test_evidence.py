"""Tamper evidence: the hash chain verifies, each kind of tampering with the SQLite file is
detected, checkpoints are signed and checked, and anyone can re-verify with their own code."""

import hashlib
import http.server
import json
import threading
from contextlib import closing
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chain_check import record_hash
from commands import fails, seized
from helpers import Server, sql, tamper, wait_for


def independent_verify(db_path, node):
    """The README's recipe (chain_check.record_hash), written without any of seized's code."""
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM hits WHERE node = ? ORDER BY id", (node,))]
    prev = "0" * 64
    for row in rows:
        digest = record_hash(prev, row)
        if row["prev_hash"] != prev or row["hash"] != digest:
            return row["id"]
        prev = digest
    return None


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """A stopped server's database with 40 hits of varied shapes and its final checkpoint."""
    server = Server(tmp_path_factory.mktemp("chain"), domains=[{"name": "seized-iptv.example"}]).start()
    try:
        for i in range(40):
            server.request(["GET", "POST", "HEAD"][i % 3], f"/get.php?username=u{i}&password=p{i}&x=é{i}",
                           headers=[("User-Agent", f"Player/{i} \"quoted\"")], body=b"a=1" if i % 3 == 1 else b"")
        server.wait_rows(count=40)
    finally:
        assert server.stop() == 0
    return server


def report(database, *options) -> dict:
    """`seized verify` of a database (a URL, or an SQLite file's path; `options`: e.g. --config, for
    the signing key it trusts)."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    result = seized("verify", "--db", url, *options, check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def tampered(chained, tmp_path, *statements, options=(), name="tampered.db") -> dict:
    copy = tmp_path / name
    with closing(sqlite3.connect(chained.db_path)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)  # the WAL's content included
    with closing(sqlite3.connect(copy)) as db, db:  # an attacker with the file can drop the append-only triggers
        for trigger in ("hit_rows_no_update", "hit_rows_no_delete", "header_sets_no_update", "checkpoints_no_update",
                        "checkpoints_no_delete"):
            db.execute(f"DROP TRIGGER {trigger}")
        for statement in statements:
            db.execute(*([statement] if isinstance(statement, str) else statement))
    return report(copy, *options)


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
    forged["hash"] = record_hash(forged["prev_hash"], forged)
    insert = (f"INSERT INTO hits ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})", tuple(forged.values()))
    result = tampered(chained, tmp_path, "UPDATE hit_rows SET id = id + 1000 WHERE id > 30", insert)
    first_break = result["nodes"][0]["first_break"]
    assert result["exit"] == 1 and first_break["id"] == 1031 and "deleted, inserted or moved" in first_break["reason"]


def test_a_hit_without_a_hash_inside_the_chain_is_a_break(chained, tmp_path):
    inside = tampered(chained, tmp_path, "UPDATE hit_rows SET prev_hash = NULL, hash = NULL WHERE id = 20", name="inside.db")
    node = inside["nodes"][0]
    assert inside["exit"] == 1 and not inside["ok"]
    assert node["first_break"] == {"id": 20, "reason": "a hit without a hash inside the chain"}
    assert node["hits_before_chain"] == 0
    # Only hits the database recorded as stored before it had the chain (legacy_unhashed, written
    # by the migration) pass as such: in a database that had the chain from its first hit, the first
    # hit without its hashes is a break too.
    first = tampered(chained, tmp_path, "UPDATE hit_rows SET prev_hash = NULL, hash = NULL WHERE id = 1", name="first.db")
    node = first["nodes"][0]
    assert first["exit"] == 1 and not first["ok"] and node["hits_before_chain"] == 0
    assert node["first_break"] == {"id": 1, "reason": "a hit without a hash inside the chain"}
    assert node["hits"] == 0  # chained hits verified before the break: none


def test_an_unhashed_hit_forged_before_the_start_of_the_chain_is_reported(chained, tmp_path):
    result = tampered(chained, tmp_path, "CREATE TEMP TABLE forged AS SELECT * FROM hits WHERE id = 1",
                      "UPDATE forged SET id = 0, uid = 'forged-uid', client_ip = '198.51.100.1', prev_hash = NULL, hash = NULL",
                      "INSERT INTO hits SELECT * FROM forged")
    with closing(sqlite3.connect(tmp_path / "tampered.db")) as db:
        if db.execute("SELECT client_ip FROM hits ORDER BY id LIMIT 1").fetchone() != ("198.51.100.1",):
            pytest.fail("the forged hit is not the first of the tampered copy")  # not the expected failure
    assert result["exit"] == 1 and not result["ok"]


def test_a_row_with_an_id_below_one_is_outside_the_chain(chained, tmp_path):
    lowest = -(2**63)  # the lowest id SQLite takes; seized never gives one below 1
    result = tampered(chained, tmp_path, "CREATE TEMP TABLE forged AS SELECT * FROM hits WHERE id = 40",
                      f"UPDATE forged SET id = {lowest}, uid = 'forged-low', client_ip = '198.51.100.2'",
                      "INSERT INTO hits SELECT * FROM forged")
    assert result["exit"] == 1 and not result["ok"]
    assert result["nodes"][0]["first_break"] == {"id": lowest, "reason": "an id below 1, which seized never gives: a row outside the chain"}


def test_deleting_the_newest_hits_is_caught_by_the_checkpoint(chained, tmp_path):
    result = tampered(chained, tmp_path, "DELETE FROM hit_rows WHERE id > 37")
    node = result["nodes"][0]
    assert result["exit"] == 1 and node["first_break"] is None and node["hits"] == 37
    assert "deleted from its end" in node["checkpoints"][-1]["problem"]


def test_signed_checkpoints(tmp_path, fresh_server):
    key_file = tmp_path / "keys" / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    assert len(public_key) == 64 and oct(key_file.stat().st_mode)[-3:] == "600"
    key_bytes = key_file.read_bytes()
    assert "exists; not overwriting a key" in fails("evidence", "keygen", "--out", str(key_file))
    assert key_file.read_bytes() == key_bytes  # never overwritten
    server = fresh_server(domains=[], signing_key_file=str(key_file), checkpoint_every_hits=10).start()
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
    assert server.stop() == 0
    checkpoints = server.sql("SELECT * FROM checkpoints ORDER BY id")
    assert [c["count"] for c in checkpoints] == [10, 20, 25]  # every 10 hits, and at the clean stop
    for cp in checkpoints:  # checked with the published public key, by code that is not ours
        signed = {"node": cp["node"], "count": cp["count"], "last_id": cp["last_id"], "head": cp["head"], "at": cp["at"],
                  "clock": cp["clock"]}  # the clock record (JSON text) is signed with the rest
        message = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(cp["signature"]), message)
        assert cp["public_key"] == public_key
    result = report(server.db_url)
    assert result["ok"] and [c["signature"] for c in result["nodes"][0]["checkpoints"]] == ["valid"] * 3
    tamper(server.db_url, ("UPDATE checkpoints SET head = ? WHERE count = 20", ("f" * 64,)))
    broken = report(server.db_url)
    assert broken["exit"] == 1
    assert [c["signature"] for c in broken["nodes"][0]["checkpoints"]] == ["valid", "invalid", "valid"]
    assert broken["nodes"][0]["checkpoints"][1]["problem"] == "the chain at this position differs from the checkpoint"


def test_a_pinned_signer_refuses_unsigned_checkpoints_and_other_signers(tmp_path, fresh_server):
    key_file, other_file = tmp_path / "ours.pem", tmp_path / "theirs.pem"
    ours = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    theirs = seized("evidence", "keygen", "--out", str(other_file)).stdout.strip()
    signed = fresh_server(domains=[], signing_key_file=str(key_file), checkpoint_every_hits=5).start()
    for i in range(12):
        signed.request(target=f"/signed/{i}")
    signed.wait_rows(count=12)
    assert signed.stop() == 0
    url = signed.db_url

    def signatures(*options):
        result = report(url, *options)
        checkpoints = result["nodes"][0]["checkpoints"]
        assert checkpoints, result
        return result["exit"], {c["signature"] for c in checkpoints}
    assert signatures() == (0, {"valid"})  # nothing pinned: a valid signature by any key passes
    assert signatures("--public-key", ours) == (0, {"valid"})
    assert signatures("--public-key", str(key_file)) == (0, {"valid"})  # a PEM file (its public half)
    assert signatures("--public-key", theirs) == (1, {"signed by another key"})
    assert signatures("--public-key", theirs, "--public-key", ours) == (0, {"valid"})  # repeatable
    assert "neither 64 hex digits nor a readable PEM file" in fails("verify", "--db", url, "--public-key", "nonsense")

    # Re-signed by whoever has the database and a key of their own: passes only while nothing is pinned.
    from app.evidence import checkpoint_message, load_signing_key, sign
    theirs_key = load_signing_key(other_file)
    for cp in sql(url, "SELECT * FROM checkpoints"):
        tamper(url, ("UPDATE checkpoints SET public_key = ?, signature = ? WHERE id = ?", (theirs, sign(
            theirs_key, checkpoint_message(cp["node"], cp["count"], cp["last_id"], cp["head"], cp["at"], cp["clock"])), cp["id"])))
    assert signatures() == (0, {"valid"})
    assert signatures("--public-key", ours) == (1, {"signed by another key"})
    # ... or replaced by unsigned ones.
    tamper(url, "UPDATE checkpoints SET public_key = NULL, signature = NULL")
    assert signatures() == (0, {"unsigned"})
    assert signatures("--public-key", ours) == (1, {"unsigned"})


def logged_and_stopped(fresh_server, hits: int, **settings):
    """A server of the test's own that answered `hits` requests and stopped cleanly."""
    server = fresh_server(domains=[], **settings).start()
    for i in range(hits):
        server.request(target=f"/logged/{i}")
    server.wait_rows(count=hits)
    assert server.stop() == 0
    return server


def test_checkpoints_are_append_only_and_only_move_forward(fresh_server):
    url = logged_and_stopped(fresh_server, 12, checkpoint_every_hits=5).db_url
    for statement in ("DELETE FROM checkpoints", "UPDATE checkpoints SET count = 1"):
        with pytest.raises(Exception, match="append-only"):
            sql(url, statement)
    assert report(url)["ok"]
    first = sql(url, "SELECT * FROM checkpoints ORDER BY id LIMIT 1")[0]
    sql(url, "INSERT INTO checkpoints (node, at, count, last_id, head) VALUES (?, ?, ?, ?, ?)",  # an old one again
        (first["node"], first["at"], first["count"], first["last_id"], first["head"]))
    result = report(url)
    assert result["exit"] == 1
    assert result["nodes"][0]["checkpoints"][-1]["problem"] == (
        "goes back from the checkpoint before it: its count and last id must both grow")


def test_each_checkpoint_records_the_clock_as_measured_and_a_clock_set_back_fails(fresh_server):
    import ctypes
    import ctypes.util

    url = logged_and_stopped(fresh_server, 4, checkpoint_every_hits=3).db_url
    checkpoints = sql(url, "SELECT * FROM checkpoints ORDER BY id")
    # The kernel's own answer, read here with adjtimex into a zeroed buffer (modes 0: read only):
    # TIME_ERROR (5) or the STA_UNSYNC bit of `status` (an int at byte 40 of struct timex on 64-bit
    # Linux) mean not synchronised.
    timex = ctypes.create_string_buffer(512)
    state = ctypes.CDLL(ctypes.util.find_library("c")).adjtimex(ctypes.byref(timex))
    status = int.from_bytes(timex.raw[40:44], "little", signed=True)
    synchronised = state != 5 and not status & 0x40
    for cp in checkpoints:
        clock = json.loads(cp["clock"])
        assert set(clock) == {"synchronised", "est_error_us", "max_error_us", "offset_us", "stepped_s", "ntp", "ntp_problem"}
        assert clock["ntp"] is not None or clock["ntp_problem"]  # the NTP daemon's source, or why there is none
        assert clock["synchronised"] is synchronised
        assert clock["stepped_s"] == 0.0  # nobody set the clock during the test
    result = report(url)
    assert result["ok"]
    notes = [c["clock"] for c in result["nodes"][0]["checkpoints"]]
    assert all((note is None) == json.loads(cp["clock"])["synchronised"] for note, cp in zip(notes, checkpoints))

    last = checkpoints[-1]  # a checkpoint made after the clock was set back three days
    sql(url, "INSERT INTO checkpoints (node, at, count, last_id, head, clock) VALUES (?, ?, ?, ?, ?, ?)",
        (last["node"], "2020-01-01T00:00:00.000000Z", last["count"] + 1, last["last_id"] + 1, last["head"],
         json.dumps({"synchronised": True, "stepped_s": -259200.0})))
    result = report(url)
    assert result["exit"] == 1
    made_late = result["nodes"][0]["checkpoints"][-1]
    assert made_late["problem"] == "its time is before the checkpoint before it: the clock was set back"
    assert made_late["clock"] == "the wall clock was set by -259200.000 s since the checkpoint before"


def test_a_witness_file_catches_a_tail_cut_after_the_databases_last_checkpoint(fresh_server, tmp_path):
    server = fresh_server(domains=[], checkpoint_every_hits=5).start()
    for i in range(12):
        server.request(target=f"/witnessed/{i}")
        if i in (4, 9):  # each five their own batch: a checkpoint falls due after each
            server.wait_rows(count=i + 1)
    server.wait_rows(count=12)
    assert server.stop() == 0
    url, witness_file = server.db_url, server.directory / "witness" / "checkpoints.jsonl"
    lines = [json.loads(line) for line in witness_file.read_text().splitlines()]
    stored = sql(url, "SELECT node, count, last_id, head, at, public_key, signature, clock, tsa_token FROM checkpoints ORDER BY id")
    assert lines == stored and len(lines) >= 2  # each checkpoint published as it was made, as stored
    copy = tmp_path / "shipped-witness.jsonl"  # what a log shipper took off the machine
    copy.write_bytes(witness_file.read_bytes())
    assert report(url, "--witness", str(copy))["ok"]

    # Someone with the database cuts its tail: the hits after the second-last checkpoint and the
    # checkpoint after them. The database alone still verifies; the witness does not.
    last, earlier = stored[-1], stored[-2]
    tamper(url, ("DELETE FROM checkpoints WHERE count = ?", (last["count"],)),
         ("DELETE FROM hit_rows WHERE id > ?", (earlier["last_id"],)))
    assert report(url)["ok"]
    result = report(url, "--witness", str(copy))
    assert result["exit"] == 1 and not result["ok"]
    assert [w["problem"] for w in result["nodes"][0]["witness"]][-1] == (
        "the chain ends before this checkpoint: hits were deleted from its end")
    copy.write_text("not a witness line\n")
    assert "not a witness line" in fails("verify", "--db", url, "--witness", str(copy))


def test_checkpoints_are_posted_to_witness_urls_as_they_are_made(fresh_server):
    received, refused = [], []

    class WitnessService(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            (received if self.path == "/take" else refused).append(body)
            self.send_response(204 if self.path == "/take" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WitnessService)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{service.server_address[1]}"
    try:
        server = fresh_server(domains=[], checkpoint_every_hits=3, witness_urls=[f"{base}/take", f"{base}/down"]).start()
        for i in range(7):
            server.request(target=f"/posted/{i}")
        server.wait_rows(count=7)
        assert server.stop() == 0
    finally:
        service.shutdown()
    lines = (server.directory / "witness" / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    assert lines and received == lines  # every checkpoint, as in the file, to the witness that took them
    assert refused == lines  # a witness that fails is tried once and logged; the node goes on
    assert "did not take a checkpoint" in server.log_path.read_text()


@pytest.mark.backends("sqlite")  # SQLite's write lock; PostgreSQL going away: test_durability
def test_hits_journaled_while_the_database_is_locked_join_the_chain(fresh_server):
    server = fresh_server(domains=[]).start()
    for i in range(5):
        server.request(target=f"/before/{i}")
    server.wait_rows(count=5)
    with closing(sqlite3.connect(server.db_path, isolation_level=None, timeout=10)) as holder:  # closed even if a check fails
        holder.execute("BEGIN EXCLUSIVE")
        for i in range(20):
            server.request(target=f"/during/{i}")
        wait_for(lambda: server.health()["journal"]["journaled"] >= 25, timeout=30, message="20 more hits not journaled")
        assert server.health()["journal"]["journaled"] == 25
        assert len(server.rows("path LIKE '/during/%'")) == 0  # still waiting in the journal
        holder.execute("ROLLBACK")
    assert len(server.wait_rows(count=25)) == 25
    assert server.stop() == 0
    assert report(server.db_path)["ok"]
    assert independent_verify(server.db_path, "test-node") is None


# -- hits stored before the chain: a database that schema version 4 (the last without it) left ----

V4_COLUMNS = ("uid", "received_at", "node", "host", "domain", "scheme", "method", "path", "query", "http_version",
              "client_ip", "client_port", "peer_ip", "peer_port", "server_port", "headers", "user_agent", "body_size",
              "body_sha256", "status", "duration_ms", "error", "client_ip_key", "client_kind", "account", "device",
              "password_hmac")


def pre_chain_database(path, count: int, node: str = "test-node") -> None:
    """A database as schema version 4 left it, holding `count` hits of `node`, none of them hashed."""
    from app.store.migrations import SQLITE as MIGRATIONS  # the schema's history: what an old server ran

    with closing(sqlite3.connect(path)) as db, db:
        db.create_function("ip_key", 1, lambda ip: None)  # migration 2 fills it in for existing hits: none yet
        db.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, step in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(step)
            db.execute("INSERT INTO migrations VALUES (?, '2026-01-01T00:00:00.000000Z')", (version,))
        for i in range(count):
            old = {"uid": f"{i:032x}", "received_at": f"2026-01-02T03:04:0{i}.000000Z", "node": node, "host": "old.example",
                   "domain": None, "scheme": "http", "method": "GET", "path": f"/old/{i}", "query": "", "http_version": "1.1",
                   "client_ip": "192.0.2.1", "client_port": 1000 + i, "peer_ip": "192.0.2.1", "peer_port": 1000 + i,
                   "server_port": 80, "headers": '[["host","old.example"]]', "user_agent": None, "body_size": 0,
                   "body_sha256": None, "status": 451, "duration_ms": 0.5, "error": None,
                   "client_ip_key": "00000000000000000000ffffc0000201", "client_kind": "other", "account": None,
                   "device": None, "password_hmac": None}
            db.execute(f"INSERT INTO hits ({', '.join(V4_COLUMNS)}) VALUES ({', '.join('?' * len(V4_COLUMNS))})",
                       [old[c] for c in V4_COLUMNS])


@pytest.mark.backends("sqlite")  # only SQLite databases predate the chain
def test_hits_stored_before_the_chain_are_counted_apart_and_the_chain_starts_after_them(fresh_server, tmp_path):
    server = fresh_server(domains=[])
    pre_chain_database(server.db_path, 3)
    server.start()  # migrates the old database
    for i in range(4):
        server.request(target=f"/chained/{i}")
    server.wait_rows(count=7)
    assert server.stop() == 0
    rows = server.rows()
    assert [(r["path"], r["hash"] is None) for r in rows] == [(f"/old/{i}", True) for i in range(3)] + \
        [(f"/chained/{i}", False) for i in range(4)]
    assert rows[3]["prev_hash"] == "0" * 64  # the first hit stored with the chain starts it

    result = report(server.db_path)
    assert result["exit"] == 0 and result["ok"]
    node = result["nodes"][0]
    assert (node["hits"], node["hits_before_chain"], node["first_break"], node["head"]) == (4, 3, None, rows[-1]["hash"])
    checkpoint = node["checkpoints"][-1]  # the clean stop's: it counts chained hits only
    assert (checkpoint["count"], checkpoint["head"], checkpoint["problem"]) == (4, rows[-1]["hash"], None)

    # Once the chain has started, a hit without a hash is no longer "before the chain": one added
    # through the view (whose triggers allow an INSERT) after the last hit breaks it.
    appended = tampered(server, tmp_path, "CREATE TEMP TABLE forged AS SELECT * FROM hits WHERE id = 7",
                        "UPDATE forged SET id = 8, uid = 'forged-uid', client_ip = '198.51.100.1', prev_hash = NULL, hash = NULL",
                        "INSERT INTO hits SELECT * FROM forged")
    node = appended["nodes"][0]
    assert appended["exit"] == 1 and not appended["ok"] and node["hits_before_chain"] == 3
    assert node["first_break"] == {"id": 8, "reason": "a hit without a hash inside the chain"}


# -- checkpoints signed by a key that is not this server's ----------------------------------------

def sign_checkpoint(key_file, cp: dict) -> str:
    """The signature of a checkpoint row by the key in `key_file`, made with code that is not ours."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    signed = {k: cp[k] for k in ("node", "count", "last_id", "head", "at", "clock") if cp[k] is not None}
    message = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return load_pem_private_key(key_file.read_bytes(), password=None).sign(message).hex()


def test_a_checkpoint_signed_by_another_key_is_not_verified(fresh_server, tmp_path):
    ours, theirs = tmp_path / "keys" / "ours.pem", tmp_path / "keys" / "theirs.pem"
    our_key = seized("evidence", "keygen", "--out", str(ours)).stdout.strip()
    their_key = seized("evidence", "keygen", "--out", str(theirs)).stdout.strip()
    server = fresh_server(domains=[], signing_key_file=str(ours), checkpoint_every_hits=10).start()
    for i in range(12):
        server.request(target=f"/signed/{i}")
        if i == 9:  # the first ten as their own batch: a checkpoint falls due after a batch
            server.wait_rows(count=10)
    server.wait_rows(count=12)
    assert server.stop() == 0
    checkpoints = server.sql("SELECT * FROM checkpoints ORDER BY id")
    assert [(c["count"], c["public_key"]) for c in checkpoints] == [(10, our_key), (12, our_key)]
    # verify trusts the key of the config it is given (the server's own, or another's)
    with_ours = ("--config", str(server.config_path))
    theirs_config = tmp_path / "theirs.toml"
    theirs_config.write_text(server.config_path.read_text().replace(str(ours), str(theirs)))
    with_theirs = ("--config", str(theirs_config))

    def signatures(result):
        return [c["signature"] for c in result["nodes"][0]["checkpoints"]]

    untouched = report(server.db_url, *with_ours)
    assert untouched["exit"] == 0 and untouched["ok"] and signatures(untouched) == ["valid", "valid"]
    elsewhere = report(server.db_url, *with_theirs)  # verified by someone who trusts a different key
    assert elsewhere["exit"] == 1 and not elsewhere["ok"]
    assert signatures(elsewhere) == ["signed by another key"] * 2
    assert [c["problem"] for c in elsewhere["nodes"][0]["checkpoints"]] == [None, None]  # the chain itself is whole

    # The first checkpoint re-signed with their key, their public key stored beside it: a consistent
    # signature, but not by this server's key.
    first = checkpoints[0]
    tamper(server.db_url, ("UPDATE checkpoints SET public_key = ?, signature = ? WHERE id = ?",
                           (their_key, sign_checkpoint(theirs, first), first["id"])))
    resigned = report(server.db_url, *with_ours)
    assert resigned["exit"] == 1 and not resigned["ok"]
    assert signatures(resigned) == ["signed by another key", "valid"]
    # Without a key to trust, verify can only check each signature against the key stored with it
    # (README: "against this server's key when it has one"): the re-signed checkpoint then passes.
    assert signatures(report(server.db_url)) == ["valid", "valid"]
    # Re-signed with their key while still naming ours: the signature does not hold.
    tamper(server.db_url, ("UPDATE checkpoints SET public_key = ? WHERE id = ?", (our_key, first["id"])))
    forged = report(server.db_url, *with_ours)
    assert forged["exit"] == 1 and signatures(forged) == ["invalid", "valid"]
