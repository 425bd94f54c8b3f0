"""Retention: hits older than `retention_days` are deleted, each node's oldest stretch at a time,
with a purge record that keeps what remains verifiable (see SQLiteStore.purge)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from .record import utc_text

log = logging.getLogger("seized.retention")
DAY = 86_400


async def purge_expired(store, days: int) -> list[dict]:
    cutoff = utc_text(datetime.now(timezone.utc) - timedelta(days=days))
    records = []
    for node in await store.nodes():
        record = await store.purge(node, cutoff)
        if record:
            log.info("purged %d hits of node %s received before %s (ids %d-%d)", record["hits"], node, cutoff,
                     record["first_id"], record["last_id"])
            records.append(record)
    return records


async def purge_daily(store, days: int) -> None:
    """The server's own retention task: once at start, then every day."""
    while True:
        try:
            await purge_expired(store, days)
        except Exception as error:
            log.warning("retention purge failed, trying again tomorrow: %s", error)
        await asyncio.sleep(DAY)
