"""`seized serve`: the supervisor. It binds the public socket, prepares the database (migrations,
domain seeds, the first admin token, the domain list file), then starts the listener workers, the
ingest process and the management process, and restarts any that dies. While running it holds no
database connection: whatever a broken database does to its readers, the supervisor and the
listeners go on.

    supervisor (this process): supervision, run/status.json
    ├── worker 0..N-1: public listener on the shared socket, journal before every answer
    ├── ingest: journal -> rows, chain, GeoIP -> database
    └── management: management API, domain list file, retention, video pre-rendering

SIGTERM/SIGINT: the workers stop accepting and finish what is in flight (their hits are in the
journal by then), then the ingest process drains the journal, all within `stop_timeout_s`; what
ingest could not reach in time stays in the journal and is ingested at the next start."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time

from . import ingest, lease, management, worker
from .config import Settings, split_address
from .domains import seed_domains, write_table_file
from .process import json_logs, run_async, setup_logging
from .status import INGEST_FIELDS, MANAGEMENT_FIELDS, WORKER_FIELDS, Counters, pipeline_status
from .store import SchemaTooNew, open_store
from .tokens import ensure_admin_token

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("seized")
SUPERVISE = 0.25  # seconds between checks that every process is alive
RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # a process that keeps dying is restarted ever more slowly


def public_socket(address: str) -> socket.socket:
    """A listening socket for one public address. `[::]:PORT` is dual-stack: IPv6 and IPv4 (as
    mapped addresses, unmapped again where a hit is recorded) on the one port; on a host without
    IPv6 it falls back to `0.0.0.0:PORT`."""
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        if host != "::":
            raise
        log.warning("no IPv6 on this host: %s listens on 0.0.0.0:%d (IPv4 only)", address, port)
        return public_socket(f"0.0.0.0:{port}")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


class Child:
    """One supervised process: started again whenever it dies, until the supervisor stops."""

    def __init__(self, name: str, target, args: tuple, counters: Counters):
        self.name = name
        self.target = target
        self.args = args
        self.counters = counters
        self.process: multiprocessing.Process | None = None
        self.restarts = 0
        self.next_start = 0.0

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=self.target, args=(*self.args, self.counters.array), name=self.name,
                                       daemon=False)
        self.process.start()

    def check(self) -> None:
        """Restart it if it died (with a growing delay if it keeps dying). Its liveness and restarts
        go to its shared counters, for whoever reports the pipeline's state."""
        alive = self.process is not None and self.process.is_alive()
        self.counters["alive"], self.counters["restarts"] = int(alive), self.restarts
        if self.process is None or alive:
            return
        now = time.monotonic()
        if self.next_start == 0.0:
            delay = RESTART_BACKOFF[min(self.restarts, len(RESTART_BACKOFF) - 1)]
            log.error("%s (pid %s) died with exit code %s: restarting in %.1f s", self.name, self.process.pid,
                      self.process.exitcode, delay)
            self.next_start = now + delay
        if now >= self.next_start:
            self.restarts += 1
            self.next_start = 0.0
            self.start()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def stop(self, timeout: float) -> int | None:
        if self.process is None:
            return 0
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout)
        if self.process.is_alive():
            log.error("%s did not stop within %.1f s: killed", self.name, timeout)
            self.process.kill()
            self.process.join(1)
        return self.process.exitcode


class Pipeline:
    """The worker and ingest processes, and what they report."""

    def __init__(self, settings: Settings, socks: list[socket.socket], tls_socks: list[socket.socket] = ()):
        # The settings as a plain Settings (the loader's subclass is local, so it cannot be pickled).
        settings = Settings.model_construct(**dict(settings))
        self.settings = settings
        self.workers = [Child(f"worker-{i}", worker.run, (settings, socks, i, list(tls_socks)), Counters(WORKER_FIELDS))
                        for i in range(settings.workers)]
        self.ingest = Child("ingest", ingest.run, (settings,), Counters(INGEST_FIELDS))
        # The management process reports the pipeline live, from the same shared counters.
        self.management = Child("management", management.run,
                                (settings, [(name, c.array) for name, c in self.worker_counters()], self.ingest.counters.array),
                                Counters(MANAGEMENT_FIELDS))
        self.stopping = False

    def start(self) -> None:
        for child in (self.ingest, self.management, *self.workers):
            child.start()
            child.counters["alive"] = 1

    def supervise(self) -> None:
        if self.stopping:
            return
        for child in self.workers:
            if child.process is not None and not child.alive:
                self.count_held_as_lost(child)
        for child in (*self.workers, self.ingest, self.management):
            child.check()

    @staticmethod
    def count_held_as_lost(child: Child) -> None:
        """A worker that died holding hits it could not write (disk full) took them with it."""
        counters = child.counters
        held = counters["received"] - counters["journaled"] - counters["lost"]
        if held > 0:
            counters.add("lost", held)
            log.critical("%s died holding %d answered hits it could not write: counted as lost", child.name, held)

    def stop(self) -> None:
        """Blocking: listeners first (their hits are journaled), then ingest drains."""
        self.stopping = True
        budget = self.settings.stop_timeout_s
        started = time.monotonic()
        for child in self.workers:
            if child.process is not None and child.process.is_alive():
                child.process.terminate()
        for child in self.workers:
            child.stop(max(0.5, budget * 0.5 - (time.monotonic() - started)))
        self.ingest.stop(max(0.5, budget * 0.8 - (time.monotonic() - started)))
        self.management.stop(max(0.5, budget * 0.95 - (time.monotonic() - started)))

    def status(self) -> dict:
        return pipeline_status(self.worker_counters(), self.ingest.counters, self.management.counters)

    def worker_counters(self) -> list[tuple[str, Counters]]:
        return [(child.name, child.counters) for child in self.workers]


