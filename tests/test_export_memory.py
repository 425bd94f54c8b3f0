"""A 200,000-row export streams: the server's memory stays flat while it sends far more than that."""

import httpx

from helpers import seed_hits

ROWS = 200_000


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_export_of_200k_rows_streams_in_bounded_memory(fresh_server):
    server = fresh_server(domains=[]).start()
    seed_hits(server.db_path, ROWS)
    token = server.new_token("investigator")
    baseline = rss_bytes(server.process.pid)
    peak, received, lines = baseline, 0, 0
    with httpx.stream("GET", server.admin_url("/api/v1/hits/export"), params={"format": "csv", "node": "seed"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=300) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += len(chunk)
            lines += chunk.count(b"\n")  # not CRLF: a chunk may end between \r and \n
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
    assert server.stop() == 0
