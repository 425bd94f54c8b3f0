"""Bytes on disk per stored hit (table, indexes and header sets, measured with SQLite's dbstat) for
a realistic Xtream API request: 12 headers, 635 bytes raw. The hits go through the real path
(capture.Hit -> record.to_row -> evidence.chain_rows -> SQLiteStore.insert_hits), from `--boxes`
set-top boxes, each with its own address, account and header set, sending the same request again
and again. `python bench/storage.py [--hits 100000] [--boxes 200] [--quick]`; the last line is `RESULT {json}`."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.capture import Hit  # noqa: E402
from app.clients import classify  # noqa: E402
from app.evidence import GENESIS, chain_rows  # noqa: E402
from app.geo import Place  # noqa: E402
from app.record import to_row  # noqa: E402
from app.store.sqlite import SQLiteStore  # noqa: E402

HOST = "line.seized-iptv.example:8080"


def raw_request(box: int) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """(request line target, query, headers) of box `box`'s player_api call; 635 bytes raw."""
    account = f"u{box:03d}"
    target = f"/player_api.php?username={account}&password=p456&action=get_live_streams"
    headers = [
        (b"host", HOST.encode()),
        (b"user-agent", b"IPTVSmartersPlayer/3.1.5 (Linux; U; Android 11; en-US; SM-T505) okhttp/4.9.2"),
        (b"accept", b"application/json, text/plain, */*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"accept-language", b"en-US,en;q=0.9,it;q=0.8"),
        (b"connection", b"keep-alive"),
        (b"cache-control", b"no-cache"),
        (b"pragma", b"no-cache"),
        (b"x-requested-with", b"com.nst.iptvsmarterstvbox"),
        (b"referer", f"http://{HOST}/player_api.php?username={account}&password=p456".encode()),
        (b"cookie", f"PHPSESSID=9f{box:03d}c2d7a1b84e0f6a3d5c8e1b7f; l=en".encode()),
        (b"if-modified-since", b"Sun, 22 Nov 2026 18:02:11 GMT"),
    ]
    return target.encode(), target.partition("?")[2].encode(), headers


def raw_size(target: bytes, headers) -> int:
    head = b"GET " + target + b" HTTP/1.1\r\n" + b"".join(k.title() + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
    return len(head)


class Geo:
    """A stand-in for the GeoIP lookup: every box is somewhere, on some ISP."""

    def __init__(self):
        self.places = {}

    def refresh(self):
        pass

    def place(self, ip):
        if ip not in self.places:
            n = len(self.places)
            self.places[ip] = Place(country="IT", city=["Milan", "Rome", "Naples", "Turin"][n % 4], asn=3269 + n % 7,
                                    as_org=["Telecom Italia S.p.A.", "Vodafone Italia S.p.A.", "Wind Tre S.p.A."][n % 3])
        return self.places[ip]


def make_hits(count: int, boxes: int, start_ns: int) -> list[Hit]:
    rng = random.Random(7)
    requests = [raw_request(box) for box in range(boxes)]
    addresses = [f"{rng.choice([5, 79, 93, 151, 188])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                 for _ in range(boxes)]
    hits, now = [], start_ns
    for _ in range(count):
        box = rng.randrange(boxes)
        target, query, headers = requests[box]
        info = classify(target.partition(b"?")[0], query, None, headers)
        now += rng.randrange(1_000_000, 20_000_000)
        port = rng.randrange(1024, 65536)
        hits.append(Hit(received_at_ns=now, node="node-1", host=HOST.encode(), domain="seized-iptv.example", scheme="http",
                        method="GET", raw_path=target.partition(b"?")[0], query=query, http_version="1.1",
                        client_ip=addresses[box], client_port=port, peer_ip=addresses[box], peer_port=port,
                        server_ip="192.0.2.80", server_port=8080,
                        headers=headers, status=200, duration_ms=rng.randrange(200, 3000) / 1000,
                        client_kind=info.kind, account=info.account, device=info.device, password=info.password))
    return hits


def space(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())


async def fill(path: Path, count: int, boxes: int, batch: int = 500) -> None:
    store = SQLiteStore(path)
    await store.open()
    try:
        hits = make_hits(count, boxes, 1_795_000_000 * 10**9)
        heads = {"node-1": GENESIS}
        geo = Geo()
        for start in range(0, count, batch):
            rows = [to_row(hit, b"match-key", geo) for hit in hits[start:start + batch]]
            linked, heads = chain_rows(rows, heads)
            await store.insert_hits(linked)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 hits: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.hits = 10_000
    target, _, headers = raw_request(0)
    raw = raw_size(target, headers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "storage.db"
        asyncio.run(fill(path, 0, args.boxes))
        empty = space(path)
        asyncio.run(fill(path, args.hits, args.boxes))
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = space(path)
    grown = {name: size - empty.get(name, 0) for name, size in full.items() if size != empty.get(name, 0)}
    total = sum(grown.values())
    print(f"{args.hits:,} hits from {args.boxes} boxes; raw request {raw} bytes, {len(headers)} headers")
    for name, size in sorted(grown.items(), key=lambda item: -item[1]):
        print(f"  {name:28}{size / args.hits:8.1f} bytes/hit")
    per_hit = total / args.hits
    print(f"stored: {per_hit:.1f} bytes per hit (table + indexes + header sets), raw {raw} bytes, ratio {per_hit / raw:.2f}")
    print("RESULT " + json.dumps({"bytes_per_hit": round(per_hit, 1), "raw_bytes": raw, "ratio": round(per_hit / raw, 3),
                                  "hits": args.hits, "boxes": args.boxes}))


if __name__ == "__main__":
    main()
