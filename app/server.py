"""`seized serve`: the supervisor. It opens (and migrates) the database, binds the public socket,
starts the listener workers and the ingest process, restarts any that dies, and serves the
management API itself.

    supervisor (this process): management API, domain list file, retention, supervision
    ├── worker 0..N-1: public listener on the shared socket, journal before every answer
    └── ingest: journal -> rows, chain, GeoIP -> database

SIGTERM/SIGINT: the workers stop accepting and finish what is in flight (their hits are in the
journal by then), then the ingest process drains the journal, all within `stop_timeout_s`; what
ingest could not reach in time stays in the journal and is ingested at the next start."""

from __future__ import annotations

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

import uvicorn

from . import ingest, worker
from .api import create_management_app
from .config import Settings, split_address
from .domains import load_table, write_table_file
from .ingest import file_identity
from .notice.texts import load_languages
from .notice.video import NoticeVideos
from .process import run_async, setup_logging
from .public import video_lines
from .retention import purge_daily
from .status import INGEST_FIELDS, WORKER_FIELDS, Counters
from .store import open_store, sqlite_path
from .tokens import ensure_admin_token

log = logging.getLogger("seized")
DOMAIN_POLL = 1.0  # seconds: domain changes reach the listeners within about this
SUPERVISE = 0.25  # seconds between checks that every process is alive
RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # a process that keeps dying is restarted ever more slowly
HEARTBEAT_STALE = 5.0  # seconds without an ingest heartbeat: report it stuck


