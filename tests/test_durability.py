"""No answered hit is lost: concurrency, SIGTERM and SIGKILL under load (of a listener worker, of
the ingest process, of everything), a locked, deleted or restored database, a full disk, torn
journal records. Each load test's client records every response it received in full; afterwards
each of those is in the log exactly once."""

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from contextlib import closing

import resource

import httpx
import pytest

from app import journal
from app.capture import JOURNAL_FIELDS
from helpers import OLD_JOURNAL_FIELDS, Seeded, journal_record as seed_record, seed_journal, wait_for, write_segment
from load import assert_logged_once, block_database, load


def answered_paths(server, paths, concurrency):
    """Send GETs concurrently; return the paths that got a complete notice back."""
    async def run():
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url(), limits=limits, timeout=60,
                                     headers={"Host": "seized-iptv.example"}) as client:
            async def one(path):
                response = await client.get(path)
                return path if response.status_code == 451 and b"seized-iptv.example" in response.content else None
            return [p for p in await asyncio.gather(*(one(p) for p in paths)) if p]
    return asyncio.run(run())


def pids(server) -> dict:
    ready = server.health()
    found = {"workers": [w["pid"] for w in ready["workers"]], "ingest": ready["ingest"]["pid"]}
    assert all(found["workers"]) and found["ingest"], found  # never os.kill(0, ...): that is our own group
    return found


