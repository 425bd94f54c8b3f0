"""Counters the listener workers and the ingest process share with the supervisor: one array of
64-bit integers per process in shared memory, written only by its process, read by anyone. No
locks and no messages on the request path; a counter survives its process's death."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time

from .clients import CLIENT_KINDS
from .journal import WRITER_COUNTERS

# Histograms for the metrics (metrics.py), kept in the same arrays: per bucket the count of values
# up to its bound (not cumulative; the last bucket is +Inf), then the sum in millionths of the unit.
LATENCY_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BOUNDS = (1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000)
COMMIT_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUBLIC_LISTENERS = ("public_http", "public_tls")
MANAGEMENT_KINDS = ("api", "probe", "metrics", "other")
# How TLS connections went: the handshake done, plain HTTP on the TLS port, or why it failed.
TLS_OUTCOMES = ("ok", "plain_http", "malformed_hello", "no_certificate", "handshake_failed", "timeout", "client_closed")


def histogram_fields(name: str, bounds: tuple) -> tuple[str, ...]:
    return (*(f"{name}:bucket{i}" for i in range(len(bounds) + 1)), f"{name}:sum")


def latency_fields(listener: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(field for kind in kinds for field in histogram_fields(f"latency:{listener}:{kind}", LATENCY_BOUNDS_S))


# Each process writes its own fields; the supervisor writes "alive" and "restarts".
WORKER_FIELDS = (*WRITER_COUNTERS, "pid", "started_ns", "connections", "alive", "restarts",
                 *(f"tls:{outcome}" for outcome in TLS_OUTCOMES),
                 *(field for listener in PUBLIC_LISTENERS for field in latency_fields(listener, CLIENT_KINDS)))
MANAGEMENT_FIELDS = ("pid", "started_ns", "alive", "restarts", *latency_fields("management", MANAGEMENT_KINDS))
INGEST_FIELDS = ("ingested", "duplicates", "gaps", "gap_bytes", "backlog_hits", "backlog_bytes", "oldest_pending_ns",
                 "database_ok", "heartbeat_ns", "pid", "started_ns", "checkpoints", "segments", "alive", "restarts",
                 "last_checkpoint_ns", "last_checkpoint_signed", "unchecked_hits",
                 *histogram_fields("batch_hits", BATCH_BOUNDS), *histogram_fields("commit_seconds", COMMIT_BOUNDS_S))
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
