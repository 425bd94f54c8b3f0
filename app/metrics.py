"""Prometheus metrics, served at /metrics on the management listener.

Why the shared arrays and not prometheus-client's multiprocess mode: the listener workers, ingest
and management are separate processes that already count into shared int64 arrays (status.py),
one per process, written only by it, read by the supervisor and the management process. A request
adds to two integers there (its latency bucket and the latency sum; no lock, no system call):
about 0.3 us, or 0.4 us more per PublicApp.handle() of the HTML notice (7.5 us without), well under
1% of a worker's CPU per request at 19k req/s. Multiprocess mode would take a lock and write an
mmap'd file per observation, and leave files behind for every process that dies. The
management process turns the arrays into metric families when it is scraped (PipelineCollector);
what only it sees (API requests by role and status) is counted by prometheus-client itself."""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from .clients import CLIENT_KINDS, OTHER
from .status import (BATCH_BOUNDS, COMMIT_BOUNDS_S, LATENCY_BOUNDS_S, MANAGEMENT_FIELDS, MANAGEMENT_KINDS, PUBLIC_LISTENERS,
                     TLS_OUTCOMES, WORKER_FIELDS, Counters, pipeline_status)

SECONDS = 1_000_000  # histogram sums of seconds are kept in microseconds (integers in the arrays)
LISTENER_OF_SCHEME = {"http": "public_http", "https": "public_tls"}
LATENCY_BOUNDS_US = tuple(round(bound * SECONDS) for bound in LATENCY_BOUNDS_S)
WITNESS_TAIL = 256 * 1024  # bytes of the witness file read at start for the newest checkpoint


class Histograms:
    """Observations into histograms laid out in a process's shared array (status.histogram_fields)."""

    def __init__(self, counters: Counters, names, bounds: tuple, scale: int = 1):
        self.array = counters.array
        self.bounds = bounds
        self.scale = scale
        self.base = {name: counters.index[f"{name}:bucket0"] for name in names}
        self.sum = len(bounds) + 1  # the sum's place after a histogram's first bucket

    def observe(self, name: str, value: float) -> None:
        base, array = self.base[name], self.array
        array[base + bisect_left(self.bounds, value)] += 1
        array[base + self.sum] += int(value * self.scale)


class WorkerMetrics:
    """What a listener worker counts beyond the journal: request latency per listener and client
    kind, TLS handshakes by outcome. Without a worker's shared array (a PublicApp made elsewhere,
    in tests or benchmarks), into a private one."""

    def __init__(self, counters: Counters | None = None):
        counters = counters or Counters(WORKER_FIELDS, [0] * len(WORKER_FIELDS))
        self.array = counters.array
        names = [f"latency:{listener}:{kind}" for listener in PUBLIC_LISTENERS for kind in CLIENT_KINDS]
        self.latency = Histograms(counters, names, LATENCY_BOUNDS_S, SECONDS)
        # scheme of the connection -> client kind -> where its histogram starts in the array
        self._base = {scheme: {kind: self.latency.base[f"latency:{listener}:{kind}"] for kind in CLIENT_KINDS}
                      for scheme, listener in LISTENER_OF_SCHEME.items()}
        self._sum = self.latency.sum
        self._tls = {outcome: counters.index[f"tls:{outcome}"] for outcome in TLS_OUTCOMES}

    def request(self, scheme: str, kind: str, seconds: float) -> None:
        """One request answered. The hot path: two integer additions, bucketed to the microsecond."""
        base = self._base[scheme].get(kind) or self._base[scheme][OTHER]
        microseconds = int(seconds * SECONDS)
        array = self.array
        array[base + bisect_left(LATENCY_BOUNDS_US, microseconds)] += 1
        array[base + self._sum] += microseconds

    def tls(self, outcome: str) -> None:
        self.array[self._tls[outcome]] += 1


# This process's recorder: a listener worker binds its shared array at start (bind_worker).
worker = WorkerMetrics()


def bind_worker(counters: Counters) -> None:
    global worker
    worker = WorkerMetrics(counters)


