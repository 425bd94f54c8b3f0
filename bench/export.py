"""The CSV export of a million hits: `seized hits export --format csv` run as its own process
against a temporary SQLite file seeded with `--rows` hits (tests/helpers.seed_hits); prints the
seconds, rows/s and the exporting process's peak RSS. `python bench/export.py [--rows 1000000]
[--format csv|ndjson] [--keep DIR] [--quick]`; the last line is `RESULT {json}`."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from app.store.sqlite import SQLiteStore  # noqa: E402
from helpers import seed_hits  # noqa: E402


async def create(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=("csv", "ndjson"))
    parser.add_argument("--keep", type=Path, help="reuse (or leave) the seeded database in this directory")
    parser.add_argument("--quick", action="store_true", help="50,000 rows: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.rows = 50_000
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        db_path = directory / f"export-{args.rows}.db"
        if not db_path.exists():
            asyncio.run(create(db_path))
            started = time.monotonic()
            seed_hits(db_path, args.rows)
            with sqlite3.connect(db_path) as db:  # the export is measured, not the seeding's WAL
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"seeded {args.rows:,} hits in {time.monotonic() - started:.0f} s")
        out = Path(tmp) / f"hits.{args.format}"
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "app", "hits", "export", "--db", f"sqlite:///{db_path.resolve()}",
                        "--format", args.format, "--out", str(out)], check=True, cwd=ROOT)
        seconds = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        with open(out, "rb") as exported:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: exported.read(1 << 20), b""))
        rows = lines - (args.format == "csv")
        print(f"exported {rows:,} rows as {args.format} ({out.stat().st_size / 1e6:.0f} MB) in {seconds:.1f} s: "
              f"{rows / seconds:,.0f} rows/s, {cpu:.1f} s of CPU, peak RSS of the exporting process {peak_kb / 1024:.0f} MB")
        print("RESULT " + json.dumps({"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
                                      "cpu_s": round(cpu, 1), "peak_rss_mb": round(peak_kb / 1024), "format": args.format}))


if __name__ == "__main__":
    main()