class _Listener(uvicorn.Server):
    """uvicorn for the management API, leaving signals to us."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def public_socket(address: str) -> socket.socket:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
        """Restart it if it died (with a growing delay if it keeps dying)."""
        if self.process is None or self.process.is_alive():
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

    def __init__(self, settings: Settings, sock: socket.socket):
        # The settings as a plain Settings (the loader's subclass is local, so it cannot be pickled).
        settings = Settings.model_construct(**dict(settings))
        self.settings = settings
        self.workers = [Child(f"worker-{i}", worker.run, (settings, sock, i), Counters(WORKER_FIELDS))
                        for i in range(settings.workers)]
        self.ingest = Child("ingest", ingest.run, (settings,), Counters(INGEST_FIELDS))
        self.stopping = False

    def start(self) -> None:
        self.ingest.start()
        for child in self.workers:
            child.start()

    def supervise(self) -> None:
        if self.stopping:
            return
        for child in self.workers:
            if child.process is not None and not child.alive:
                self.count_held_as_lost(child)
        for child in (*self.workers, self.ingest):
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
        self.ingest.stop(max(0.5, budget * 0.9 - (time.monotonic() - started)))

    def status(self) -> dict:
        """What /readyz and `seized status` report."""
        journal = {name: 0 for name in ("received", "journaled", "late", "lost", "write_errors")}
        workers = []
        for child in self.workers:
            values = child.counters.as_dict()
            for name in journal:
                journal[name] += values[name]
            workers.append({"name": child.name, "pid": values["pid"], "alive": child.alive, "restarts": child.restarts,
                            "connections": values["connections"], "received": values["received"],
                            "journaled": values["journaled"]})
        values = self.ingest.counters.as_dict()
        now = time.time_ns()
        stale = values["heartbeat_ns"] and (now - values["heartbeat_ns"]) / 1e9 > HEARTBEAT_STALE
        oldest = values["oldest_pending_ns"]
        ingest_status = {
            "alive": self.ingest.alive and not stale, "pid": values["pid"], "restarts": self.ingest.restarts,
            "database_ok": bool(values["database_ok"]), "ingested": values["ingested"],
            "duplicates": values["duplicates"], "gaps": values["gaps"], "gap_bytes": values["gap_bytes"],
            # Estimated from the journal's bytes; at least what this run journaled and has not ingested.
            "backlog_bytes": values["backlog_bytes"],
            "backlog_hits": max(values["backlog_hits"], journal["journaled"] - values["ingested"] - values["duplicates"]),
            "backlog_seconds": round(max(0, now - oldest) / 1e9, 3) if oldest and values["backlog_bytes"] else 0.0,
            "segments": values["segments"], "checkpoints": values["checkpoints"],
        }
        problems = []
        if journal["lost"]:
            problems.append(f"{journal['lost']} hits answered but lost: the journal could not be written")
        held = max(0, journal["received"] - journal["journaled"] - journal["lost"])
        if held:
            problems.append(f"{held} hits held in memory: the journal cannot be written")
        if any(not w["alive"] for w in workers):
            problems.append("a listener worker is down")
        if not ingest_status["alive"]:
            problems.append("the ingest process is down")
        if not ingest_status["database_ok"]:
            problems.append("the database cannot take the journal's hits")
        return {"ok": not problems, "problems": problems, "journal": {**journal, "held": held},
                "workers": workers, "ingest": ingest_status}


def write_status(run_dir, status: dict) -> None:
    """run/status.json for `seized status`, replaced whole (a reader never sees half a file)."""
    temporary = run_dir / "status.json.tmp"
    temporary.write_text(json.dumps(status))
    os.replace(temporary, run_dir / "status.json")


async def seed_domains(store, settings: Settings) -> None:
    """The config file seeds each domain once; the database wins afterwards (a domain edited or
    removed through the CLI or API stays so)."""
    for seed in settings.domains:
        if await store.seed_domain(**seed.model_dump()):
            log.info("seeded domain %s from the config file", seed.name)


async def serve(settings: Settings) -> None:
    setup_logging("main")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    sock = public_socket(settings.public)  # first: a port in use stops us before anything starts
    try:
        store = await open_store(settings.db)
    except BaseException:
        sock.close()
        raise
    try:
        await _serve(settings, sock, store)
    finally:
        sock.close()
        await store.close()


async def _serve(settings: Settings, sock: socket.socket, store) -> None:
    db_path = sqlite_path(settings.db)
    db_identity = file_identity(db_path)
    await seed_domains(store, settings)
    first_token = await ensure_admin_token(store)
    if first_token:
        # Like a first-run password: printed once, only its hash is kept.
        print(f"\n  No admin token existed, so one was created. It is shown only this once:\n\n"
              f"      {first_token}\n\n  Use it as 'Authorization: Bearer <token>' on the management API.\n",
              file=sys.stderr, flush=True)
    domains_file = settings.run_dir / "domains.json"
    write_table_file(domains_file, await store.list_domains())

    pipeline = Pipeline(settings, sock)
    pipeline.start()

    admin_host, admin_port = split_address(settings.admin)
    management = _Listener(uvicorn.Config(
        create_management_app(store=store, pipeline=pipeline, settings=settings), host=admin_host, port=admin_port,
        lifespan="off", ws="none", proxy_headers=False, server_header=False, log_config=None, access_log=False,
        timeout_graceful_shutdown=max(1, int(settings.stop_timeout_s * 0.3))))

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop(signum: int) -> None:
        log.info("received %s: listeners finish their requests, then the journal is drained", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(signal.SIGHUP, lambda: pipeline.ingest.process and pipeline.ingest.process.is_alive()
                            and os.kill(pipeline.ingest.process.pid, signal.SIGHUP))  # reopen replaced GeoIP databases

    async def supervise() -> None:
        nonlocal db_identity
        version = await store.domains_version()
        last_poll = 0.0
        while True:
            await asyncio.sleep(SUPERVISE)
            pipeline.supervise()
            write_status(settings.run_dir, pipeline.status())
            if time.monotonic() - last_poll < DOMAIN_POLL:
                continue
            last_poll = time.monotonic()
            try:
                identity = file_identity(db_path)
                if identity != db_identity and identity is not None:
                    # The database file was replaced (restored): read from the new one.
                    log.warning("the database file changed on disk: reopening it")
                    await store.close()
                    await store.open()
                    db_identity = identity
                    version = None
                current = await store.domains_version()
                if current != version:
                    write_table_file(domains_file, await store.list_domains())
                    version = current
            except Exception as error:
                log.warning("could not reload domains: %s", error)

    async def prerender_videos() -> None:
        """Render each active domain's notice video ahead of the first player that asks for it."""
        videos, languages = NoticeVideos(settings.video_dir), load_languages()
        table = await load_table(store, settings.notice)
        for notice in [*table.notices(), table.default]:
            try:
                await asyncio.to_thread(videos.render_now, list(video_lines(languages[notice.language], notice)))
            except Exception as error:
                log.warning("could not pre-render the notice video for %s: %s", notice.domain, error)

    tasks = [asyncio.create_task(supervise())]
    if settings.retention_days:
        tasks.append(asyncio.create_task(purge_daily(store, settings.retention_days)))
    if settings.prerender_videos:
        tasks.append(asyncio.create_task(prerender_videos()))
    serving = asyncio.create_task(management.serve())
    try:
        await asyncio.wait([serving, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(pipeline.stop)
        management.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, settings.stop_timeout_s * 0.1 + 1)
        final = pipeline.status()
        write_status(settings.run_dir, final)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        log.info("seized stopped: %d hits received, %d journaled, %d lost; %d ingested, ~%d hits (%d bytes) left in the "
                 "journal for the next start", final["journal"]["received"], final["journal"]["journaled"],
                 final["journal"]["lost"], final["ingest"]["ingested"], final["ingest"]["backlog_hits"],
                 final["ingest"]["backlog_bytes"])
    if not stopping.is_set():  # the management listener ended on its own: it could not start
        raise SystemExit(f"the management listener on {settings.admin} stopped; see the log above")


def run(settings: Settings) -> None:
    run_async(serve(settings))
