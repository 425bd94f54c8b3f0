"""No hit is lost: concurrency, SIGTERM under load, a locked database, a full queue, restarts."""

import asyncio
import json
import os
import signal
import sqlite3
import time

import httpx


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


def wait_for(condition, timeout=60, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def spooled_paths(server):
    paths = []
    for spool in sorted(server.spool_dir.glob("*.ndjson")):
        paths += [json.loads(line)["path"] for line in spool.read_text().splitlines()]
    return paths


def test_2000_concurrent_requests_make_exactly_2000_rows(fresh_server):
    server = fresh_server().start()
    paths = [f"/concurrent/{i}" for i in range(2000)]
    assert sorted(answered_paths(server, paths, concurrency=2000)) == sorted(paths)
    wait_for(lambda: server.health()["counters"]["stored"] >= 2000)
    rows = server.rows("path LIKE '/concurrent/%'")
    assert len(rows) == 2000
    assert sorted(r["path"] for r in rows) == sorted(paths)
    assert len({(r["client_ip"], r["client_port"]) for r in rows}) == 2000
    assert server.health()["counters"] == {"received": 2000, "stored": 2000, "spooled": 0, "replayed": 0}


def test_sigterm_under_load_keeps_every_answered_request(fresh_server):
    server = fresh_server().start()
    answered: list[str] = []

    async def load():
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url(), limits=limits, timeout=30) as client:
            counter = iter(range(10**9))
            stop_sent = asyncio.Event()

            async def worker():
                while True:
                    path = f"/sigterm/{next(counter)}"
                    try:
                        response = await client.get(path, headers={"Host": "seized-iptv.example"})
                    except httpx.HTTPError:
                        if stop_sent.is_set():
                            return
                        continue
                    if response.status_code == 451:
                        answered.append(path)
                    if len(answered) >= 400 and not stop_sent.is_set():
                        stop_sent.set()
                        server.process.send_signal(signal.SIGTERM)
                    if len(answered) > 20_000:  # bounded even if the server never stops
                        return

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(64))), timeout=120)

    asyncio.run(load())
    assert server.process.wait(60) == 0
    assert len(answered) >= 400
    log = server.log_path.read_text()
    assert "hit writer closed" in log

    server.start()  # a restart replays anything the drain had to spool
    stored = wait_for(lambda: (paths := {r["path"] for r in server.rows("path LIKE '/sigterm/%'")}) >= set(answered) and paths,
                      timeout=60)
    assert set(answered) <= stored
    assert len(server.rows("path LIKE '/sigterm/%'")) == len(stored)  # no duplicates either


def lock_database(server) -> sqlite3.Connection:
    """Hold SQLite's write lock, as a stuck writer or a long-running job would."""
    holder = sqlite3.connect(server.db_path, isolation_level=None, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_locked_database_spools_hits_and_replays_them(fresh_server):
    server = fresh_server().start()
    holder = lock_database(server)
    try:
        paths = [f"/locked/{i}" for i in range(150)]
        assert sorted(answered_paths(server, paths, concurrency=50)) == sorted(paths)  # visitors never wait
        wait_for(lambda: server.health()["counters"]["spooled"] >= 150)
        health = server.health()
        assert health["storage_ok"] is False
        assert health["counters"]["stored"] == 0
        assert sorted(spooled_paths(server)) == sorted(paths)
        assert server.rows("path LIKE '/locked/%'") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: len(server.rows("path LIKE '/locked/%'")) == 150)
    wait_for(lambda: server.health()["counters"]["replayed"] == 150 and server.health()["storage_ok"])
    assert spooled_paths(server) == []
    assert sorted(r["path"] for r in server.rows("path LIKE '/locked/%'")) == sorted(paths)


def test_full_queue_and_shutdown_while_locked_lose_nothing(fresh_server):
    server = fresh_server(queue_size=10, batch_size=5).start()
    holder = lock_database(server)
    try:
        paths = [f"/overflow/{i}" for i in range(400)]
        assert sorted(answered_paths(server, paths, concurrency=100)) == sorted(paths)
        assert server.stop() == 0  # drains into the spool: the database is still locked
        assert sorted(spooled_paths(server)) == sorted(paths)
        assert server.rows("path LIKE '/overflow/%'") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    server.start()
    rows = server.wait_rows("path LIKE '/overflow/%'", count=400)
    assert sorted(r["path"] for r in rows) == sorted(paths)
    assert spooled_paths(server) == []


def test_a_spool_file_replayed_twice_adds_nothing_twice(fresh_server):
    server = fresh_server().start()
    response = server.request(target="/once")
    row = server.row_for_port(response.local_port)
    assert server.stop() == 0
    # As if the process died after committing a replayed file but before deleting it.
    columns = {k: v for k, v in row.items() if k != "id"}
    server.spool_dir.mkdir(exist_ok=True)
    (server.spool_dir / "00000000000000000001.ndjson").write_text(json.dumps(columns) + "\n")
    server.start()
    wait_for(lambda: not list(server.spool_dir.glob("*.ndjson")))
    assert len(server.rows("path = '/once'")) == 1
    assert os.path.exists(server.db_path)
