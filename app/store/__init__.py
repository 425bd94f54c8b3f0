"""Where hits and domains are kept. `open_store(url)` picks the backend from the URL's scheme:
`sqlite:///PATH` (the embedded default) or `postgresql://…` (several nodes, one database). Both
keep the contract in contract.py."""

from __future__ import annotations

import os
from pathlib import Path

from .contract import DuplicateHits, SchemaTooNew, Store

__all__ = ["DuplicateHits", "SchemaTooNew", "Store", "open_store", "is_postgres", "sqlite_path", "database_identity"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def sqlite_path(url: str) -> Path:
    """'sqlite:///data/seized.db' -> data/seized.db (relative); 'sqlite:////abs/x.db' -> /abs/x.db."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"unsupported database URL {url!r}: expected sqlite:///PATH or postgresql://HOST/DATABASE")
    return Path(url[len(prefix):])


def database_identity(url: str) -> object | None:
    """What tells this database from another at the same place, None if it is not there: an SQLite
    file's device and inode (a file deleted or replaced under a running server is noticed); a
    PostgreSQL database is the server's to keep, so its URL."""
    if is_postgres(url):
        return url
    try:
        status = os.stat(sqlite_path(url))
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


async def open_store(url: str, busy_timeout: float = 5.0, cache_mib: int | None = None) -> Store:
    """Open (and migrate) the store at `url`. SQLite only: `busy_timeout`, how long a write waits
    for another writer's lock; `cache_mib`, its page cache for this connection (default 2 MiB)."""
    if is_postgres(url):
        from .postgres import PostgresStore

        store = PostgresStore(url)
    else:
        from .sqlite import SQLiteStore

        store = SQLiteStore(sqlite_path(url), busy_timeout, cache_mib)
    try:
        await store.open()
    except BaseException:
        await store.close()  # an open aiosqlite connection's thread would keep the process alive
        raise
    return store
