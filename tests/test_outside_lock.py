"""The management API after an outside lock on the SQLite database: an API call made while another
process holds BEGIN EXCLUSIVE gets a 503 (never a 500), and once the lock is gone everything works
again: the API, its audit rows, and domain changes reaching the listener."""

import sqlite3
import time

import pytest

from commands import seized
from helpers import wait_for


@pytest.mark.backends("sqlite")
def test_an_outside_lock_leaves_the_api_working_once_released(fresh_server):
    server = fresh_server().start()
    token, admin = server.new_token("investigator"), server.new_token("admin")
    assert server.api("GET", "/api/v1/hits", token).status_code == 200
    locker = sqlite3.connect(server.db_path, timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        during = [server.api("GET", "/api/v1/hits", token, timeout=30),
                  server.api("POST", "/api/v1/domains", admin, json={"name": "locked-out.example"}, timeout=30)]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert all(r.status_code == 503 and r.headers.get("retry-after") for r in during), [r.text for r in during]
    # The management process reads meanwhile (its domain follower polls each second): a failed write
    # that left its transaction open would now pin that read's snapshot, and the hit below make
    # every later write fail at once.
    time.sleep(2.5)
    server.request(target="/after-the-lock")
    server.wait_rows("path = '/after-the-lock'")
    for _ in range(3):  # every call after it: working, and audited
        assert server.api("GET", "/api/v1/hits", token).status_code == 200
    audited = server.sql("SELECT COUNT(*) AS n FROM audit WHERE endpoint LIKE '/api/v1/hits%' AND status = 200")[0]["n"]
    assert audited >= 4
    seized("domains", "add", "after-lock.example", "--agency", "Lock Police", "--config", str(server.config_path))
    wait_for(lambda: b"Lock Police" in server.request(host="after-lock.example").body, timeout=20,
             message="the domain added after the lock never reached the listener")
    assert server.api("POST", "/api/v1/domains", admin, json={"name": "after-api.example"}).status_code in (200, 201)


@pytest.mark.backends("sqlite")
def test_a_write_refused_under_a_lock_leaves_no_transaction_open(tmp_path):
    """The store itself, on a real SQLite file: a write that times out under another process's lock
    must not leave its transaction open. If it did, the next read would pin a snapshot: stale reads
    (domain changes never seen), a WAL that only grows, and every later write failing at once."""
    import asyncio

    from app.store.sqlite import SQLiteStore

    async def run():
        store = SQLiteStore(tmp_path / "s.db", busy_timeout=0.3)
        await store.open()
        try:
            locker = sqlite3.connect(tmp_path / "s.db", timeout=0, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(sqlite3.OperationalError):
                await store.add_audit(token_name="t", role="admin", client_ip="127.0.0.1", method="GET",
                                      endpoint="/x", filters="{}", rows=0, status=200)
            assert await store.list_domains() == []  # a read in between
            locker.execute("ROLLBACK")
            locker.close()
            other = SQLiteStore(tmp_path / "s.db")
            await other.open()
            await other.add_domain("elsewhere.example", agency="Other Police")
            await other.close()
            assert [d["name"] for d in await store.list_domains()] == ["elsewhere.example"]  # not a stale snapshot
            await store.add_audit(token_name="t", role="admin", client_ip="127.0.0.1", method="GET",
                                  endpoint="/x", filters="{}", rows=0, status=200)  # writes work again
        finally:
            await store.close()

    asyncio.run(run())