class IngestMetrics:
    """What the ingest process counts for the metrics: batches, commits, checkpoints."""

    def __init__(self, counters: Counters):
        self.counters = counters
        self.batches = Histograms(counters, ["batch_hits"], BATCH_BOUNDS)
        self.commits = Histograms(counters, ["commit_seconds"], COMMIT_BOUNDS_S, SECONDS)

    def committed(self, hits: int, seconds: float) -> None:
        self.batches.observe("batch_hits", hits)
        self.commits.observe("commit_seconds", seconds)

    def checkpointed(self, signed: bool, at_ns: int | None = None) -> None:
        self.counters["last_checkpoint_ns"] = at_ns or time.time_ns()
        self.counters["last_checkpoint_signed"] = int(signed)

    def recall_checkpoint(self, witness_file: Path | None, node: str) -> None:
        """At start: the newest checkpoint of `node` in the witness file's tail (the database has
        every checkpoint, but no cheap way to ask for the newest), so its age is known before this
        run makes one. Nothing found or readable: unknown until then."""
        try:
            with open(witness_file, "rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - WITNESS_TAIL))
                lines = file.read().splitlines()
        except (OSError, TypeError):
            return
        for line in reversed(lines):
            try:
                checkpoint = json.loads(line)
                if checkpoint["node"] == node:
                    at = datetime.fromisoformat(checkpoint["at"].replace("Z", "+00:00"))
                    self.checkpointed(bool(checkpoint.get("signature")), int(at.timestamp() * 1e9))
                    return
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a torn first line of the tail, or not a checkpoint

    def unchecked(self, hits: int) -> None:
        self.counters["unchecked_hits"] = hits


def _histogram(family: HistogramMetricFamily, labels: list[str], values: dict, name: str, bounds: tuple,
               scale: int) -> None:
    buckets, cumulative = [], 0
    for i, bound in enumerate((*bounds, float("inf"))):
        cumulative += values[f"{name}:bucket{i}"]
        buckets.append((floatToGoString(bound), cumulative))
    family.add_metric(labels, buckets, values[f"{name}:sum"] / scale)


class PipelineCollector:
    """The shared arrays of every process, as metric families, read when scraped."""

    def __init__(self, pipeline, limiter):
        self.pipeline, self.limiter = pipeline, limiter

    def collect(self):
        pipeline = self.pipeline
        workers = [(name, counters.as_dict()) for name, counters in pipeline.workers]
        ingest, management = pipeline.ingest.as_dict(), pipeline.management.as_dict()
        status = pipeline_status(pipeline.workers, pipeline.ingest, pipeline.management)
        journal, backlog = status["journal"], status["ingest"]
        total = {field: sum(values[field] for _, values in workers) for field in WORKER_FIELDS}

        def counter(name, documentation, value):
            return CounterMetricFamily(name, documentation, value=value)

        def gauge(name, documentation, value):
            return GaugeMetricFamily(name, documentation, value=value)

        yield counter("seized_hits_received", "Requests answered by the public listeners (each one a hit).",
                      total["received"])
        yield counter("seized_hits_journaled", "Hits written to the journal.", total["journaled"])
        yield counter("seized_hits_stored", "Hits stored in the database by ingest.", ingest["ingested"])
        yield counter("seized_hits_lost", "Hits answered but not saved: the journal could not be written.",
                      total["lost"])
        yield gauge("seized_hits_held", "Hits held in memory while the journal cannot be written.", journal["held"])
        yield counter("seized_journal_write_errors", "Failed journal writes.", total["write_errors"])
        yield counter("seized_ingest_duplicates", "Journal records already stored, left out.", ingest["duplicates"])
        yield counter("seized_ingest_gaps", "Unreadable stretches of the journal, skipped.", ingest["gaps"])
        yield gauge("seized_ingest_backlog_hits", "Hits in the journal not yet stored (estimated).", backlog["backlog_hits"])
        yield gauge("seized_ingest_backlog_bytes", "Journal bytes not yet stored.", backlog["backlog_bytes"])
        yield gauge("seized_ingest_backlog_seconds", "Age of the oldest hit not yet stored.", backlog["backlog_seconds"])
        yield gauge("seized_database_up", "1 while ingest can write the database.", ingest["database_ok"])

        batches = HistogramMetricFamily("seized_ingest_batch_hits", "Hits per ingest commit.")
        _histogram(batches, [], ingest, "batch_hits", BATCH_BOUNDS, 1)
        yield batches
        commits = HistogramMetricFamily("seized_ingest_commit_seconds", "Time to commit one ingest batch.")
        _histogram(commits, [], ingest, "commit_seconds", COMMIT_BOUNDS_S, SECONDS)
        yield commits

        yield counter("seized_chain_checkpoints", "Chain checkpoints made by this node's ingest.", ingest["checkpoints"])
        yield gauge("seized_chain_unchecked_hits", "Stored hits no checkpoint covers yet.", ingest["unchecked_hits"])
        if ingest["last_checkpoint_ns"]:  # none made and none in the witness file: no age to tell
            yield gauge("seized_chain_checkpoint_age_seconds", "Seconds since this node's newest checkpoint.",
                        max(0.0, (time.time_ns() - ingest["last_checkpoint_ns"]) / 1e9))
            yield gauge("seized_chain_checkpoint_signed", "1 if the newest checkpoint is signed (signing_key_file).",
                        ingest["last_checkpoint_signed"])

        latency = HistogramMetricFamily("seized_request_duration_seconds",
                                        "From a request's head to its answer, per listener and client kind.",
                                        labels=["listener", "kind"])
        for listener in PUBLIC_LISTENERS:
            for kind in CLIENT_KINDS:
                _histogram(latency, [listener, kind], total, f"latency:{listener}:{kind}", LATENCY_BOUNDS_S, SECONDS)
        for kind in MANAGEMENT_KINDS:
            _histogram(latency, ["management", kind], management, f"latency:management:{kind}", LATENCY_BOUNDS_S,
                       SECONDS)
        yield latency

        handshakes = CounterMetricFamily("seized_tls_handshakes", "TLS connections by how their handshake went.",
                                         labels=["outcome"])
        for outcome in TLS_OUTCOMES:
            handshakes.add_metric([outcome], total[f"tls:{outcome}"])
        yield handshakes

        failures = CounterMetricFamily("seized_api_auth_failures", "Failed management-API authentications: a "
                                       "missing or bad token (401), or refused unchecked during a lockout (429).",
                                       labels=["reason"])
        failures.add_metric(["invalid_token"], self.limiter.failed)
        failures.add_metric(["locked_out"], self.limiter.throttled)
        yield failures

        connections = GaugeMetricFamily("seized_worker_connections", "Open connections per listener worker.",
                                        labels=["worker"])
        up = GaugeMetricFamily("seized_process_up", "1 while the process runs.", labels=["process"])
        restarts = CounterMetricFamily("seized_process_restarts", "Times the supervisor restarted the process.",
                                       labels=["process"])
        for name, values in [*workers, ("ingest", ingest), ("management", management)]:
            if name not in ("ingest", "management"):
                connections.add_metric([name], values["connections"])
            up.add_metric([name], values["alive"])
            restarts.add_metric([name], values["restarts"])
        yield from (connections, up, restarts)


class ManagementMetrics:
    """Everything /metrics answers for one management app; also an ASGI middleware's state: each
    request's latency (by kind of endpoint) and each API request by role and status."""

    def __init__(self, pipeline, limiter):
        disable_created_metrics()  # no `_created` series beside each counter: a restart already shows as a reset
        self.registry = CollectorRegistry(auto_describe=False)
        if pipeline is not None:  # (an app made only for its OpenAPI schema has no processes to report)
            self.registry.register(PipelineCollector(pipeline, limiter))
        self.api_requests = Counter("seized_api_requests", "Management-API requests by the token's role (none: no "
                                    "valid token) and status.", ["role", "status"], registry=self.registry)
        own = pipeline.management if pipeline is not None else Counters(MANAGEMENT_FIELDS, [0] * len(MANAGEMENT_FIELDS))
        self.latency = Histograms(own, [f"latency:management:{k}" for k in MANAGEMENT_KINDS], LATENCY_BOUNDS_S, SECONDS)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def management_kind(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path in ("/healthz", "/readyz"):
        return "probe"
    return "metrics" if path == "/metrics" else "other"


class RequestMetrics:
    """ASGI middleware (outermost): times every management request to its last byte, and counts
    API requests by role and status (the role of the token auth.py accepted, else `none`) as the
    answer starts, so a client that has its answer finds it counted."""

    def __init__(self, app, metrics: ManagementMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, counted = time.perf_counter(), False
        kind = management_kind(scope["path"])

        def count(status: int) -> None:
            nonlocal counted
            counted = True
            if kind == "api":
                principal = scope.get("state", {}).get("principal")
                self.metrics.api_requests.labels(principal.role if principal else "none", str(status)).inc()

        async def counting(message):
            if message["type"] == "http.response.start":
                count(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            if not counted:  # it failed before answering: uvicorn answers 500
                count(500)
            self.metrics.latency.observe(f"latency:management:{kind}", time.perf_counter() - started)


router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format. No token, like the probes: the management listener is private, and
    these are counts under fixed labels (no address, account or path), nothing an API role guards."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
