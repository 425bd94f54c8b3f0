"""Load that proves durability: keep-alive clients that remember every response they received in
full, the check that each of those is in the log exactly once, and PostgreSQL going away."""

import asyncio
import re
import time

from helpers import POSTGRES, wait_for


def load(port: int, prefix: str, connections: int = 32, until: int = 3000, event_at: int | None = None, event=None,
         seconds: float = 60, done=lambda: False) -> list[str]:
    """Keep-alive clients sending unique paths; returns every path whose response arrived in full.
    `event()` runs once when `event_at` responses have arrived; clients reconnect after errors
    until `done()`."""
    received: list[str] = []
    counter = iter(range(10**9))
    fired = False

    async def client():
        nonlocal fired
        deadline = time.monotonic() + seconds
        while len(received) < until and time.monotonic() < deadline and not done():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                while len(received) < until and time.monotonic() < deadline:
                    path = f"/{prefix}/{next(counter)}"
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n".encode())
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                    length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
                    await asyncio.wait_for(reader.readexactly(length), 10)
                    if head.startswith(b"HTTP/1.1 451"):
                        received.append(path)
                    if event_at is not None and len(received) >= event_at and not fired:
                        fired = True
                        event()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

    async def run():
        await asyncio.gather(*(client() for _ in range(connections)))

    asyncio.run(run())
    return received


def assert_logged_once(server, prefix: str, received: list[str], timeout: float = 60) -> None:
    wait_for(lambda: {r["path"] for r in server.rows(f"path LIKE '/{prefix}/%'")} >= set(received), timeout=timeout)
    paths = [r["path"] for r in server.rows(f"path LIKE '/{prefix}/%'")]
    assert len(paths) == len(set(paths)), "a hit was stored twice"
    assert set(received) <= set(paths)


def block_database(url: str, blocked: bool) -> None:
    """PostgreSQL going away for one node, as a stop or restart looks to it: its connections are
    cut and new ones refused (the test server's other databases, other tests', stay up)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not blocked).lower()}')
        if blocked:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
