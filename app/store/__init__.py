"""Where hits and domains are kept. `open_store(url)` picks the backend from the URL."""

from __future__ import annotations

from pathlib import Path

from .sqlite import SQLiteStore


def sqlite_path(url: str) -> Path:
    """'sqlite:///data/seized.db' -> data/seized.db (relative); 'sqlite:////abs/x.db' -> /abs/x.db."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"unsupported database URL {url!r}: expected sqlite:///PATH")
    return Path(url[len(prefix):])


async def open_store(url: str, busy_timeout: float = 5.0, cache_mib: int | None = None) -> SQLiteStore:
    """`busy_timeout`: how long a write waits for another writer's lock before it fails;
    `cache_mib`: SQLite's page cache for this connection (default: SQLite's 2 MiB)."""
    store = SQLiteStore(sqlite_path(url), busy_timeout, cache_mib)
    await store.open()
    return store
