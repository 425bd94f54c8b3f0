"""Filtered pages over a million hits, through the real management API: median and p99 latency
per query shape. `python bench/query.py [--rows 1000000]` (loopback only)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import Server, seed_hits  # noqa: E402

QUERIES = [
    "limit=100",
    "limit=100&domain=iptv-pirata.example",
    "limit=100&ip=10.3.200.17",
    "limit=100&cidr=10.7.0.0/16",
    "limit=100&cidr=10.7.3.0/24&method=POST",
    "limit=100&port=4242",
    "limit=100&since={mid}&until={mid_plus}",
    "limit=1000&cidr=10.0.0.0/8",
    "limit=100&status=451&node=seed",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp)).start()
        try:
            started = time.monotonic()
            seed_hits(server.db_path, args.rows)
            print(f"seeded {args.rows:,} hits in {time.monotonic() - started:.0f} s")
            token = server.new_token("investigator")
            mid_row = server.rows("id = ?", (args.rows // 2,))[0]
            mid = mid_row["received_at"]
            mid_plus = server.rows("id = ?", (args.rows // 2 + 5000,))[0]["received_at"]
            with httpx.Client(base_url=server.admin_url(""), headers={"Authorization": f"Bearer {token}"}) as client:
                print(f"{'query':52}{'rows':>6}{'median ms':>11}{'p99 ms':>9}")
                for shape in QUERIES:
                    query = shape.format(mid=mid, mid_plus=mid_plus)
                    times, count = [], 0
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        response = client.get(f"/api/v1/hits?{query}")
                        times.append((time.perf_counter() - t0) * 1000)
                        count = len(response.json()["items"])
                    times.sort()
                    print(f"{query:52}{count:>6}{statistics.median(times):>11.1f}{times[int(len(times) * 0.99) - 1]:>9.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
