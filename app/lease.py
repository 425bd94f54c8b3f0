"""A node id belongs to one running deployment at a time. Two nodes writing one chain under one id
would interleave it beyond repair, so `seized serve` claims a lease on its id in the database
before it starts, the management process renews it while the node runs, and a second deployment
claiming a live id is refused with the holder's name. A node killed outright frees its id when the
lease runs out; the same deployment (host and data directory) restarting takes it over at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import logging
import socket

from .config import Settings

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("seized.lease")

TTL_S = 30.0
RENEW_EVERY_S = TTL_S / 6


class NodeTaken(SystemExit):
    """Another live deployment holds this node id."""


def holder(settings: Settings) -> str:
    return f"{socket.gethostname()}:{settings.data_dir.resolve()}"


async def claim(store: Store, settings: Settings) -> None:
    taken = await store.claim_node(settings.node, holder(settings), TTL_S)
    if taken is not None:
        raise NodeTaken(f"node id {settings.node!r} is in use by another running seized ({taken['holder']}, lease until "
                        f"{taken['expires_at']}): give this node its own id (--node or SEIZED_NODE), or stop the other")


async def hold(store: Store, settings: Settings) -> None:
    """Renew the lease while this node runs; say so loudly if another deployment took the id."""
    me = holder(settings)
    while True:
        try:
            taken = await store.claim_node(settings.node, me, TTL_S)
            if taken is not None:
                log.critical("node id %r was taken over by %s while this node ran (its lease ran out): two nodes "
                             "now log under one id; stop one of them", settings.node, taken["holder"])
        except Exception as error:  # the database away: the lease is renewed when it is back
            log.warning("could not renew the lease on node id %r: %s", settings.node, error)
        await asyncio.sleep(RENEW_EVERY_S)


async def release(store: Store, settings: Settings) -> None:
    try:
        await store.release_node(settings.node, holder(settings))
    except Exception as error:
        log.warning("could not release node id %r (it frees itself in %g s): %s", settings.node, TTL_S, error)
