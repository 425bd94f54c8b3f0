"""A 200,000-row export streams: the server's memory stays flat while it sends far more than that."""

import sqlite3
import time

import httpx

from app.capture import Hit
from app.record import to_row
from app.store.sqlite import INSERT_HIT
from helpers import Server

ROWS = 200_000


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def seed(db_path, count: int) -> None:
    """Real rows, made by the same code the writer uses, written straight into the server's SQLite file."""
    start = time.time_ns() - count * 1_000_000
    agent = "Mozilla/5.0 (Linux; Android 11; MAG-Box) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 " * 3
    with sqlite3.connect(db_path, timeout=30) as db:
        for offset in range(0, count, 20_000):
            db.executemany(INSERT_HIT, (to_row(Hit(
                received_at_ns=start + i * 1_000_000, node="seed", host=b"seized-iptv.example", domain="seized-iptv.example",
                scheme="http", method="GET", raw_path=f"/live/user{i}/pass/{i}.ts".encode(), query=b"", http_version="1.1",
                client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", client_port=1024 + i % 60000, peer_ip="127.0.0.1",
                peer_port=40000, server_port=8080, headers=[(b"host", b"seized-iptv.example"), (b"user-agent", agent.encode())],
                status=451)) for i in range(offset, min(count, offset + 20_000))))


def test_export_of_200k_rows_streams_in_bounded_memory(tmp_path):
    server = Server(tmp_path).start()
    try:
        seed(server.db_path, ROWS)
        token = server.new_token("investigator")
        baseline = rss_bytes(server.process.pid)
        peak, received, lines = baseline, 0, 0
        with httpx.stream("GET", server.admin_url("/api/v1/hits/export"), params={"format": "csv", "node": "seed"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=300) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received += len(chunk)
                lines += chunk.count(b"\r\n")
                if received // 4_000_000 != (received - len(chunk)) // 4_000_000:
                    peak = max(peak, rss_bytes(server.process.pid))
        growth = peak - baseline
        print(f"export {received / 1e6:.0f} MB, server RSS growth {growth / 1e6:.1f} MB")
        assert lines == ROWS + 1
        assert received > 100_000_000, "the export should be much larger than the memory bound"
        assert growth < 40_000_000, f"server memory grew by {growth / 1e6:.0f} MB while streaming {received / 1e6:.0f} MB"
        rows_audited = server.api("GET", "/api/v1/audit?limit=5", server.new_token("auditor")).json()["items"]
        export_row = next(row for row in rows_audited if row["endpoint"] == "/api/v1/hits/export")
        assert export_row["rows"] == ROWS and export_row["status"] == 200
    finally:
        assert server.stop() == 0
