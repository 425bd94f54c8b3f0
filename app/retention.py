"""Retention: hits older than `retention_days` are deleted, each node's oldest stretch at a time,
with a purge record that keeps what remains verifiable. SQLite deletes the rows (SQLiteStore.purge);
PostgreSQL drops whole monthly partitions, so it keeps hits until their month is past the cutoff
(PostgresStore.purge_before)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from .evidence import load_signing_key, purge_signer
from .record import utc_text

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("seized.retention")
DAY = 86_400


async def purge_expired(store: Store, days: int, signing_key_file=None) -> list[dict]:
    """Purge what is older than `days`; each purge record signed with the key, when there is one."""
    cutoff = utc_text(datetime.now(timezone.utc) - timedelta(days=days))
    records = await store.purge_before(cutoff, purge_signer(load_signing_key(signing_key_file)) if signing_key_file else None)
    for record in records:
        log.info("purged %d hits of node %s received before %s (ids %d-%d)", record["hits"], record["node"],
                 record["cutoff"], record["first_id"], record["last_id"])
    return records


async def purge_daily(store: Store, days: int, signing_key_file=None) -> None:
    """The server's own retention task: once at start, then every day."""
    while True:
        try:
            await purge_expired(store, days, signing_key_file)
        except Exception as error:
            log.warning("retention purge failed, trying again tomorrow: %s", error)
        await asyncio.sleep(DAY)
