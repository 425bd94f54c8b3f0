"""The hit writer. The request path only calls `submit` (never waits on storage); a background
task commits batches, bounded in size and time. Turning hits into rows happens on a worker
thread, so the event loop only moves references. When the queue is full or the database fails,
hits go to the on-disk spool and are replayed once the database takes writes again."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ..capture import Hit
from ..evidence import NODE, chain_rows, checkpoint_message, public_key_hex, sign
from ..record import to_rows
from .sqlite import now_iso
from .spool import Spool

log = logging.getLogger("seized.writer")
REPLAY_EVERY = 1.0  # seconds between attempts to empty the spool


class HitWriter:
    def __init__(self, store, spool: Spool, queue_size: int = 10_000, batch_size: int = 500, batch_interval: float = 0.05,
                 match_key: bytes | None = None, checkpoint_every_hits: int = 10_000, checkpoint_every_s: float = 3600.0,
                 signing_key=None, geo=None):
        self.store = store
        self.geo = geo
        self.match_key = match_key
        # The hash chain (evidence.py): each node's head and length, extended by every insert.
        self.heads: dict[str, str] = {}
        self.chain_length: dict[str, int] = {}
        self._unchecked: dict[str, int] = {}  # hits chained since the node's last checkpoint
        self._last_checkpoint = time.monotonic()
        self.checkpoint_every_hits = checkpoint_every_hits
        self.checkpoint_every_s = checkpoint_every_s
        self.signing_key = signing_key
        self._insert_lock = asyncio.Lock()
        self.spool = spool
        self.queue: asyncio.Queue[Hit] = asyncio.Queue(queue_size)
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.overflow: list[Hit] = []
        self.counters = {"received": 0, "stored": 0, "spooled": 0, "replayed": 0}
        self.storage_ok = True
        self._overflow_waiting = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seized-writer")
        self._tasks: list[asyncio.Task] = []
        self._replay_lock = asyncio.Lock()

    # -- request path ------------------------------------------------------------------------

    def submit(self, hit: Hit) -> None:
        self.counters["received"] += 1
        try:
            self.queue.put_nowait(hit)
        except asyncio.QueueFull:
            self.overflow.append(hit)
            self._overflow_waiting.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what a previous run left in the spool, then start the background tasks."""
        await self.replay()
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="seized-write"),
            asyncio.create_task(self._overflow_loop(), name="seized-overflow"),
            asyncio.create_task(self._replay_loop(), name="seized-replay"),
        ]

    async def close(self) -> None:
        """Drain: every submitted hit ends in the database, or in the spool if the database fails."""
        await self.queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._spool_overflow()
        await self.replay()
        try:
            await self.checkpoint(force=True)  # a clean stop leaves a checkpoint of every head
        except Exception as error:
            log.warning("final checkpoint failed: %s", error)
        self._thread.shutdown(wait=True)
        log.info("hit writer closed: %s, spool bytes left %d", self.counters, self.spool.size())

    @property
    def alive(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    # -- background --------------------------------------------------------------------------

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if self.queue.qsize() < self.batch_size - 1:
                await asyncio.sleep(self.batch_interval)  # let a batch gather
            while len(batch) < self.batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _store(self, rows: list[tuple], replayed: bool = False) -> int:
        """Chain the rows onto their nodes' heads and insert them, all or none. Replayed rows
        that are already stored (a spool file replayed twice) are left out first."""
        async with self._insert_lock:
            if replayed:
                present = await self.store.existing_uids([row[0] for row in rows])
                rows = [row for row in rows if row[0] not in present]
            if not rows:
                return 0
            for node in {row[NODE] for row in rows} - self.heads.keys():
                self.heads[node], self.chain_length[node] = await self.store.chain_head(node)
            linked, heads = await self._run(chain_rows, rows, self.heads)
            await self.store.insert_hits(linked)
            for row in rows:
                self.chain_length[row[NODE]] += 1
                self._unchecked[row[NODE]] = self._unchecked.get(row[NODE], 0) + 1
            self.heads.update(heads)
        if any(n >= self.checkpoint_every_hits for n in self._unchecked.values()):
            try:
                await self.checkpoint()
            except Exception as error:  # the hits are stored; the next checkpoint will cover them
                log.warning("checkpoint failed: %s", error)
        return len(rows)

    async def checkpoint(self, force: bool = False) -> None:
        """Record (and sign, with a key) the head of every node that has new hits since its last
        checkpoint: when enough hits have come, when enough time has passed, or when `force`d."""
        due = force or time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s
        async with self._insert_lock:
            for node, pending in list(self._unchecked.items()):
                if pending == 0 or not (due or pending >= self.checkpoint_every_hits):
                    continue
                at = now_iso()
                count, head, last_id = self.chain_length[node], self.heads[node], await self.store.last_id_of(node)
                public_key = signature = None
                if self.signing_key is not None:
                    public_key = public_key_hex(self.signing_key)
                    signature = sign(self.signing_key, checkpoint_message(node, count, last_id, head, at))
                await self.store.add_checkpoint(node=node, at=at, count=count, last_id=last_id, head=head,
                                                public_key=public_key, signature=signature)
                self._unchecked[node] = 0
            if due:
                self._last_checkpoint = time.monotonic()

    async def _commit(self, batch: list[Hit]) -> None:
        rows = await self._run(to_rows, batch, self.match_key, self.geo)
        try:
            await self._store(rows)
        except Exception as error:
            if self.storage_ok:
                log.error("database write failed (%s): spooling hits until it recovers", error)
            self.storage_ok = False
            await self._spool_rows(rows)
            return
        if not self.storage_ok:
            log.warning("database writes recovered")
        self.storage_ok = True
        self.counters["stored"] += len(rows)

    async def _spool_rows(self, rows: list[tuple]) -> None:
        while True:
            try:
                await self._run(self.spool.append, rows)
                break
            except OSError as error:  # keep the rows in memory and retry: never drop them
                log.critical("cannot write the spool (%s): %d hits held in memory", error, len(rows))
                await asyncio.sleep(1.0)
        self.counters["spooled"] += len(rows)

    async def _overflow_loop(self) -> None:
        while True:
            await self._overflow_waiting.wait()
            await self._spool_overflow()

    async def _spool_overflow(self) -> None:
        self._overflow_waiting.clear()
        while self.overflow:
            batch, self.overflow = self.overflow, []
            await self._spool_rows(await self._run(to_rows, batch, self.match_key, self.geo))

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(REPLAY_EVERY)
            await self.replay()
            try:
                await self.checkpoint()
            except Exception as error:
                log.warning("checkpoint failed: %s", error)

    async def replay(self) -> None:
        """Move spooled rows into the database; a file is deleted only after all its rows are in.
        Rows are keyed by uid, so a file replayed twice (crash before delete) adds nothing twice.
        They join the hash chain now, in the order they are replayed."""
        async with self._replay_lock:
            for path in await self._run(self.spool.seal):
                chunks = Spool.read(path, self.batch_size)
                while (rows := await self._run(next, chunks, None)) is not None:
                    try:
                        self.counters["replayed"] += await self._store(rows, replayed=True)
                    except Exception as error:
                        log.warning("replay from %s paused: %s", path.name, error)
                        self.storage_ok = False
                        return
                    self.storage_ok = True
                await self._run(path.unlink)
                log.info("replayed spool file %s", path.name)
