"""The hit journal: append-only segment files where each listener worker writes a hit before its
response's first byte, and from which the ingest process fills the database.

A record on disk:  MAGIC (4) | payload length (4, LE) | CRC-32 of length and payload (4, LE) | payload.
The payload is a `marshal`led tuple (capture.JOURNAL_FIELDS); marshal is the fastest encoder in the
standard library and the journal never leaves this machine or outlives an upgrade undrained (a
record that does not decode is a recorded gap, like a torn one). The magic lets a reader find the
next record after a torn or corrupt one, so one bad record never hides the ones after it.

Segments are named `<node>.<worker>.<start ns>.jrn`. The worker that writes a segment holds an
exclusive flock on it; a segment nobody holds a lock on is sealed (its writer rotated, stopped
or was killed), so the ingest process can tell a record still being written from a torn one
and knows when a segment is finished. Locks vanish with the process, even under SIGKILL."""

from __future__ import annotations

import collections
import fcntl
import logging
import marshal
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger("seized.journal")

MAGIC = b"SZJ1"
HEADER = struct.Struct("<4sII")
LENGTH = struct.Struct("<I")
MAX_RECORD = 16 * 1024 * 1024  # larger "lengths" are corruption, not records
SUFFIX = ".jrn"
MARSHAL_VERSION = 4


def frame(payload: bytes) -> bytes:
    length = LENGTH.pack(len(payload))
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def encode(record: tuple) -> bytes:
    return frame(marshal.dumps(record, MARSHAL_VERSION))


def pack_headers(headers: tuple) -> bytes:
    """A request's header list as one bytes value of its record: a client repeats the same header
    set request after request, so both ends encode and decode each distinct one once."""
    return marshal.dumps(headers, MARSHAL_VERSION)


def unpack_headers(packed: bytes) -> tuple:
    headers = marshal.loads(packed)
    if not isinstance(headers, tuple) or not all(isinstance(pair, tuple) and len(pair) == 2 for pair in headers):
        raise ValueError("a journal record's headers are not (name, value) pairs")
    return headers


# -- writing (listener workers) ---------------------------------------------------------------

