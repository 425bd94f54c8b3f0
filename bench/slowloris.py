"""Slow clients at scale: N slowloris connections (each sends a request head one byte every few
seconds and never finishes it) held open against `seized serve`, while a normal client asks for the
notice every 0.2 s. Prints how long the normal client waited (p50, p99, max, failures), how many
slow connections were open at once, and what became of them: each should be closed with 408 at
header_timeout_s and logged as a hit with what arrived.

    .venv/bin/python bench/slowloris.py [--connections 20000] [--workers 2] [--hold 8]

Loopback only, bounded in count and time. The slow connections come from several client processes
(each process's open-file limit is raised to its hard limit; N above what the limits allow is cut
down and said). Timed against a server with the default header_timeout_s (10 s)."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Seized, get, say, serve_options  # noqa: E402

TRICKLE = b"GET /slow HTTP/1.1\r\nHost: seized-iptv.example\r\nX-Slow: "


def raise_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def slow_clients(port: int, count: int, hold: float, opened, closed_408) -> None:
    """Open `count` connections (in about 3 s), trickle a byte every 2 s for `hold` s, then wait for the server."""
    async def one(i: int) -> None:
        await asyncio.sleep(3.0 * i / count)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        with opened.get_lock():
            opened.value += 1
        try:
            writer.write(TRICKLE)
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                await asyncio.sleep(2.0)
                writer.write(b"x")
                await writer.drain()
            answer = await asyncio.wait_for(reader.read(64), timeout=30)  # the server's 408, at its timeout
            if answer.startswith(b"HTTP/1.1 408"):
                with closed_408.get_lock():
                    closed_408.value += 1
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))


def slow_process(port: int, count: int, hold: float, opened, closed_408) -> None:
    raise_limit()
    asyncio.run(slow_clients(port, count, hold, opened, closed_408))


def normal_client(port: int, seconds: float) -> tuple[list[float], int]:
    waits, failures = [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status = get(port, "/normal-client", timeout=10)[0]
            if status not in (200, 451):
                failures += 1
        except OSError:
            failures += 1
        waits.append(time.monotonic() - started)
        time.sleep(0.2)
    return waits, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=8.0, help="seconds each slow connection keeps trickling")
    args = parser.parse_args()
    hard = raise_limit()
    per_process = max(1, hard - 200)
    processes = -(-args.connections // per_process)
    with tempfile.TemporaryDirectory() as work:
        server = Seized(Path(work), serve_options(), workers=args.workers).start()
        try:
            say(f"{args.connections} slowloris connections from {processes} processes, {args.workers} workers, "
                f"open-file hard limit {hard}")
            opened, closed_408 = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
            slow = [multiprocessing.Process(target=slow_process, args=(server.public_port, args.connections // processes,
                                                                          args.hold, opened, closed_408))
                    for _ in range(processes)]
            for process in slow:
                process.start()
            time.sleep(3.5)  # all opened
            waits, failures = normal_client(server.public_port, args.hold - 3.5)
            held = opened.value
            for process in slow:
                process.join(timeout=120)
            time.sleep(3)  # the ingest catches up
        finally:
            server.stop()
            log = server.log.read_text(errors="replace")
        with sqlite3.connect(Path(work) / "seized.db") as db:
            logged = db.execute("SELECT COUNT(*) FROM hits WHERE path = '/slow' AND status = 408").fetchone()[0]
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else float("nan")
    print(f"slow connections open at once: {held} of {args.connections}; answered 408 at the head timeout: "
          f"{closed_408.value}")
    print(f"normal client: {len(waits)} requests, {failures} failed; wait p50 {statistics.median(waits) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms (target: under 1 s)")
    print(f"logged as hits with status 408: {logged}; server log: {log.count('Too many open files')} 'too many open files'")


if __name__ == "__main__":
    main()
