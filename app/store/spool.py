"""The on-disk spool: hits that could not reach the database yet, as NDJSON, fsynced per batch.
Appends go to `current.ndjson`; replay first seals it under a new name, so appends never race it.
Blocking file I/O: call from a worker thread."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from ..record import COLUMNS, as_dict

CURRENT = "current.ndjson"


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, rows: list[tuple]) -> None:
        data = "".join(json.dumps(as_dict(row), ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows).encode("utf-8")
        with self._lock, open(self.directory / CURRENT, "ab") as spool:
            spool.write(data)
            spool.flush()
            os.fsync(spool.fileno())

    def seal(self) -> list[Path]:
        """Close the current file for appends; return every sealed file, oldest first."""
        with self._lock:
            current = self.directory / CURRENT
            if current.exists() and current.stat().st_size > 0:
                current.rename(self.directory / f"{time.time_ns():020d}.ndjson")
                fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the rename itself must survive a crash
                finally:
                    os.close(fd)
        return sorted(p for p in self.directory.glob("*.ndjson") if p.name != CURRENT)

    @staticmethod
    def read(path: Path, chunk: int) -> Iterator[list[tuple]]:
        """Rows of a sealed file in chunks. A torn last line, left by a crash mid-append, is skipped."""
        rows = []
        with open(path, "rb") as spool:
            for line in spool:
                if not line.endswith(b"\n"):
                    break
                row = json.loads(line)
                rows.append(tuple(row.get(c) for c in COLUMNS))  # older spools lack newer columns
                if len(rows) >= chunk:
                    yield rows
                    rows = []
        if rows:
            yield rows

    def size(self) -> int:
        """Bytes waiting to be replayed."""
        return sum(p.stat().st_size for p in self.directory.glob("*.ndjson"))