def write_status(run_dir, status: dict) -> None:
    """run/status.json for `seized status`, replaced whole (a reader never sees half a file). Never
    raises: a full disk or a removed directory must not stop the supervisor."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        temporary = run_dir / "status.json.tmp"
        temporary.write_text(json.dumps(status))
        os.replace(temporary, run_dir / "status.json")
    except OSError as error:
        if not getattr(write_status, "failing", False):
            log.error("cannot write %s/status.json (%s): `seized status` will be stale", run_dir, error)
        write_status.failing = True
    else:
        write_status.failing = False


async def prepare_database(settings: Settings) -> None:
    """Migrate, claim the node id, seed the config's domains, make the first admin token, write the domain list the
    workers start with; then let go of the database."""
    store = await open_store(settings.db)
    try:
        await lease.claim(store, settings)
        await seed_domains(store, settings)
        first_token = await ensure_admin_token(store)
        if first_token and json_logs():  # the log stays JSON, one object per line
            log.info("no admin token existed, so one was created; it is shown only this once: %s (use it as "
                     "'Authorization: Bearer <token>' on the management API)", first_token)
        elif first_token:
            # Like a first-run password: printed once, only its hash is kept.
            print(f"\n  No admin token existed, so one was created. It is shown only this once:\n\n"
                  f"      {first_token}\n\n  Use it as 'Authorization: Bearer <token>' on the management API.\n",
                  file=sys.stderr, flush=True)
        write_table_file(settings.run_dir / "domains.json", await store.list_domains())
    finally:
        await store.close()


def check_free(address: str) -> None:
    """Fail at once, not in a restart loop, when the management address is taken."""
    host, port = split_address(address)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


async def serve(settings: Settings) -> None:
    setup_logging("main")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    socks, tls_socks = [], []
    try:
        for address in settings.public:  # first: a port in use stops us before anything starts
            socks.append(public_socket(address))
        for address in settings.tls:
            tls_socks.append(public_socket(address))
        check_free(settings.admin)
        await prepare_database(settings)
        await supervise(settings, socks, tls_socks)
    finally:
        for sock in (*socks, *tls_socks):
            sock.close()


async def supervise(settings: Settings, socks: list[socket.socket], tls_socks: list[socket.socket] = ()) -> None:
    pipeline = Pipeline(settings, socks, tls_socks)
    pipeline.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop(signum: int) -> None:
        log.info("received %s: listeners finish their requests, then the journal is drained", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(signal.SIGHUP, lambda: pipeline.ingest.process and pipeline.ingest.process.is_alive()
                            and os.kill(pipeline.ingest.process.pid, signal.SIGHUP))  # reopen replaced GeoIP databases
    try:
        while not stopping.is_set():
            pipeline.supervise()
            write_status(settings.run_dir, pipeline.status())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), SUPERVISE)
    finally:
        await asyncio.to_thread(pipeline.stop)
        final = pipeline.status()
        write_status(settings.run_dir, final)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        log.info("seized stopped: %d hits received, %d journaled, %d lost; %d ingested, ~%d hits (%d bytes) left in the "
                 "journal for the next start", final["journal"]["received"], final["journal"]["journaled"],
                 final["journal"]["lost"], final["ingest"]["ingested"], final["ingest"]["backlog_hits"],
                 final["ingest"]["backlog_bytes"])


def run(settings: Settings) -> None:
    try:
        run_async(serve(settings))
    except SchemaTooNew as error:
        raise SystemExit(f"error: {error}") from None
