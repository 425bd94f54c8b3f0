"""Counters the listener workers and the ingest process share with the supervisor: one array of
64-bit integers per process in shared memory, written only by its process, read by anyone. No
locks and no messages on the request path; a counter survives its process's death."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time

from .journal import WRITER_COUNTERS

WORKER_FIELDS = (*WRITER_COUNTERS, "pid", "started_ns", "connections")
INGEST_FIELDS = ("ingested", "duplicates", "gaps", "gap_bytes", "backlog_hits", "backlog_bytes", "oldest_pending_ns",
                 "database_ok", "heartbeat_ns", "pid", "started_ns", "checkpoints", "segments")


class Counters:
    """Named view of a shared int64 array."""

    def __init__(self, fields: tuple[str, ...], array=None):
        self.fields = fields
        self.array = array if array is not None else multiprocessing.get_context("spawn").Array(
            ctypes.c_int64, len(fields), lock=False)
        self.index = {name: i for i, name in enumerate(fields)}

    def __getitem__(self, name: str) -> int:
        return self.array[self.index[name]]

    def __setitem__(self, name: str, value: int) -> None:
        self.array[self.index[name]] = value

    def add(self, name: str, value: int = 1) -> None:
        self.array[self.index[name]] += value

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.fields, self.array[:]))

    def mark_started(self) -> None:
        self["pid"] = os.getpid()
        self["started_ns"] = time.time_ns()