def test_2000_concurrent_requests_make_exactly_2000_rows(fresh_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # conftest raised soft to hard
    if soft != resource.RLIM_INFINITY and soft < 2200:
        pytest.skip(f"2,000 concurrent connections need RLIMIT_NOFILE > ~2,100 (open files); it is {soft} "
                    f"and the hard limit {hard} allows no more: raise it (ulimit -Hn, limits.conf)")
    server = fresh_server().start()
    paths = [f"/concurrent/{i}" for i in range(2000)]
    assert sorted(answered_paths(server, paths, concurrency=2000)) == sorted(paths)
    wait_for(lambda: server.health()["ingest"]["ingested"] >= 2000)
    rows = server.rows("path LIKE '/concurrent/%'")
    assert len(rows) == 2000
    assert sorted(r["path"] for r in rows) == sorted(paths)
    assert len({(r["client_ip"], r["client_port"]) for r in rows}) == 2000
    health = server.health()
    assert health["journal"] == {"received": 2000, "journaled": 2000, "late": 0, "lost": 0, "write_errors": 0, "held": 0}
    assert health["ingest"]["ingested"] == 2000 and health["ingest"]["backlog_bytes"] == 0
    assert server.stop() == 0


def test_sigterm_under_load_keeps_every_answered_request(fresh_server):
    server = fresh_server().start()
    times = {}

    def stop():
        times["sent"] = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        threading.Thread(target=lambda: (server.process.wait(), times.setdefault("exited", time.monotonic()))).start()

    received = load(server.public_port, "sigterm", until=10**6, event_at=400, event=stop,
                    done=lambda: server.process.poll() is not None)
    assert server.process.wait(30) == 0
    assert wait_for(lambda: times.get("exited")) - times["sent"] < 11  # stop_timeout_s is 10
    assert len(received) >= 400
    assert "seized stopped" in server.log_path.read_text()
    server.start()  # whatever the drain did not reach is still in the journal
    assert_logged_once(server, "sigterm", received)
    assert server.stop() == 0


def test_sigkill_of_a_listener_worker_under_load_loses_nothing(fresh_server):
    server = fresh_server(workers=2).start()
    victim = pids(server)["workers"][0]
    received = load(server.public_port, "killworker", until=4000, event_at=1000,
                    event=lambda: os.kill(victim, signal.SIGKILL))
    assert len(received) >= 4000
    assert_logged_once(server, "killworker", received)
    # restarted, and ready again
    ready = wait_for(lambda: (h := server.health())["ready"] and victim not in [w["pid"] for w in h["workers"]] and h)
    assert sum(w["restarts"] for w in ready["workers"]) == 1 and ready["journal"]["lost"] == 0
    assert server.stop() == 0


def test_sigkill_of_the_ingest_process_under_load_loses_nothing(fresh_server):
    server = fresh_server().start()
    victim = pids(server)["ingest"]
    received = load(server.public_port, "killingest", until=4000, event_at=1000,
                    event=lambda: os.kill(victim, signal.SIGKILL))
    assert len(received) >= 4000
    assert_logged_once(server, "killingest", received)
    ready = wait_for(lambda: (h := server.health())["ready"] and h["ingest"]["pid"] != victim and h)
    assert ready["ingest"]["restarts"] == 1
    assert server.stop() == 0


def test_sigkill_of_every_seized_process_under_load_loses_nothing(fresh_server):
    server = fresh_server().start()
    victims = [server.process.pid, *pids(server)["workers"], pids(server)["ingest"]]

    def kill_all():
        for pid in victims:
            os.kill(pid, signal.SIGKILL)

    received = load(server.public_port, "killall", until=10**6, event_at=1500, event=kill_all,
                    done=lambda: server.process.poll() is not None)
    server.process.wait(10)
    assert len(received) >= 1500
    server.start()
    assert_logged_once(server, "killall", received)
    assert server.stop() == 0


def lock_database(server) -> sqlite3.Connection:
    """Hold SQLite's write lock, as a stuck writer or a long-running job would."""
    holder = sqlite3.connect(server.db_path, isolation_level=None, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.mark.backends("sqlite")  # SQLite's write lock; PostgreSQL's outage has its own test
def test_locked_database_keeps_hits_in_the_journal_until_it_is_free(fresh_server):
    server = fresh_server().start()
    holder = lock_database(server)
    try:
        paths = [f"/locked/{i}" for i in range(150)]
        assert sorted(answered_paths(server, paths, concurrency=50)) == sorted(paths)  # visitors never wait
        health = wait_for(lambda: (h := server.health())["ingest"]["database_ok"] is False and h)
        assert health["ready"] is False and health["journal"]["journaled"] == 150, health
        # the backlog is measured on ingest's next pass after the failed one
        health = wait_for(lambda: (h := server.health())["ingest"]["backlog_bytes"] > 0 and h, message="no backlog shown")
        assert health["ingest"]["backlog_hits"] > 0 and health["ingest"]["database_ok"] is False, health
        assert any("database" in problem for problem in health["problems"])
        assert server.rows("path LIKE '/locked/%'") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    rows = server.wait_rows("path LIKE '/locked/%'", count=150)
    assert sorted(r["path"] for r in rows) == sorted(paths)
    health = wait_for(lambda: (h := server.health())["ready"] and h)
    assert health["ingest"]["backlog_bytes"] == 0 and health["ingest"]["ingested"] == 150
    assert server.stop() == 0


@pytest.mark.backends("sqlite")  # SQLite's write lock; PostgreSQL's outage has its own test
def test_shutdown_while_locked_leaves_hits_in_the_journal_for_the_next_start(fresh_server):
    server = fresh_server(stop_timeout_s=3).start()
    holder = lock_database(server)
    try:
        paths = [f"/overflow/{i}" for i in range(400)]
        assert sorted(answered_paths(server, paths, concurrency=100)) == sorted(paths)
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 6
        assert sum(p.stat().st_size for p in journal.segments(server.journal_dir)) > 0
        assert server.rows("path LIKE '/overflow/%'") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    server.start()
    rows = server.wait_rows("path LIKE '/overflow/%'", count=400)
    assert sorted(r["path"] for r in rows) == sorted(paths)
    wait_for(lambda: journal.segments(server.journal_dir) == [] or
             all(p.stat().st_size == 0 for p in journal.segments(server.journal_dir)) or
             server.health()["ingest"]["backlog_bytes"] == 0)
    assert server.stop() == 0


def journal_record(sequence: int, path: str, ns: int | None = None) -> tuple:
    """A record as a listener writes it (JOURNAL_FIELDS order)."""
    values = {"source": "feedface", "sequence": sequence, "received_at_ns": ns or time.time_ns(), "node": "test-node", "host": b"seized-iptv.example",
              "domain": "seized-iptv.example", "scheme": "http", "method": "GET", "raw_path": path.encode(), "query": b"",
              "http_version": "1.1", "client_ip": "192.0.2.7", "client_port": 40000, "peer_ip": "192.0.2.7",
              "peer_port": 40000, "server_ip": "192.0.2.80", "server_port": 8080,
              "headers": journal.pack_headers(((b"host", b"seized-iptv.example"),)),
              "body_size": 0,
              "body_sha256": None, "form_body": None, "status": 451, "duration_ms": 0.1, "error": None}
    return tuple(values[name] for name in JOURNAL_FIELDS)


@pytest.mark.backends("postgres")
def test_postgresql_going_away_under_load_loses_and_repeats_nothing(fresh_server):
    server = fresh_server().start()
    blocked = threading.Event()

    def outage():
        block_database(server.db_url, True)
        blocked.set()
    try:
        received = load(server.public_port, "pg-away", connections=16, until=1500, event_at=300, event=outage)
        assert blocked.is_set()
        health = wait_for(lambda: (h := server.health())["ingest"]["database_ok"] is False and h, message="outage not seen")
        assert health["ready"] is False and any("database" in problem for problem in health["problems"]), health
        assert health["journal"]["lost"] == 0
    finally:
        block_database(server.db_url, False)
    health = wait_for(lambda: (h := server.health())["ready"] and h["ingest"]["backlog_bytes"] == 0 and h, timeout=60,
                      message="the journal was not ingested once PostgreSQL was back")
    assert_logged_once(server, "pg-away", received)
    assert health["ingest"]["ingested"] == health["journal"]["journaled"] >= len(received)
    report = server.api("GET", "/api/v1/evidence/verify", server.new_token("auditor")).json()
    assert report["ok"], report
    assert server.stop() == 0


def test_framing_is_length_and_crc32_as_documented():
    payload = b"\x01\x02payload"
    framed = journal.frame(payload)
    length = len(payload).to_bytes(4, "little")
    import zlib
    assert framed == b"SZJ1" + length + zlib.crc32(length + payload).to_bytes(4, "little") + payload


def test_a_record_ingested_twice_is_stored_once(fresh_server):
    server = fresh_server()
    server.journal_dir.mkdir(parents=True)
    record = journal.encode(journal_record(1, "/twice"))
    (server.journal_dir / "copy.w9.00000000000000000001.jrn").write_bytes(record)
    server.start()
    server.wait_rows("path = '/twice'")
    wait_for(lambda: not (server.journal_dir / "copy.w9.00000000000000000001.jrn").exists())
    # As if a segment were restored from a backup after it had been ingested.
    (server.journal_dir / "copy.w9.00000000000000000002.jrn").write_bytes(record)
    wait_for(lambda: server.health()["ingest"]["duplicates"] == 1)
    assert len(server.rows("path = '/twice'")) == 1
    assert server.stop() == 0


def test_records_an_older_version_left_in_the_journal_are_stored_without_server_ip(fresh_server):
    """At an upgrade the journal may still hold records of the version before server_ip (one field
    fewer), written here from that format's description (tests/helpers.py): ingest stores them, with
    server_ip null, in the chain, and this version's records after them with theirs."""
    server = fresh_server()
    old = Seeded(node="test-node", source="0dd0dd00", start_ns=(time.time_ns() // 1_000_000 - 100) * 1_000_000, count=3)
    write_segment(server.journal_dir, "test-node.w0.00000000000000000001",
                  [seed_record(old.fields(i), OLD_JOURNAL_FIELDS) for i in range(3)])
    server.start()
    rows = server.wait_rows("uid LIKE ?", ("_" * 16 + old.source + "%",), count=3)
    assert [(r["uid"], r["client_ip"], r["client_port"], r["server_ip"], r["server_port"]) for r in rows] == \
        [(old.uid(i), old.client_ip(i), old.client_port(i), None, 8080) for i in range(3)]
    new = seed_journal(server, 2, node="test-node")
    rows = server.rows("uid LIKE ?", ("_" * 16 + new.source + "%",))
    assert [(r["uid"], r["server_ip"]) for r in rows] == [(new.uid(i), new.server_ip(i)) for i in range(2)]
    assert server.sql("SELECT COUNT(*) AS n FROM journal_gaps")[0]["n"] == 0
    report = server.api("GET", "/api/v1/evidence/verify", server.new_token("auditor")).json()
    assert report["ok"] and report["nodes"][0]["hits"] == 5, report
    assert server.stop() == 0


def test_torn_and_corrupt_records_are_skipped_as_recorded_gaps(fresh_server):
    server = fresh_server()
    server.journal_dir.mkdir(parents=True)
    good = [journal.encode(journal_record(100 + i, f"/torn/{i}")) for i in range(4)]
    corrupt = bytearray(good[1])
    corrupt[-3] ^= 0xFF  # a flipped bit in the payload: the checksum no longer matches
    torn = good[2][: len(good[2]) // 2]  # a record cut off mid-write (power loss)
    segment = good[0] + bytes(corrupt) + torn + good[3] + good[3][:10]
    (server.journal_dir / "old.w0.00000000000000000001.jrn").write_bytes(segment)
    (server.journal_dir / "noise.w0.00000000000000000002.jrn").write_bytes(os.urandom(5000))
    server.start()  # nothing in a journal stops the service from starting
    rows = server.wait_rows("path LIKE '/torn/%'", count=2)
    assert sorted(r["path"] for r in rows) == ["/torn/0", "/torn/3"]
    health = wait_for(lambda: (h := server.health())["ingest"]["gaps"] >= 3 and h)
    gaps = [tuple(g.values()) for g in server.sql('SELECT segment, "offset", length, reason FROM journal_gaps ORDER BY id')]
    old = [g for g in gaps if g[0].startswith("old.")]
    assert [(g[1], g[2]) for g in old] == [(len(good[0]), len(corrupt) + len(torn)), (len(segment) - 10, 10)]
    assert sum(g[2] for g in gaps if g[0].startswith("noise.")) == 5000
    assert health["ingest"]["gap_bytes"] == len(corrupt) + len(torn) + 10 + 5000
    server.request(target="/after-torn")  # and the service goes on
    server.wait_rows("path = '/after-torn'")
    assert server.stop() == 0


@pytest.mark.backends("sqlite")  # the database file itself
def test_a_deleted_database_is_noticed_and_its_hits_wait_for_a_good_one(fresh_server):
    server = fresh_server().start()
    for i in range(5):
        server.request(target=f"/gone/before-{i}")
    server.wait_rows("path LIKE '/gone/before-%'", count=5)
    backup = server.directory / "backup.db"
    with closing(sqlite3.connect(server.db_path)) as source, closing(sqlite3.connect(backup)) as target:
        source.backup(target)
    for suffix in ("", "-wal", "-shm"):
        (server.directory / f"seized.db{suffix}").unlink(missing_ok=True)
    deleted = time.monotonic()
    health = wait_for(lambda: (h := server.health())["ingest"]["database_ok"] is False and h, timeout=10, interval=0.05)
    assert time.monotonic() - deleted < 2.5
    assert health["ready"] is False and health["database"] is False
    paths = [f"/gone/during-{i}" for i in range(20)]
    for path in paths:
        assert server.request(target=path).status == 451
    assert server.health()["journal"]["journaled"] == 25
    assert not server.db_path.exists()  # nothing creates an empty database behind the admin's back
    shutil.copy(backup, server.directory / "restore.tmp")
    os.replace(server.directory / "restore.tmp", server.db_path)
    rows = server.wait_rows("path LIKE '/gone/%'", count=25)
    assert sorted(r["path"] for r in rows) == sorted([f"/gone/before-{i}" for i in range(5)] + paths)
    wait_for(lambda: server.health()["ready"])
    assert server.stop() == 0


def mount_tmpfs(path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")


def fill(path) -> None:
    """Take every free byte of the file system at `path`."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 512, 64, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_a_full_disk_still_answers_and_counts_exactly_what_it_could_not_save(fresh_server):
    server = fresh_server(journal_held_limit=30, stop_timeout_s=5)
    mount_tmpfs(server.journal_dir, "1m")
    try:
        server.start()
        for i in range(5):
            assert server.request(target=f"/full/ok-{i}").status == 451
        server.wait_rows("path LIKE '/full/ok-%'", count=5)
        fill(server.journal_dir)
        for i in range(50):  # the disk is full: the notice is still served
            assert server.request(target=f"/full/a-{i}").status == 451
        health = server.health()
        counted = health["journal"]
        assert counted["received"] == 55
        assert counted["journaled"] + counted["held"] + counted["lost"] == 55
        assert counted["held"] <= 30  # memory stays bounded
        assert counted["lost"] >= 50 - 30 - (counted["journaled"] - 5)
        assert health["ready"] is False and any("lost" in p or "held" in p for p in health["problems"])
        (server.journal_dir / "filler").unlink()  # space again: held hits are written, then ingested
        health = wait_for(lambda: (h := server.health())["journal"]["held"] == 0 and h)
        saved = health["journal"]["journaled"] - 5
        rows = server.wait_rows("path LIKE '/full/a-%'", count=saved)
        assert len(rows) == saved == 50 - health["journal"]["lost"]

        fill(server.journal_dir)  # full again, and stopped while hits are held
        for i in range(10):
            assert server.request(target=f"/full/b-{i}").status == 451
        before = server.health()["journal"]
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 10
        log = server.log_path.read_text()
        assert re.search(rf"{before['lost'] + before['held']} hits answered but not saved", log), log[-2000:]
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop(signal.SIGKILL)
        subprocess.run(["umount", "-l", str(server.journal_dir)], check=False)


def test_a_journal_deleted_by_hand_is_noticed_and_a_new_segment_started(fresh_server):
    server = fresh_server().start()
    assert server.request(target="/journal-before").status == 451
    server.wait_rows("path = '/journal-before'")
    shutil.rmtree(server.journal_dir)
    wait_for(lambda: "was deleted or replaced while in use" in server.log_path.read_text(), timeout=10)
    assert server.request(target="/journal-after").status == 451
    assert len(server.wait_rows("path = '/journal-after'")) == 1
    assert server.stop() == 0


@pytest.mark.backends("sqlite")  # the database file itself
def test_a_truncated_shm_file_crashes_only_the_database_readers(fresh_server):
    """SQLite maps `-shm`; truncating it makes a reader die of SIGBUS. The listeners and the
    supervisor hold no database connection: the notice goes on, the readers are restarted."""
    server = fresh_server().start()
    for i in range(5):
        assert server.request(target=f"/shm-before-{i}").status == 451
    server.wait_rows("path LIKE '/shm-before-%'", count=5)
    before = pids(server)
    os.truncate(server.directory / "seized.db-shm", 0)
    paths = [f"/shm-after-{i}" for i in range(20)]
    for path in paths:
        assert server.request(target=path).status == 451
        time.sleep(0.05)
    rows = server.wait_rows("path LIKE '/shm-after-%'", count=20)
    assert sorted(r["path"] for r in rows) == sorted(paths)
    # The management process (which answers /readyz) reads the database too: it may be restarting.
    ready = wait_for(lambda: (h := server.health())["ready"] and h, ignoring=(httpx.HTTPError,))
    assert ready["workers"][0]["pid"] == before["workers"][0]  # the listener never stopped
    assert ready["journal"]["lost"] == 0
    assert server.stop() == 0
