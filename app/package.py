"""Matching packages for ISPs: one ZIP per data request, holding the connections (IP, source
port, UTC time to the millisecond), a manifest that fixes them (hashes, filters, chain heads and
checkpoints), and a README in the case's language. Also the plan that says which ISPs to ask."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import csv
import hashlib
import io
import json
import zipfile

from . import __version__
from .hit_fields import RECORD_FIELDS
from .query import HitFilter

if TYPE_CHECKING:
    from .store import Store

# The package's columns: record fields (hit_fields), under the names an ISP's request form uses,
# each written as `PACKAGE_VALUE` says (the time to the millisecond, absent values empty).
# After what the ISP looks up, what ties each row to the log's hash chain (node, id, uid, hashes)
# and what a CGNAT look-up may also need (the destination port and scheme as received).
PACKAGE_FIELDS = {"client_ip": "client_ip", "client_port": "client_port", "received_at": "timestamp_utc",
                  "domain": "domain", "method": "method", "path": "path", "user_agent": "user_agent",
                  "server_port": "server_port", "scheme": "scheme",
                  "node": "node", "id": "id", "uid": "uid", "prev_hash": "prev_hash", "hash": "hash"}
PACKAGE_COLUMNS = tuple(PACKAGE_FIELDS.values())
PACKAGE_VALUE = {"received_at": lambda at: at[:23] + "Z"}
if not set(PACKAGE_FIELDS) <= set(RECORD_FIELDS):
    raise RuntimeError(f"package columns that are no record field: {set(PACKAGE_FIELDS) - set(RECORD_FIELDS)}")
CLOCK_NOTE = ("Timestamps are the receiving server's system clock, in UTC, when the request head was complete. "
              "What was measured of that clock (the kernel's synchronisation flag and error estimate, any step) "
              "is in each covering checkpoint's `clock`; nothing more is claimed.")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's date: the same rows make the same bytes


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _package_value(name: str, value):
    if value is None:
        return ""
    convert = PACKAGE_VALUE.get(name)
    return convert(value) if convert else value


def _csv_lines(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def write_package(store: Store, filters: HitFilter, target, notice, texts: dict[str, str]) -> dict:
    """Write the ZIP to `target` (a binary file object); return its manifest. Blocking work
    (compression) runs in a worker thread, so a server keeps answering meanwhile."""
    archive = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED)
    digest, count, covered = hashlib.sha256(), 0, {}
    csv_file = archive.open(_member("hits.csv"), "w", force_zip64=True)

    def write(data: bytes) -> None:
        digest.update(data)
        csv_file.write(data)

    def write_rows(rows) -> None:
        write(_csv_lines([_package_value(name, r[name]) for name in PACKAGE_FIELDS] for r in rows))

    await asyncio.to_thread(write, _csv_lines([PACKAGE_COLUMNS]))
    async for rows in store.iter_hits_by_time(filters):
        count += len(rows)
        for row in rows:
            covered[row["node"]] = max(covered.get(row["node"], 0), row["id"])
        await asyncio.to_thread(write_rows, rows)
    await asyncio.to_thread(csv_file.close)

    chains = []
    for node, last_id in sorted(covered.items()):
        # The first checkpoint taken after the last row of this node covers all of them.
        checkpoint = next((cp for cp in await store.checkpoints(node) if cp["last_id"] >= last_id), None)
        chains.append({"node": node, "last_row_id": last_id, "covering_checkpoint": checkpoint})
    readme = texts["package_readme"].format(case_ref=notice.case_ref or "-", agency=notice.agency,
                                            legal_basis=notice.legal_basis or "-").lstrip().encode("utf-8")
    manifest = {  # nothing of the moment it was made: the same rows give the same package, byte for byte
        "tool": f"seized {__version__}",
        "filters": filters.active(),
        "rows": count,
        "files": {"hits.csv": digest.hexdigest(), "README.txt": hashlib.sha256(readme).hexdigest()},
        "columns": list(PACKAGE_COLUMNS),
        "chains": chains,
        "clock": CLOCK_NOTE,
    }

    def finish() -> None:
        archive.writestr(_member("README.txt"), readme)
        archive.writestr(_member("manifest.json"), json.dumps(manifest, indent=2, ensure_ascii=False))
        archive.close()

    await asyncio.to_thread(finish)
    return manifest
