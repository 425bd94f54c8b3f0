"""Counters the listener workers and the ingest process share with the supervisor: one array of
64-bit integers per process in shared memory, written only by its process, read by anyone. No
locks and no messages on the request path; a counter survives its process's death."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time

from .journal import WRITER_COUNTERS

# Each process writes its own fields; the supervisor writes "alive" and "restarts".
WORKER_FIELDS = (*WRITER_COUNTERS, "pid", "started_ns", "connections", "alive", "restarts")
MANAGEMENT_FIELDS = ("pid", "started_ns", "alive", "restarts")
INGEST_FIELDS = ("ingested", "duplicates", "gaps", "gap_bytes", "backlog_hits", "backlog_bytes", "oldest_pending_ns",
                 "database_ok", "heartbeat_ns", "pid", "started_ns", "checkpoints", "segments", "alive", "restarts")
HEARTBEAT_STALE = 5.0  # seconds without an ingest heartbeat: report it stuck


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


def pipeline_status(workers: list[tuple[str, Counters]], ingest: Counters, management: Counters) -> dict:
    """What /readyz and `seized status` report: the journal's counters over all workers, the ingest
    backlog, each process's state, and every problem in words."""
    journal = {name: 0 for name in WRITER_COUNTERS}
    worker_states = []
    for name, counters in workers:
        values = counters.as_dict()
        for field in journal:
            journal[field] += values[field]
        worker_states.append({"name": name, "pid": values["pid"], "alive": bool(values["alive"]),
                              "restarts": values["restarts"], "connections": values["connections"],
                              "received": values["received"], "journaled": values["journaled"]})
    values = ingest.as_dict()
    now = time.time_ns()
    stale = values["heartbeat_ns"] and (now - values["heartbeat_ns"]) / 1e9 > HEARTBEAT_STALE
    oldest = values["oldest_pending_ns"]
    ingest_state = {
        "alive": bool(values["alive"]) and not stale, "pid": values["pid"], "restarts": values["restarts"],
        "database_ok": bool(values["database_ok"]), "ingested": values["ingested"],
        "duplicates": values["duplicates"], "gaps": values["gaps"], "gap_bytes": values["gap_bytes"],
        # Estimated from the journal's bytes; at least what this run journaled and has not ingested.
        "backlog_bytes": values["backlog_bytes"],
        "backlog_hits": max(values["backlog_hits"], journal["journaled"] - values["ingested"] - values["duplicates"]),
        "backlog_seconds": round(max(0, now - oldest) / 1e9, 3) if oldest and values["backlog_bytes"] else 0.0,
        "segments": values["segments"], "checkpoints": values["checkpoints"],
    }
    held = max(0, journal["received"] - journal["journaled"] - journal["lost"])
    problems = []
    if journal["lost"]:
        problems.append(f"{journal['lost']} hits answered but lost: the journal could not be written")
    if held:
        problems.append(f"{held} hits held in memory: the journal cannot be written")
    if any(not w["alive"] for w in worker_states):
        problems.append("a listener worker is down")
    if not ingest_state["alive"]:
        problems.append("the ingest process is down")
    if not ingest_state["database_ok"]:
        problems.append("the database cannot take the journal's hits")
    if not management["alive"]:
        problems.append("the management process is down")
    return {"ok": not problems, "problems": problems, "journal": {**journal, "held": held},
            "workers": worker_states, "ingest": ingest_state,
            "management": {"alive": bool(management["alive"]), "pid": management["pid"],
                           "restarts": management["restarts"]}}
