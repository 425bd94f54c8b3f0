"""A public listener worker: its own process, serving the notice on the shared public socket and
writing each hit to its own journal segment before answering. It holds no database connection:
the domain list comes from a file the supervisor writes (domains.py), so a database that is
locked, missing or broken never touches the visitors."""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import signal
import socket
import time

from . import metrics
from .assets import Assets
from .capture import ClientResolver
from .config import Settings
from .domains import read_table_file
from .journal import JournalWriter
from .listener import HttpConnection
from .notice.html import HtmlNotice
from .notice.texts import load_languages
from .notice.video import NoticeVideos
from .notice.visit_video import VisitVideos
from .process import die_with_parent, quiet_gc, run_async, setup_logging
from .public import SECURITY_HEADERS, PublicApp
from .status import WORKER_FIELDS, Counters

log = logging.getLogger("seized.worker")
SWEEP = 1.0  # seconds between checks for idle connections, held hits and a new domain list


def run(settings: Settings, socks: list[socket.socket], index: int, tls_socks: list[socket.socket], array) -> None:
    """Process entry point (multiprocessing, spawn)."""
    die_with_parent()
    setup_logging(f"worker-{index}")
    counters = Counters(WORKER_FIELDS, array)
    counters.mark_started()
    metrics.bind_worker(counters)
    # Descriptors beyond the connections: the journal, the listening sockets, the video files, logs.
    by_files = max(64, raise_file_limit() - 256)
    HttpConnection.max_connections = min(settings.max_connections or by_files, by_files)
    raise SystemExit(run_async(serve(settings, socks, index, counters, tls_socks)))


def raise_file_limit() -> int:
    """Every connection holds a descriptor: raise the soft open-file limit (often 1024) to the hard
    one, so thousands of slow clients do not stop the worker accepting. Logged; the hard limit
    itself is the system's to raise (README, "Limits")."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, error)
    log.info("open-file limit %s (hard %s): at most about that many connections at once", soft,
             "unlimited" if hard == resource.RLIM_INFINITY else hard)
    return soft


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(settings: Settings, socks: list[socket.socket], index: int, counters: Counters,
                tls_socks: list[socket.socket] = ()) -> int:
    journal = JournalWriter(settings.journal_dir, f"{re.sub(r'[^A-Za-z0-9_-]', '_', settings.node)}.w{index}", settings.journal_segment_mb * 1024 * 1024,
                            settings.fsync_interval_ms / 1000, settings.journal_held_limit, counters.array)
    journal.open()
    languages = load_languages()
    domains_file = settings.run_dir / "domains.json"
    table, domains_stamp = read_table_file(domains_file, settings.notice)
    app = PublicApp(
        node=settings.node, domains=table,
        resolver=ClientResolver(settings.trusted_proxies, settings.client_port_header, settings.forwarded_header),
        html=HtmlNotice(settings.templates_dir, languages),
        assets=Assets(settings.static_dir, [*SECURITY_HEADERS, (b"cache-control", b"public, max-age=3600")]),
        languages=languages, journal=journal, videos=NoticeVideos(settings.video_dir),
        visit_videos=VisitVideos(settings.visit_video_cache_mb * 1024 * 1024, settings.visit_video_renders)
        if settings.visit_video else None,
    )
    loop = asyncio.get_running_loop()
    connections: set[HttpConnection] = set()
    def http() -> HttpConnection:
        return HttpConnection(app, connections, settings.body_cap, settings.max_header_bytes, settings.header_timeout_s)

    servers = [await loop.create_server(http, sock=sock, backlog=2048) for sock in socks]  # the same app behind each
    if tls_socks:
        from .tls import CertificateStore
        from .tls_listener import TlsConnection

        certificates = CertificateStore(settings.tls_cert_dir)
        servers += [await loop.create_server(lambda: TlsConnection(certificates, http, app.tls_failed,
                                                                   settings.header_timeout_s), sock=sock, backlog=2048)
                    for sock in tls_socks]
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    quiet_gc()
    log.info("worker %d listening on %s (pid %d), journal %s", index, ", ".join(
        f"{scheme}://{address}" for scheme, group in (("http", socks), ("https", tls_socks)) for address in map(_address, group)),
        counters["pid"], journal.path and journal.path.name)

    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), SWEEP)
        except asyncio.TimeoutError:
            pass
        now = time.monotonic()
        for connection in list(connections):
            connection.expire(now)
        counters["connections"] = len(connections)
        journal.retry()
        journal.check()
        try:
            changed, stamp = read_table_file(domains_file, settings.notice, domains_stamp)
            if changed is not None:
                app.domains, domains_stamp = changed, stamp
                log.info("domain list reloaded: %d domains", len(changed))
        except Exception as error:
            log.warning("could not reload the domain list: %s", error)

    # Stop: accept nothing more, let connections finish what they were answering, then close
    # the journal; anything it could not save is counted and reported.
    for server in servers:
        server.close()
    for connection in list(connections):
        connection.shutdown()
    deadline = time.monotonic() + settings.stop_timeout_s * 0.4
    while connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for connection in list(connections):
        connection.transport.abort()
    unsaved = journal.close()
    snapshot = counters.as_dict()
    if unsaved or snapshot["lost"]:
        log.critical("worker %d stopped: %d hits answered but not saved (%d of them held at stop)",
                     index, snapshot["lost"], unsaved)
    log.info("worker %d stopped: %d hits received, %d journaled", index, snapshot["received"], snapshot["journaled"])
    return 0
