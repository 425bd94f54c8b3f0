"""`seized db copy`: move a deployment from one store to another (an embedded SQLite node growing
into PostgreSQL, or back), everything that is evidence or configuration, as it is: hits with their
ids, uids and hashes (so every chain verifies on the copy), checkpoints, purge records, the audit
log, journal gaps and offsets, domains, tokens, subjects. Node leases stay behind."""

from __future__ import annotations

from typing import Callable

from .store import Store

TABLES = ("domains", "domain_seeds", "tokens", "subjects", "audit", "checkpoints", "purges", "journal_gaps",
          "journal_progress", "legacy_unhashed", "chain_v1")


async def copy_store(source: Store, target: Store, say: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Copy `source` into `target`, which must be empty; returns the rows copied per table. Stop the
    nodes writing to `source` first: what arrives meanwhile is not copied."""
    filled = [table for table in (*TABLES, "hit_rows") if await target.count_rows(table)]
    if filled:
        raise ValueError(f"the target database is not empty ({', '.join(filled)}): copy into a new one")
    copied = {}
    for table in TABLES:
        copied[table] = 0
        async for rows in source.dump_table(table):
            await target.load_table(table, rows)
            copied[table] += len(rows)
        say(f"{table}: {copied[table]}")
    copied["hits"] = 0
    async for rows in source.dump_hits():
        await target.load_hits(rows)
        copied["hits"] += len(rows)
    say(f"hits: {copied['hits']}")
    for table, count in (*((t, copied[t]) for t in TABLES), ("hit_rows", copied["hits"])):
        found = await target.count_rows(table)
        if found != count:
            raise RuntimeError(f"{table}: {count} rows copied but {found} in the target")
    return copied
