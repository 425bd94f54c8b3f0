"""The management process: the management API (FastAPI on uvicorn, its own listener), the domain
list the listener workers read, retention and video pre-rendering. A process of its own, so that
nothing that touches the database runs in the supervisor: a database that crashes its reader (a
SIGBUS from a truncated `-shm` file, say) takes this process down, it is restarted, and the
notice keeps being served meanwhile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import contextlib
import logging
import signal

import uvicorn

from .api import create_management_app
from .config import Settings, split_address
from .domains import load_table, write_table_file
from .notice.texts import load_languages
from .notice.video import NoticeVideos, video_lines
from .process import die_with_parent, run_async, setup_logging
from .retention import purge_daily
from .status import INGEST_FIELDS, MANAGEMENT_FIELDS, WORKER_FIELDS, Counters, pipeline_status
from . import lease
from .store import database_identity, open_store

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("seized.management")
DOMAIN_POLL = 1.0  # seconds: domain changes reach the listeners within about this


class LiveStatus:
    """The pipeline's state, read live from the shared counters of the workers and ingest."""

    def __init__(self, workers: list[tuple[str, Counters]], ingest: Counters, management: Counters):
        self.workers, self.ingest, self.management = workers, ingest, management

    def status(self) -> dict:
        return pipeline_status(self.workers, self.ingest, self.management)


async def follow_domains(store: Store, settings: Settings) -> None:
    """Keep run/domains.json in step with the database (the listeners read it every second): at
    once on a change notified by PostgreSQL, else within DOMAIN_POLL; reopen an SQLite file replaced
    on disk."""
    identity, version, changed = database_identity(settings.db), None, None
    while True:
        try:
            changed = await store.domain_changes()  # PostgreSQL: told at once; SQLite: polled
            if changed is not None:
                changed.clear()  # before the read below, so a change notified during it is not lost
        except Exception as error:
            if changed is not None:
                log.warning("lost the notifications of domain changes, polling until they are back: %s", error)
            changed = None
        try:
            current_identity = database_identity(settings.db)
            if current_identity is not None and current_identity != identity:
                log.warning("the database file changed on disk: reopening it")
                await store.close()
                await store.open()
                identity, version = current_identity, None
            current = await store.domains_version()
            if current != version:
                write_table_file(settings.run_dir / "domains.json", await store.list_domains())
                version = current
        except Exception as error:
            log.warning("could not reload domains: %s", error)
        if changed is None:
            await asyncio.sleep(DOMAIN_POLL)
            continue
        try:
            await asyncio.wait_for(changed.wait(), DOMAIN_POLL)
        except asyncio.TimeoutError:
            pass


async def prerender_videos(store: Store, settings: Settings) -> None:
    """Render each active domain's notice video ahead of the first player that asks for it."""
    videos, languages = NoticeVideos(settings.video_dir), load_languages()
    table = await load_table(store, settings.notice)
    notices = [*table.notices(), table.default]
    for notice in notices:
        try:
            await asyncio.to_thread(videos.render_now, list(video_lines(languages[notice.language], notice)))
        except Exception as error:
            log.warning("could not pre-render the notice video for %s: %s", notice.domain, error)
    log.info("notice videos pre-rendered for %d notices", len(notices))


class _Listener(uvicorn.Server):
    """uvicorn, leaving signals to us."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def main(settings: Settings, status: LiveStatus) -> None:
    store = await open_store(settings.db)
    host, port = split_address(settings.admin)
    server = _Listener(uvicorn.Config(
        create_management_app(store=store, pipeline=status, settings=settings), host=host,
        port=port, lifespan="off", ws="none", proxy_headers=False, server_header=False, log_config=None,
        access_log=False, timeout_graceful_shutdown=max(1, int(settings.stop_timeout_s * 0.3))))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    tasks = [asyncio.create_task(follow_domains(store, settings)), asyncio.create_task(lease.hold(store, settings))]
    if settings.retention_days:
        tasks.append(asyncio.create_task(purge_daily(store, settings.retention_days, settings.signing_key_file)))
    if settings.prerender_videos:
        tasks.append(asyncio.create_task(prerender_videos(store, settings)))
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        await lease.release(store, settings)
        await store.close()
    if not server.started:
        raise SystemExit(3)  # could not bind: the supervisor says so and tries again


def run(settings: Settings, worker_arrays: list, ingest_array, array) -> None:
    """Process entry point (multiprocessing, spawn)."""
    die_with_parent()
    setup_logging("management")
    own = Counters(MANAGEMENT_FIELDS, array)
    own.mark_started()
    status = LiveStatus([(name, Counters(WORKER_FIELDS, a)) for name, a in worker_arrays],
                        Counters(INGEST_FIELDS, ingest_array), own)
    run_async(main(settings, status))
