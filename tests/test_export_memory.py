"""A 200,000-row export streams: the server's memory stays flat while it sends far more than that.
The hits go in through the journal and ingest (tests/helpers.seed_journal)."""

import csv
import os

import httpx

from helpers import seed_journal

ROWS = 200_000


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def management_pid(server) -> int:
    """The management process (it serves the admin API, so the export): the one child of the
    supervisor that readyz does not name as a listener worker or the ingest process."""
    health = server.health()
    others = {worker["pid"] for worker in health["workers"]} | {health["ingest"]["pid"]}
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as status:
                parent = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                spawned = b"spawn_main" in cmdline.read()
        except (OSError, ValueError, StopIteration):  # not a process, or gone
            continue
        if parent == server.process.pid and spawned and int(entry) not in others:
            children.append(int(entry))
    assert len(children) == 1, f"expected one management process among the supervisor's children, found {children}"
    return children[0]


def test_export_of_200k_rows_streams_in_bounded_memory(fresh_server):
    server = fresh_server(domains=[]).start()
    seeded = seed_journal(server, ROWS)
    token = server.new_token("investigator")
    # The export is served by the management process, not by the supervisor that server.process
    # is (whose memory the export never touches): the management process's must stay flat.
    management = management_pid(server)
    baseline = rss_bytes(management)
    peak, received, lines = baseline, 0, 0
    head = tail = b""  # the first and last bytes, to compare their rows with what was seeded
    with httpx.stream("GET", server.admin_url("/api/v1/hits/export"), params={"format": "csv", "node": "seed"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=300) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            if len(head) < 65536:
                head += chunk[:65536]
            tail = (tail + chunk)[-65536:]
            received += len(chunk)
            lines += chunk.count(b"\n")  # not CRLF: a chunk may end between \r and \n
            if received // 4_000_000 != (received - len(chunk)) // 4_000_000:
                peak = max(peak, rss_bytes(management))
    growth = peak - baseline
    print(f"export {received / 1e6:.0f} MB, server RSS growth {growth / 1e6:.1f} MB")
    assert lines == ROWS + 1
    # Oldest first: the first rows are the first hits seeded, the last row the last one (no field
    # of these rows holds a line break, so a line is a row).
    header, row0, row1 = csv.reader(head.decode("utf-8").split("\r\n")[:3])
    last = next(csv.reader([tail.decode("utf-8").rstrip("\r\n").rsplit("\r\n", 1)[-1]]))
    for row, i in ((row0, 0), (row1, 1), (last, ROWS - 1)):
        row = dict(zip(header, row))
        assert (row["uid"], row["client_ip"], row["client_port"], row["method"], row["domain"]) == (
            seeded.uid(i), seeded.client_ip(i), str(seeded.client_port(i)), seeded.method(i), seeded.domain(i))
    assert received > 100_000_000, "the export should be much larger than the memory bound"
    assert growth < 40_000_000, f"server memory grew by {growth / 1e6:.0f} MB while streaming {received / 1e6:.0f} MB"
    rows_audited = server.api("GET", "/api/v1/audit?limit=5", server.new_token("auditor")).json()["items"]
    export_row = next(row for row in rows_audited if row["endpoint"] == "/api/v1/hits/export")
    assert export_row["rows"] == ROWS and export_row["status"] == 200
    assert server.stop() == 0
