"""The embedded store: one SQLite file in WAL mode, reached through aiosqlite's thread."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import aiosqlite

from ..record import COLUMNS
from .migrations import SQLITE as MIGRATIONS

DOMAIN_FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes")
INSERT_HIT = f"INSERT OR IGNORE INTO hits ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SQLiteStore:
    def __init__(self, path: Path, busy_timeout: float = 5.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = await aiosqlite.connect(self.path, timeout=self.busy_timeout)
        self.db.row_factory = aiosqlite.Row
        await self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives power loss, not only a crash of this process.
        await self.db.execute("PRAGMA synchronous=FULL")
        await self._migrate()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def _migrate(self) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        await self.db.commit()
        for version, step in enumerate(MIGRATIONS, start=1):
            if await self.schema_version() >= version:
                continue
            try:
                await self.db.executescript(
                    f"BEGIN IMMEDIATE; {step}; INSERT INTO migrations VALUES ({version}, '{now_iso()}'); COMMIT;"
                )
            except sqlite3.OperationalError:
                await self.db.rollback()
                if await self.schema_version() < version:  # not another process racing us: a real failure
                    raise

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT COALESCE(MAX(version), 0) FROM migrations") as cursor:
            return (await cursor.fetchone())[0]

    # -- hits --------------------------------------------------------------------------------

    async def insert_hits(self, rows: list[tuple]) -> int:
        """One transaction; rows already present (same uid, e.g. replayed from the spool) are
        skipped. Returns how many were new."""
        before = self.db.total_changes
        try:
            await self.db.executemany(INSERT_HIT, rows)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return self.db.total_changes - before

    async def latest_hits(self, limit: int) -> list[dict]:
        async with self.db.execute("SELECT * FROM hits ORDER BY id DESC LIMIT ?", (limit,)) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def count_hits(self) -> int:
        async with self.db.execute("SELECT COUNT(*) FROM hits") as cursor:
            return (await cursor.fetchone())[0]

    # -- domains -----------------------------------------------------------------------------

    async def list_domains(self) -> list[dict]:
        async with self.db.execute("SELECT * FROM domains ORDER BY name") as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def add_domain(self, name: str, replace: bool = False, **fields) -> bool:
        """Insert a domain; with `replace`, overwrite its settings. False if it existed and was kept."""
        values = {k: fields.get(k) for k in DOMAIN_FIELDS}
        values["notes"] = values["notes"] or ""
        stamp = now_iso()
        conflict = (
            "DO UPDATE SET " + ", ".join(f"{k}=excluded.{k}" for k in DOMAIN_FIELDS) + ", active=1, updated_at=excluded.updated_at"
            if replace
            else "DO NOTHING"
        )
        cursor = await self.db.execute(
            f"INSERT INTO domains (name, {', '.join(DOMAIN_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(DOMAIN_FIELDS))}, ?, ?) ON CONFLICT(name) {conflict}",
            (name, *values.values(), stamp, stamp),
        )
        await self.db.commit()
        return cursor.rowcount > 0

    async def remove_domain(self, name: str) -> bool:
        cursor = await self.db.execute("DELETE FROM domains WHERE name = ?", (name,))
        await self.db.commit()
        return cursor.rowcount > 0

    async def domains_version(self) -> tuple:
        """Changes whenever the domain list changes; cheap enough to poll."""
        async with self.db.execute("SELECT COUNT(*), MAX(updated_at), group_concat(name) FROM domains") as cursor:
            return tuple(await cursor.fetchone())
