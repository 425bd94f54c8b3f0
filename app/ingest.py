"""The ingest process: moves journal records into the database in big batches. Rows, redaction,
HMAC, GeoIP and the hash chain are built here, in a process of its own, so none of it shares a
core or the GIL with the listeners.

Exactly once: a batch's rows and how far its segment has been read are committed in one
transaction; on restart ingest resumes from there. Uids are fixed in the journal, so a record
that does reach the database twice (a segment copied back, a database restored from a backup) is
recognised and left out.

Never stuck, never silent: a torn or corrupt record is skipped and recorded as a gap, and reading
goes on after it; a database that disappears, is replaced or stops taking writes is noticed
within a second (`database_ok` goes to 0 in the shared counters, readyz degrades) and its hits
stay in the journal until a good database is back."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import time
from pathlib import Path

from . import journal, tsa
from .capture import JOURNAL_FIELDS, JOURNAL_FIELDS_WITHOUT_SERVER_IP, Hit, make_uid
from .clients import classify
from .config import Settings
from .evidence import NODE, chain_rows, checkpoint_message, load_signing_key, public_key_hex, sign
from .clock import StepWatch, clock_state
from .witness import Witness
from .geo import GeoLookup
from .metrics import IngestMetrics
from .process import die_with_parent, quiet_gc, run_async, setup_logging
from .record import RowBuilder, utc_text
from .status import INGEST_FIELDS, Counters
from .store import DuplicateHits, database_identity, open_store

log = logging.getLogger("seized.ingest")
IDLE = 0.05  # seconds between passes when the journal has nothing new
CHECK_DATABASE = 0.5  # seconds between checks that the database file is still the one we write
READ_CAP = 64 * 1024 * 1024  # bytes of a segment read per pass
FIELD_COUNT = len(JOURNAL_FIELDS)
# A record's fields by its length: this version's, or an older version's without server_ip (still in
# a journal at an upgrade). received_at_ns is at the same place in both.
RECORD_LAYOUTS = {FIELD_COUNT: JOURNAL_FIELDS, len(JOURNAL_FIELDS_WITHOUT_SERVER_IP): JOURNAL_FIELDS_WITHOUT_SERVER_IP}
RECEIVED_AT = JOURNAL_FIELDS.index("received_at_ns")
assert all(names.index("received_at_ns") == RECEIVED_AT for names in RECORD_LAYOUTS.values())


class DatabaseUnavailable(Exception):
    pass



class HitDecoder:
    """Journal records back into Hits, with what the listener knew but did not keep (client kind,
    account, device, password) derived again from the request itself; remembered per distinct
    request, as a box repeats the same one all day."""

    LIMIT = 65_536

    def __init__(self):
        self._clients: dict[tuple, object] = {}
        self._headers: dict[bytes, tuple] = {}

    def hit(self, record: tuple) -> Hit:
        names = RECORD_LAYOUTS.get(len(record))
        if names is None:
            raise ValueError(f"a journal record of {len(record)} fields, expected {' or '.join(map(str, RECORD_LAYOUTS))}")
        fields = dict(zip(names, record))
        if names is JOURNAL_FIELDS_WITHOUT_SERVER_IP:
            fields["server_ip"] = None  # written before the listener recorded it
        fields["uid"] = make_uid(fields["received_at_ns"], fields.pop("source"), fields.pop("sequence"))
        fields["duration_ms"] = round(fields["duration_ms"], 3)
        packed = fields["headers"]
        headers = self._headers.get(packed)
        if headers is None:
            if len(self._headers) >= self.LIMIT:
                self._headers.clear()
            headers = self._headers[packed] = journal.unpack_headers(packed)
        fields["headers"] = headers
        if fields["form_body"] is None:
            key = (fields["raw_path"], fields["query"], headers)
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) >= self.LIMIT:
                    self._clients.clear()
                client = self._clients[key] = classify(fields["raw_path"], fields["query"], None, headers)
        else:
            client = classify(fields["raw_path"], fields["query"], fields["form_body"], headers)
        return Hit(**fields, client_kind=client.kind, account=client.account, device=client.device,
                   password=client.password)


class Ingest:
    def __init__(self, settings: Settings, counters: Counters):
        self.settings = settings
        self.counters = counters
        self.metrics = IngestMetrics(counters)
        self.metrics.recall_checkpoint(settings.witness_file, settings.node)
        self.directory = settings.journal_dir
        self.match_key = settings.match_key.get_secret_value().encode() if settings.match_key else None
        self.geo = GeoLookup(settings.geoip_city_db, settings.geoip_asn_db)
        self.decoder = HitDecoder()
        self.builder = RowBuilder(self.match_key, self.geo)
        self.signing_key = load_signing_key(settings.signing_key_file) if settings.signing_key_file else None
        self.witness = Witness(settings.witness_file, settings.witness_urls)
        self.clock_watch = StepWatch()  # steps of the wall clock between checkpoints
        self.store = None
        self.identity = None
        self.progress: dict[str, tuple[int, int]] = {}
        self.heads: dict[str, str] = {}
        self.chain_length: dict[str, int] = {}
        self.unchecked: dict[str, int] = {}
        self.last_checkpoint = time.monotonic()
        self.last_check = 0.0
        self.stopping = False
        self.deadline = float("inf")
        self.problem: str | None = None
        self.unreadable: dict[str, str] = {}  # segment -> the error, logged once
        self.record_size = 700.0  # running mean, to estimate the backlog in hits from its bytes

    # -- the database -------------------------------------------------------------------------

    async def connect(self) -> bool:
        """Open the database if its file is there (never create one here: a database that vanished
        stays vanished until an admin restores it or seized is restarted, and the journal waits)."""
        identity = database_identity(self.settings.db)
        if identity is None:
            self.degrade(f"the database file {self.settings.db} is missing")
            return False
        try:
            # Ten indexes grow with every batch: their hot pages stay in memory (SQLite's default is 2 MiB).
            self.store = await open_store(self.settings.db, busy_timeout=1.0, cache_mib=32)
            self.progress = await self.store.journal_progress()
        except Exception as error:
            await self.disconnect()
            self.degrade(f"cannot open the database: {error}")
            return False
        self.identity = identity
        self.heads.clear()
        self.chain_length.clear()
        self.unchecked.clear()
        self.recover()
        return True

    async def disconnect(self) -> None:
        if self.store is not None:
            try:
                await self.store.close()
            except Exception:
                pass
        self.store = None
        self.identity = None

    async def reload_state(self) -> None:
        """After a failed write, go on from what the database holds, not from memory: a commit whose
        answer was lost with its connection may have stored its rows, chain heads and offsets."""
        self.heads.clear()
        self.chain_length.clear()
        try:
            self.progress = await self.store.journal_progress()
        except Exception:  # unreachable: connect afresh once it is back
            await self.disconnect()

    def check_identity(self) -> None:
        """The file at the database path must still be the one this connection writes."""
        identity = database_identity(self.settings.db)
        if identity is None:
            raise DatabaseUnavailable(f"the database file {self.settings.db} was deleted")
        if identity != self.identity:
            raise DatabaseUnavailable(f"the database file {self.settings.db} was replaced")

    def degrade(self, problem: str) -> None:
        if self.problem != problem:
            log.critical("%s: hits stay in the journal until the database is back", problem)
        self.problem = problem
        self.counters["database_ok"] = 0

    def recover(self) -> None:
        if self.problem is not None:
            log.warning("database usable again (was: %s): ingesting the journal", self.problem)
        self.problem = None
        self.counters["database_ok"] = 1

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self.counters["heartbeat_ns"] = time.time_ns()
            try:
                if self.store is None and not await self.connect():
                    await asyncio.sleep(CHECK_DATABASE)
                    if self.stopping:
                        return
                    continue
                worked = await self.pass_once()
            except DatabaseUnavailable as error:
                self.degrade(str(error))
                await self.disconnect()
                continue
            except Exception as error:  # a write failed (locked, disk full, unwritable, connection lost): retry later
                self.degrade(f"database write failed: {error}")
                await self.reload_state()
                await asyncio.sleep(CHECK_DATABASE)
                if self.stopping:
                    return
                continue
            if self.stopping and (not worked or time.monotonic() > self.deadline):
                return
            if not worked:
                await self.maybe_checkpoint()
                await asyncio.sleep(IDLE)

    async def pass_once(self) -> bool:
        """Read every segment from where ingest left it; True if anything was ingested or removed."""
        now = time.monotonic()
        if now - self.last_check >= CHECK_DATABASE:
            self.check_identity()
            self.last_check = now
        worked = False
        paths = journal.segments(self.directory)
        self.update_backlog(paths)
        for path in paths:
            if self.stopping and worked and time.monotonic() > self.deadline:
                break
            worked |= await self.ingest_segment(path)
        self.update_backlog(paths)
        if worked:
            self.recover()
        return worked

    def update_backlog(self, paths: list[Path]) -> None:
        pending = 0
        for path in paths:
            try:
                pending += max(0, path.stat().st_size - self.progress.get(path.name, (0, 0))[0])
            except FileNotFoundError:
                pass
        self.counters["backlog_bytes"] = pending
        self.counters["backlog_hits"] = math.ceil(pending / self.record_size)
        self.counters["segments"] = len(paths)
        if pending == 0:
            self.counters["oldest_pending_ns"] = 0

    async def ingest_segment(self, path: Path) -> bool:
        name = path.name
        sealed = journal.is_sealed(path)  # decided before reading: what is read after it is complete
        offset, records = self.progress.get(name, (0, 0))
        try:
            with open(path, "rb") as segment:
                size = os.fstat(segment.fileno()).st_size
                if offset >= size:
                    if sealed:
                        await self.finish(path)
                        return True
                    return False
                data = os.pread(segment.fileno(), min(size - offset, READ_CAP), offset)
        except FileNotFoundError:
            return False
        except OSError as error:  # unreadable (permissions, I/O error): kept, and said, never deleted
            if self.unreadable.get(name) != str(error):
                log.critical("cannot read journal segment %s (%s): its hits wait until it can be read", name, error)
            self.unreadable[name] = str(error)
            return False
        self.unreadable.pop(name, None)
        at_end = sealed and offset + len(data) >= size
        batch: list[tuple] = []
        gaps: list[dict] = []
        position = offset
        worked = False
        for start, stop, item in journal.read(data, 0, at_end):
            if isinstance(item, journal.Gap):
                gaps.append({"segment": name, "offset": offset + item.offset, "length": item.length, "reason": item.reason})
                log.error("journal %s: %d bytes at offset %d skipped (%s)", name, item.length, offset + item.offset, item.reason)
            else:
                try:
                    batch.append(journal.decode(item))
                except (ValueError, EOFError, TypeError) as error:
                    gaps.append({"segment": name, "offset": offset + start, "length": stop - start,
                                 "reason": f"undecodable record: {error}"})
            position = offset + stop
            if len(batch) >= self.settings.batch_size:
                records += len(batch)
                await self.commit(name, batch, gaps, position, records)
                batch, gaps, worked = [], [], True
        if batch or gaps or position != offset:
            records += len(batch)
            await self.commit(name, batch, gaps, position, records)
            worked = True
        return worked

    async def commit(self, segment: str, records: list[tuple], gaps: list[dict], position: int, total: int) -> None:
        hits = []
        for record in records:
            try:
                hits.append(self.decoder.hit(record))
            except (ValueError, TypeError, EOFError) as error:
                gaps.append({"segment": segment, "offset": position, "length": 0, "reason": f"unusable record: {error}"})
        if records:
            self.counters["oldest_pending_ns"] = records[-1][RECEIVED_AT]
        rows = self.builder.rows(hits)
        for node in {row[NODE] for row in rows} - self.heads.keys():
            self.heads[node], self.chain_length[node] = await self.store.chain_head(node)
        linked, heads = chain_rows(rows, self.heads)
        self.check_identity()
        previous = self.progress.get(segment, (0, 0))
        started = time.perf_counter()
        try:
            await self.store.ingest_batch(linked, {segment: (position, total)}, gaps)
        except DuplicateHits:
            # Some of these hits are stored already (a segment restored or copied after it was
            # ingested): leave those out and chain the rest. Rare, so not checked up front.
            present = await self.store.existing_uids([row[0] for row in rows])
            self.counters.add("duplicates", len(present))
            rows = [row for row in rows if row[0] not in present]
            linked, heads = chain_rows(rows, self.heads)
            await self.store.ingest_batch(linked, {segment: (position, total)}, gaps)
        self.check_identity()  # deleted while committing: the rows went with it; read the segment again later
        self.progress[segment] = (position, total)
        self.heads.update(heads)
        for row in rows:
            self.chain_length[row[NODE]] += 1
            self.unchecked[row[NODE]] = self.unchecked.get(row[NODE], 0) + 1
        self.counters.add("ingested", len(linked))
        if linked:  # (a commit may carry only a gap or the segment's progress)
            self.metrics.committed(len(linked), time.perf_counter() - started)
        self.metrics.unchecked(sum(self.unchecked.values()))
        if gaps:
            self.counters.add("gaps", len(gaps))
            self.counters.add("gap_bytes", sum(g["length"] for g in gaps))
        if records:
            self.record_size = 0.9 * self.record_size + 0.1 * ((position - previous[0]) / len(records))
        pending = max(0, self.counters["backlog_bytes"] - (position - previous[0]))
        self.counters["backlog_bytes"] = pending
        self.counters["backlog_hits"] = math.ceil(pending / self.record_size)
        if any(n >= self.settings.checkpoint_every_hits for n in self.unchecked.values()):
            await self.maybe_checkpoint()

    async def finish(self, path: Path) -> None:
        """A sealed segment read to its end, every row committed: delete it."""
        self.check_identity()
        path.unlink(missing_ok=True)
        await self.store.forget_segment(path.name)
        self.progress.pop(path.name, None)

    async def maybe_checkpoint(self, force: bool = False) -> None:
        """Record (and sign, with a key) each node's chain head when enough hits or time have passed."""
        if self.store is None:
            return
        due = force or time.monotonic() - self.last_checkpoint >= self.settings.checkpoint_every_s
        clock = None
        for node, pending in list(self.unchecked.items()):
            if pending == 0 or not (due or pending >= self.settings.checkpoint_every_hits):
                continue
            if clock is None:  # once a round: a step is the round's, whichever nodes it checkpoints
                # (asks the NTP daemon too, up to 2 s: in a worker thread, so the journal keeps draining)
                clock = json.dumps(await asyncio.to_thread(clock_state, self.clock_watch), sort_keys=True)
            at = utc_text()
            count, head, last_id = self.chain_length[node], self.heads[node], await self.store.last_id_of(node)
            public_key = signature = None
            message = checkpoint_message(node, count, last_id, head, at, clock)
            if self.signing_key is not None:
                public_key = public_key_hex(self.signing_key)
                signature = sign(self.signing_key, message)
            tsa_token = await self.timestamp(message) if self.settings.tsa_url else None
            checkpoint = dict(node=node, at=at, count=count, last_id=last_id, head=head, public_key=public_key,
                              signature=signature, clock=clock, tsa_token=tsa_token)
            await self.store.add_checkpoint(**checkpoint)
            await self.witness.publish(checkpoint)  # after the database has it: the witness never runs ahead
            self.unchecked[node] = 0
            self.counters.add("checkpoints")
            self.metrics.checkpointed(signature is not None)
            self.metrics.unchecked(sum(self.unchecked.values()))
        if due:
            self.last_checkpoint = time.monotonic()

    async def timestamp(self, message: bytes) -> str | None:
        """An RFC 3161 token over the checkpoint's message from `tsa_url` (base64 of the DER response),
        or None: a TSA that is down, slow (5 s at most) or refuses costs the checkpoint its token,
        never the checkpoint or the ingest."""
        try:
            return tsa.encode(await asyncio.to_thread(tsa.request_token, self.settings.tsa_url, message))
        except Exception as error:
            log.warning("checkpoint kept without a timestamp token: %s", error)
            return None

    async def close(self) -> None:
        try:
            await self.maybe_checkpoint(force=True)  # a clean stop leaves a checkpoint of every head
        except Exception as error:
            log.warning("final checkpoint failed: %s", error)
        await self.witness.close()
        await self.disconnect()


async def main(settings: Settings, counters: Counters) -> None:
    ingest = Ingest(settings, counters)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        # Drain what the (already stopped) listeners wrote, within the stop budget; the rest stays
        # in the journal for the next start.
        ingest.stopping = True
        ingest.deadline = time.monotonic() + settings.stop_timeout_s * 0.5

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGHUP, ingest.geo.request_reload)
    quiet_gc()
    try:
        await ingest.run()
    finally:
        await ingest.close()
        left = counters.as_dict()
        log.info("ingest stopped: %d hits ingested, %d bytes (~%d hits) left in the journal for the next start, "
                 "%d gaps", left["ingested"], left["backlog_bytes"], left["backlog_hits"], left["gaps"])


def run(settings: Settings, array) -> None:
    """Process entry point (multiprocessing, spawn)."""
    die_with_parent()
    setup_logging("ingest")
    # Visitors first: under full load ingest yields the CPU to the listeners (the journal holds
    # what it has not reached). Set before its threads start, so all of them inherit it.
    os.nice(settings.ingest_nice)
    counters = Counters(INGEST_FIELDS, array)
    counters.mark_started()
    run_async(main(settings, counters))
