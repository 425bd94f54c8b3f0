"""`seized serve`: both listeners and the hit writer in one event loop, with an orderly stop.
On SIGTERM/SIGINT both listeners stop accepting and finish the requests in flight; only then
is the writer drained, so every answered request is stored (or spooled) before exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import uvicorn

from .api import create_management_app
from .assets import Assets
from .capture import ClientResolver
from .config import Settings, split_address
from .domains import load_table
from .evidence import load_signing_key
from .geo import GeoLookup
from .retention import purge_daily
from .notice.html import HtmlNotice
from .notice.texts import load_languages
from .notice.video import NoticeVideos
from .protocol import recording_protocol
from .public import SECURITY_HEADERS, PublicApp
from .store import open_store
from .store.spool import Spool
from .store.writer import HitWriter
from .tokens import ensure_admin_token

log = logging.getLogger("seized")
DOMAIN_POLL = 1.0  # seconds: domain changes reach the public listener within this


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to us: two servers cannot both own them."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def seed_domains(store, settings: Settings) -> None:
    """The config file seeds each domain once; the database wins afterwards (a domain edited or
    removed through the CLI or API stays so)."""
    for seed in settings.domains:
        if await store.seed_domain(**seed.model_dump()):
            log.info("seeded domain %s from the config file", seed.name)


async def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = await open_store(settings.db)  # domains and other reads
    # The writer's own connection, so reads never wait on it; a short lock wait, then it spools.
    writer_store = await open_store(settings.db, busy_timeout=1.0)
    await seed_domains(store, settings)
    first_token = await ensure_admin_token(store)
    if first_token:
        # Like a first-run password: printed once, only its hash is kept.
        print(f"\n  No admin token existed, so one was created. It is shown only this once:\n\n"
              f"      {first_token}\n\n  Use it as 'Authorization: Bearer <token>' on the management API.\n",
              file=sys.stderr, flush=True)
    languages = load_languages()
    writer = HitWriter(writer_store, Spool(settings.spool_dir), settings.queue_size, settings.batch_size,
                       settings.batch_interval_ms / 1000,
                       settings.match_key.get_secret_value().encode() if settings.match_key else None,
                       settings.checkpoint_every_hits, settings.checkpoint_every_s,
                       load_signing_key(settings.signing_key_file) if settings.signing_key_file else None,
                       GeoLookup(settings.geoip_city_db, settings.geoip_asn_db))
    await writer.start()

    public_app = PublicApp(
        node=settings.node,
        domains=await load_table(store, settings.notice),
        resolver=ClientResolver(settings.trusted_proxies, settings.client_port_header),
        html=HtmlNotice(settings.templates_dir, languages),
        assets=Assets(settings.static_dir, [*SECURITY_HEADERS, (b"cache-control", b"public, max-age=3600")]),
        languages=languages,
        writer=writer,
        body_cap=settings.body_cap,
        videos=NoticeVideos(settings.video_dir),
    )
    public_host, public_port = split_address(settings.public)
    admin_host, admin_port = split_address(settings.admin)
    common = dict(lifespan="off", ws="none", proxy_headers=False, server_header=False, log_config=None,
                  access_log=False, timeout_graceful_shutdown=15)
    listeners = [
        _Listener(uvicorn.Config(public_app, host=public_host, port=public_port, http=recording_protocol(public_app),
                                 h11_max_incomplete_event_size=64 * 1024, **common)),
        _Listener(uvicorn.Config(create_management_app(store=store, writer=writer, settings=settings),
                                 host=admin_host, port=admin_port, **common)),
    ]

    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        log.info("received %s: finishing requests in flight, then draining the hit log", signal.Signals(signum).name)
        for listener in listeners:
            if listener.should_exit:
                listener.force_exit = True
            listener.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(signal.SIGHUP, writer.geo.request_reload)  # reopen replaced GeoIP databases

    async def follow_domains() -> None:
        version = await store.domains_version()
        while True:
            await asyncio.sleep(DOMAIN_POLL)
            try:
                current = await store.domains_version()
                if current != version:
                    public_app.domains = await load_table(store, settings.notice)
                    version = current
                    log.info("domain list reloaded: %d domains", len(public_app.domains))
            except Exception as error:
                log.warning("could not reload domains: %s", error)

    async def prerender_videos() -> None:
        """Render each active domain's notice video ahead of the first player that asks for it."""
        domains = public_app.domains
        for notice in [*domains.notices(), domains.default]:
            try:
                await public_app.videos.file(list(public_app.video_lines(notice, notice.language)), "notice.ts")
            except Exception as error:
                log.warning("could not pre-render the notice video for %s: %s", notice.domain, error)

    follower = asyncio.create_task(follow_domains())
    retention = asyncio.create_task(purge_daily(store, settings.retention_days) if settings.retention_days else asyncio.sleep(0))
    prerender = asyncio.create_task(prerender_videos() if settings.prerender_videos else asyncio.sleep(0))
    try:
        await asyncio.gather(*(listener.serve() for listener in listeners))
    finally:
        follower.cancel()
        retention.cancel()
        prerender.cancel()
        await writer.close()
        await writer_store.close()
        await store.close()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def run(settings: Settings) -> None:
    """Serve on uvloop where it is installed (it is with uvicorn[standard]): markedly faster."""
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings))
