"""Retention: old hits are purged in whole chain stretches; what remains still verifies, the
report says what was purged, and the writer's chain goes on from the cut."""

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

from helpers import request, seed_hits, wait_for

DAY_NS = 86_400 * 10**9


def seized(*args, check=True):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, check=check)


def verify(db) -> dict:
    result = seized("verify", "--db", db, check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def test_purge_then_verify(fresh_server):
    server = fresh_server(domains=[], node="old-node").start()
    for i in range(4):
        server.request(target=f"/before/{i}")
    server.wait_rows(count=4)
    assert server.stop() == 0
    db = f"sqlite:///{server.db_path}"
    # The hits of old-node are made old; the chain must be rebuilt for that, so build it as seed_hits does.
    with closing(sqlite3.connect(server.db_path)) as conn, conn:  # past the append-only trigger, then back
        trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'hit_rows_no_delete'").fetchone()[0]
        conn.execute("DROP TRIGGER hit_rows_no_delete")
        conn.execute("DELETE FROM hit_rows")
        conn.execute(trigger)
        conn.execute("DELETE FROM checkpoints WHERE node = 'old-node'")
    seed_hits(server.db_path, 10, node="old-node", start_ns=time.time_ns() - 30 * DAY_NS)
    seed_hits(server.db_path, 30, node="seed", start_ns=time.time_ns() - 10 * DAY_NS)
    seed_hits(server.db_path, 20, node="seed")
    assert verify(db)["ok"]

    assert "nothing to purge" not in seized("purge", "--db", db, "--days", "7").stdout
    report = verify(db)
    assert report["exit"] == 0 and report["ok"]
    nodes = {n["node"]: n for n in report["nodes"]}
    assert nodes["seed"]["hits"] == 20 and nodes["seed"]["purged"][0]["hits"] == 30
    with closing(sqlite3.connect(server.db_path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hits WHERE node = 'old-node'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM hits WHERE node = 'seed'").fetchone()[0] == 20
    assert "nothing to purge" in seized("purge", "--db", db, "--days", "7").stdout  # idempotent

    server.start()  # every hit of old-node is gone: its chain must go on from the recorded cut
    for i in range(3):
        server.request(target=f"/after/{i}")
    server.wait_rows("node = 'old-node'", count=3)
    assert server.stop() == 0
    report = verify(db)
    assert report["ok"], report
    old = next(n for n in report["nodes"] if n["node"] == "old-node")
    assert old["hits"] == 3 and old["purged"][0]["hits"] == 10
    assert old["checkpoints"][-1]["count"] == 13 and old["checkpoints"][-1]["problem"] is None

    with closing(sqlite3.connect(server.db_path)) as conn, conn:  # tampering with what remains is still caught
        conn.execute("DROP TRIGGER hit_rows_no_update")
        conn.execute("UPDATE hit_rows SET client_port = 1 WHERE id = (SELECT MIN(id) FROM hits WHERE node = 'seed')")
    assert verify(db)["exit"] == 1
    with closing(sqlite3.connect(server.db_path)) as conn:
        try:
            conn.execute("DELETE FROM purges")
            raise AssertionError("purge records must be append-only")
        except sqlite3.DatabaseError as error:
            assert "append-only" in str(error)


def test_the_server_purges_daily_when_configured(fresh_server):
    server = fresh_server(domains=[], retention_days=5).start()  # creates the database
    assert server.stop() == 0
    seed_hits(server.db_path, 25, node="seed", start_ns=time.time_ns() - 9 * DAY_NS)
    server.start()  # the first purge runs at start
    wait_for(lambda: server.rows("node = 'seed'") == [], timeout=20, interval=0.2, message="the old hits were not purged")
    response = request(server.public_port, "GET", "/still-logging")
    assert server.row_for_port(response.local_port)["path"] == "/still-logging"
    assert server.stop() == 0
    assert verify(f"sqlite:///{server.db_path}")["ok"]