class JournalWriter:
    """One worker's journal. `append` returns once the record is in the OS (it survives SIGKILL of
    this process); a background thread fdatasyncs every `fsync_interval` seconds so power loss
    loses at most that window (0: fdatasync inside every append).

    When a write fails (disk full, I/O error, read-only file system) the hit is kept in a bounded
    in-memory list and retried; what that list cannot take is counted as lost. Nothing here raises
    to the request path: the visitor gets the notice either way."""

    def __init__(self, directory: Path, name: str, segment_bytes: int = 64 * 1024 * 1024,
                 fsync_interval: float = 0.05, held_limit: int = 10_000, counters=None):
        self.directory = Path(directory)
        self.name = name
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.held: collections.deque[bytes] = collections.deque()
        self.held_limit = held_limit
        # received, journaled, late (answered before it was durable), lost, write errors
        self.counters = counters if counters is not None else [0] * len(WRITER_COUNTERS)
        self.fd: int | None = None
        self.size = 0
        self.path: Path | None = None
        self._dirty = False
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self.last_error: str | None = None

    def open(self) -> None:
        """Start writing. A journal that cannot be created now (disk full, read-only) does not stop
        the worker: every hit tries again, and is held or counted until it can be written."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._rotate()
        except OSError as error:
            self._failed(error)
        if self.fsync_interval > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="seized-journal-sync", daemon=True)
            self._syncer.start()

    def _rotate(self) -> None:
        """Start a new segment: created under a temporary name, locked, then renamed, so the
        ingest process never sees an unlocked segment that is about to be written."""
        stamp = time.time_ns()
        final = self.directory / f"{self.name}.{stamp:020d}{SUFFIX}"
        temporary = self.directory / f".{self.name}.{stamp:020d}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temporary, final)
        except BaseException:
            os.close(fd)
            raise
        old = self.fd
        with self._sync_lock:
            self.fd, self.size, self.path, self._dirty = fd, 0, final, False
        if old is not None:
            self._close_fd(old)

    def _close_fd(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError:
            pass
        os.close(fd)  # releases the lock: the segment is sealed

    def append(self, data: bytes) -> bool:
        """Write one framed record; True if it is in the OS now (before the response goes out).
        `received` is counted last, once the outcome is: a process killed half-way through
        counts neither (and answers nothing)."""
        counters = self.counters
        if (not self.held or self._write_held()) and self._write(data):
            counters[1] += 1
            counters[0] += 1
            return True
        self._hold(data)
        counters[0] += 1
        return False

    def _write(self, data: bytes) -> bool:
        try:
            if self.fd is None or self.size >= self.segment_bytes:
                self._rotate()
            written = os.write(self.fd, data)
            if written != len(data):  # disk full part-way: take the partial record back out
                raise OSError(28, "short write to the journal")
        except OSError as error:
            self._failed(error)
            return False
        self.size += written
        if self.fsync_interval > 0:
            self._dirty = True
        else:
            os.fdatasync(self.fd)
        if self.last_error is not None:
            log.warning("journal writes work again (%s)", self.path)
            self.last_error = None
        return True

    def _failed(self, error: OSError) -> None:
        self.counters[4] += 1
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:  # a torn record stays; the ingest process skips it and records the gap
                self._close_fd(self.fd)
                self.fd = None
        if self.last_error is None:
            log.error("cannot write the journal (%s): hits are held in memory (up to %d), then counted as lost",
                      error, self.held_limit)
        self.last_error = str(error)

    def _hold(self, data: bytes) -> None:
        self.counters[2] += 1  # answered before it was durable
        if len(self.held) >= self.held_limit:
            self.counters[3] += 1
            if self.counters[3] == 1 or self.counters[3] % 1000 == 0:
                log.critical("journal unwritable and %d hits held: %d hits lost so far", len(self.held), self.counters[3])
            return
        self.held.append(data)

    def _write_held(self) -> bool:
        """Retry held hits, oldest first; True when none are left."""
        while self.held:
            if not self._write(self.held[0]):
                return False
            self.held.popleft()
            self.counters[1] += 1
        return True

    def retry(self) -> None:
        """Called now and then by the worker: held hits go to disk as soon as it takes them."""
        if self.held:
            self._write_held()

    def check(self) -> None:
        """Called now and then by the worker: a segment deleted or replaced under us (its directory
        removed by hand, say) would swallow every later hit; start a new one and say so."""
        if self.fd is None or self.path is None:
            return
        try:
            on_disk = os.stat(self.path)
            ours = os.fstat(self.fd)
            if (on_disk.st_dev, on_disk.st_ino) == (ours.st_dev, ours.st_ino):
                return
        except FileNotFoundError:
            pass
        log.critical("journal segment %s was deleted or replaced while in use: hits written to it in the last "
                     "second may be lost; starting a new segment", self.path.name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._rotate()
        except OSError as error:
            self._failed(error)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            self.sync()

    def sync(self) -> None:
        with self._sync_lock:
            if self._dirty and self.fd is not None:
                self._dirty = False
                try:
                    os.fdatasync(self.fd)
                except OSError as error:
                    log.error("journal fdatasync failed: %s", error)

    def close(self) -> int:
        """Flush what can be flushed; returns the number of hits that could not be saved."""
        self._stop.set()
        self._write_held()
        unsaved = len(self.held)
        self.counters[3] += unsaved
        self.held.clear()
        if self.fd is not None:
            self._close_fd(self.fd)
            self.fd = None
        return unsaved


WRITER_COUNTERS = ("received", "journaled", "late", "lost", "write_errors")


# -- reading (ingest process) -----------------------------------------------------------------

@dataclass
class Gap:
    offset: int
    length: int
    reason: str


def segments(directory: Path) -> list[Path]:
    """Journal segments, oldest first by start time."""
    if not Path(directory).is_dir():
        return []
    return sorted(Path(directory).glob(f"*{SUFFIX}"), key=lambda p: p.name.rsplit(".", 2)[-2])


def is_sealed(path: Path) -> bool:
    """No writer holds the segment any more (rotated, stopped or killed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def read(data: bytes, offset: int, sealed: bool) -> Iterator[tuple[int, int, bytes | Gap]]:
    """Records in `data` from `offset`: (start, end, payload) or (start, end, Gap). An incomplete
    record at the end of an unsealed segment is not yet a gap: reading stops before it."""
    end = len(data)
    while offset < end:
        if end - offset < HEADER.size:
            if sealed:
                yield offset, end, Gap(offset, end - offset, "torn record at the end of the segment")
            return
        magic, length, crc = HEADER.unpack_from(data, offset)
        if magic == MAGIC and length <= MAX_RECORD:
            stop = offset + HEADER.size + length
            if stop > end:
                if sealed:
                    # A torn tail, or a corrupt length: look for a record after it before giving up.
                    resume = _resync(data, offset + 1)
                    yield offset, resume, Gap(offset, resume - offset, "torn record")
                    offset = resume
                    continue
                return
            payload = data[offset + HEADER.size:stop]
            if zlib.crc32(payload, zlib.crc32(LENGTH.pack(length))) == crc:
                yield offset, stop, payload
                offset = stop
                continue
            reason = "checksum mismatch"
        else:
            reason = "no record header"
        resume = _resync(data, offset + 1)
        if resume == end and not sealed:
            return  # perhaps a record still being written: decide once the segment is sealed
        yield offset, resume, Gap(offset, resume - offset, reason)
        offset = resume


def _resync(data: bytes, start: int) -> int:
    """The offset of the next complete, intact record at or after `start`; len(data) if none."""
    position = data.find(MAGIC, start)
    while position != -1:
        if len(data) - position >= HEADER.size:
            _, length, crc = HEADER.unpack_from(data, position)
            stop = position + HEADER.size + length
            if length <= MAX_RECORD and stop <= len(data) and \
                    zlib.crc32(data[position + HEADER.size:stop], zlib.crc32(LENGTH.pack(length))) == crc:
                return position
        position = data.find(MAGIC, position + 1)
    return len(data)


def decode(payload: bytes) -> tuple:
    record = marshal.loads(payload)
    if not isinstance(record, tuple):
        raise ValueError("a journal record is not a tuple")
    return record
