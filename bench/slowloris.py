"""Slow clients at scale: N slowloris connections (each sends a request head one byte every few
seconds and never finishes it) held open against `seized serve`, while a normal client asks for the
notice every 0.2 s once they are all open. Prints how long the normal client waited (p50, p99,
max, failures) and how many slow connections were open meanwhile. (That each is closed with 408 at
header_timeout_s and logged is tested in tests/test_limits.py; here the timeout is set past the
ramp, so that all of them are open at once.)

    .venv/bin/python bench/slowloris.py [--connections 20000] [--workers 2] [--ramp 15] [--measure 10]

Loopback only, bounded in count and time. The slow connections come from several client processes
(each process's open-file limit is raised to its hard limit; N above what the limits allow is cut
down and said)."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
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


async def slow_clients(port: int, count: int, ramp: float, hold: float, opened, failed) -> None:
    """Open `count` connections over `ramp` s, each trickling a byte every 2 s until `hold` s have passed."""
    end = time.monotonic() + hold

    async def one(i: int) -> None:
        await asyncio.sleep(ramp * i / count)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=30)
        except (OSError, asyncio.TimeoutError):
            with failed.get_lock():
                failed.value += 1
            return
        with opened.get_lock():
            opened.value += 1
        try:
            writer.write(TRICKLE)
            while time.monotonic() < end:
                await asyncio.sleep(2.0)
                writer.write(b"x")
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))


def slow_process(port: int, count: int, ramp: float, hold: float, opened, failed) -> None:
    raise_limit()
    asyncio.run(slow_clients(port, count, ramp, hold, opened, failed))


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
    parser.add_argument("--ramp", type=float, default=15.0, help="seconds over which the slow connections are opened")
    parser.add_argument("--measure", type=float, default=10.0, help="seconds the normal client is timed, all open")
    args = parser.parse_args()
    hard = raise_limit()
    per_process = max(1, hard - 200)
    processes = max(2, -(-args.connections // per_process))
    hold = args.ramp + 30 + args.measure
    with tempfile.TemporaryDirectory() as work:
        server = Seized(Path(work), serve_options(), workers=args.workers)
        # Held open for the measurement: the head timeout (default 10 s) is set past the ramp here.
        server.config.write_text(f"header_timeout_s = {hold + 30}\n" + server.config.read_text())
        server.start()
        try:
            say(f"{args.connections} slowloris connections from {processes} processes over {args.ramp:g} s, "
                f"{args.workers} workers, open-file hard limit {hard}")
            opened, failed = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
            slow = [multiprocessing.Process(target=slow_process, args=(server.public_port, args.connections // processes,
                                                                          args.ramp, hold, opened, failed))
                    for _ in range(processes)]
            for process in slow:
                process.start()
            deadline = time.monotonic() + args.ramp + 30
            while opened.value + failed.value < args.connections and time.monotonic() < deadline:
                time.sleep(0.5)
            at_start = opened.value
            waits, failures = normal_client(server.public_port, args.measure)
            at_end, connect_failed = opened.value, failed.value
            for process in slow:
                process.terminate()
                process.join(timeout=30)
        finally:
            server.stop()
            log = server.log.read_text(errors="replace")
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else float("nan")
    print(f"slow connections open while the normal client was timed: {at_start} (at the end {at_end}) of "
          f"{args.connections}; could not connect: {connect_failed}")
    print(f"normal client: {len(waits)} requests, {failures} failed; wait p50 {statistics.median(waits) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms (target: under 1 s)")
    print(f"server log: {log.count('Too many open files')} 'too many open files'")


if __name__ == "__main__":
    main()
