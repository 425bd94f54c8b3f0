"""What the public listener answers (listener.py parses, this decides): every host, path and
method gets the notice, in the form the client can show (see clients.py), and the hit is journaled
before the answer is sent. No routing framework: per-domain pages and headers are precomputed, a
request only fills in its own IP, port and time."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import re
import time
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import quote

from . import metrics
from .assets import Assets
from .capture import ClientResolver, unmapped
from .clients import VOD_EXTENSIONS, ClientInfo, account_query, classify
from .domains import DomainTable, Notice
from .journal import encode, pack_headers
from .notice.html import HtmlNotice
from .notice.iptv import RESPONDERS, IptvNotice, visit_texts
from .notice.texts import choose_language
from .notice.video import HLS_TYPE, MP4_TYPE, TS_TYPE, NoticeVideos, hls_playlist, ranged, video_lines
from .notice.visit_video import VTT_TYPE, VisitVideos, master_playlist, subtitles_playlist, webvtt
from .record import utc_second

log = logging.getLogger("seized.public")

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
NO_CACHE = (b"cache-control", b"no-store")
NO_STORE = [NO_CACHE, (b"x-content-type-options", b"nosniff")]  # (and nosniff: no answer is sniffed as markup)
# Shown if building the real page ever fails: the visitor still sees a notice, the hit is still logged.
FALLBACK_PAGE = b"<!doctype html><title>Seized</title><h1>This domain has been seized</h1>"
NOT_HTTP = b"Bad request: this is not an HTTP request.\n"
# A Host we put into URLs we hand out (playlists, stream links); anything else is not echoed.
SAFE_HOST = re.compile(r"^(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?$")
VIDEO_PATH = re.compile(r"^/_seized/video/([a-z]{2,8})(?:\.(ts|mp4|m3u8)|/seg(\d)\.ts|/(notice\.m3u8|visit\.m3u8|visit\.vtt))$")


PLAIN_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), *NO_STORE]
FALLBACK_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), *NO_STORE]
CLASSIFY_CACHE = 8192  # distinct requests (path, query, headers) whose classification is remembered


def header_block(headers) -> bytes:
    """Header lines as sent: b'name: value\\r\\n' each."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def display_time(ns: int) -> str:
    """'2026-11-23 06:00:25.123 UTC'; the last one is remembered (a busy millisecond asks often)."""
    millisecond = ns // 1_000_000
    if millisecond != _last_display[0]:
        seconds, rest = divmod(millisecond, 1000)
        _last_display[:] = millisecond, f"{utc_second(seconds, ' ')}.{rest:03d} UTC"
    return _last_display[1]


_last_display: list = [None, ""]


class PublicApp:
    def __init__(self, *, node: str, domains: DomainTable, resolver: ClientResolver, html: HtmlNotice,
                 assets: Assets, languages, journal, videos: NoticeVideos, visit_videos: VisitVideos | None = None):
        self.node = node
        self.domains = domains  # replaced whole when the domain list changes
        self.resolver = resolver
        self.html = html
        self.assets = assets
        self.languages = languages
        self.journal = journal
        # A hit's uid: its time, this process's random source and a counter (capture.make_uid);
        # fixed in the journal, so ingesting a record twice adds nothing.
        self._source = os.urandom(4).hex()
        self._sequence = itertools.count()
        self.videos = videos
        self.visit_videos = visit_videos  # None: every player gets the shared notice video, no per-visit values
        self.notice_headers = lru_cache(maxsize=4096)(self._notice_headers)
        self.video_lines = lru_cache(maxsize=4096)(self._video_lines)
        self._classified: dict[tuple, ClientInfo] = {}
        self._packed_headers: dict[tuple, bytes] = {}
        self._languages_chosen: dict[tuple[bytes, str], str] = {}

    @staticmethod
    def _notice_headers(notice: Notice, lang: str) -> bytes:
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-language", lang.encode()),
                   *SECURITY_HEADERS, NO_CACHE]
        if notice.blocked_by:
            url = quote(notice.blocked_by, safe=":/?#[]@!$&'()*+,;=%~")
            headers.append((b"link", f'<{url}>; rel="blocked-by"'.encode("ascii")))
        return header_block(headers)

    def _video_lines(self, notice: Notice, lang: str) -> tuple[str, ...]:
        return video_lines(self.languages[lang], notice)

    def handle(self, method: str, raw_path: bytes, query: bytes, http_version: str, headers, peer, server,
               received_ns: int, started: float, body_size: int, body_sha256, form_body, error=None,
               plain_status: int | None = None, scheme: str = "http", proxied=None):
        """A parsed request -> (status, header block, body), its hit journaled first; or, for a
        stream URL whose video must be read or rendered, an awaitable of the same. `error` is
        recorded with the hit; `plain_status` as in answer() (0: logged only, nothing is sent)."""
        client = self._classify(raw_path, query, form_body, headers)
        prepared = None
        if plain_status is not None or error is not None:
            if client.route == "stream" or client.route == "video":
                client = dataclasses.replace(client, route="html")  # a request cut short gets no video
            return self.answer(received_ns, started, method, raw_path, query, http_version, headers, peer, server,
                               scheme, client, None, body_size, body_sha256, form_body, error=error,
                               plain_status=plain_status, proxied=proxied)
        if (client.route == "stream" or client.route == "video") and self.assets.get(raw_path) is None:
            peer_ip, peer_port = peer or (None, None)
            client_ip, client_port, _ = self.resolver.resolve(*(proxied or (peer_ip, peer_port)), headers, scheme)
            visitor = (client_ip, client_port, received_ns, scheme)
            prepared = self._video_now(client, raw_path, headers, server, visitor)
            if prepared is None:
                return self._answer_video(client, received_ns, started, method, raw_path, query, http_version, headers,
                                          peer, server, body_size, body_sha256, form_body, scheme, proxied, visitor)
        return self.answer(received_ns, started, method, raw_path, query, http_version, headers, peer, server, scheme,
                           client, prepared or None, body_size, body_sha256, form_body, proxied=proxied)

    def _classify(self, raw_path: bytes, query: bytes, form_body, headers) -> ClientInfo:
        """classify(), remembered: a box repeats the same request with the same headers all day."""
        if form_body is not None:
            return classify(raw_path, query, form_body, headers)
        key = (raw_path, query, tuple(headers))
        client = self._classified.get(key)
        if client is None:
            if len(self._classified) >= CLASSIFY_CACHE:
                self._classified.clear()
            client = self._classified[key] = classify(raw_path, query, None, headers)
        return client

    def _pack_headers(self, headers) -> bytes:
        key = tuple(headers)
        packed = self._packed_headers.get(key)
        if packed is None:
            if len(self._packed_headers) >= CLASSIFY_CACHE:
                self._packed_headers.clear()
            packed = self._packed_headers[key] = pack_headers(key)
        return packed

    async def _answer_video(self, client: ClientInfo, received_ns, started, method, raw_path, query, http_version,
                            headers, peer, server, body_size, body_sha256, form_body, scheme="http", proxied=None,
                            visitor=(None, None, 0, "http")):
        try:
            prepared = await self._video(client, raw_path, headers, server, visitor)
        except asyncio.CancelledError:  # the client left while its video was read or rendered: logged all the same
            self.answer(received_ns, started, method, raw_path, query, http_version, headers, peer, server, scheme,
                        dataclasses.replace(client, route="html"), None, body_size, body_sha256, form_body,
                        error="client closed the connection before its video was ready", plain_status=0, proxied=proxied)
            raise
        return self.answer(received_ns, started, method, raw_path, query, http_version, headers, peer, server, scheme,
                           client, prepared, body_size, body_sha256, form_body, proxied=proxied)

    def _notice_for(self, headers) -> tuple[bytes, bytes, Notice]:
        host = accept_language = sni = b""
        for name, value in headers:
            if name == b"host":
                host = host or value
            elif name == b"accept-language":
                accept_language = value
            elif name == b":tls-sni":  # (tls_listener.py) the name a TLS client asked for, where no Host says one
                sni = value
        host = host or sni
        return host, accept_language, self.domains.match_bytes(host)

    def _language(self, accept_language: bytes, default: str) -> str:
        key = (accept_language, default)
        lang = self._languages_chosen.get(key)
        if lang is None:
            if len(self._languages_chosen) >= CLASSIFY_CACHE:
                self._languages_chosen.clear()
            lang = self._languages_chosen[key] = choose_language(accept_language.decode("latin-1"), self.languages, default)
        return lang

    def _video_plan(self, client: ClientInfo, raw_path: bytes, headers, server, visitor):
        """A stream URL: what to answer it with. Either a response (an HLS playlist, the visit's
        subtitles), or which video, as (lines, file name, content type, per-visit container or None)."""
        host, accept_language, notice = self._notice_for(headers)
        lang = self._language(accept_language, notice.language)
        extension, segment, part = client.extension, None, None
        client_ip, client_port, received_ns, scheme = visitor
        own = VIDEO_PATH.match(raw_path.decode("latin-1"))
        if own:  # our own links: /_seized/video/<lang>.<ext>, /_seized/video/<lang>/seg<i>.ts, .../notice.m3u8...
            lang = own.group(1) if own.group(1) in self.languages else lang
            extension, segment, part = own.group(2) or "ts", own.group(3), own.group(4)
        carried = account_query(client.account)  # every link in a playlist is a hit of this account too
        visit = self.visit_videos is not None
        if extension == "m3u8" or part is not None:
            base = f"{self._base_url(host, scheme, server)[0]}/_seized/video/{lang}"  # https links for an https visitor
            texts = self.languages[lang]
            if part == "visit.vtt":  # written for this request from its own IP, port and time: never cached
                cues = [texts["iptv_title"], f"{texts['your_ip']}: {client_ip or '?'}",
                        f"{texts['your_port']}: {'?' if client_port is None else client_port}",
                        f"{texts['visit_time']}: {display_time(received_ns)}", texts["recorded"]]
                return 200, [(b"content-type", VTT_TYPE), *NO_STORE], webvtt(cues)
            if part == "visit.m3u8":
                return 200, [(b"content-type", HLS_TYPE), *NO_STORE], subtitles_playlist(f"{base}/visit.vtt{carried}")
            if visit and part is None:  # the master playlist: the notice video and its forced subtitle track
                return 200, [(b"content-type", HLS_TYPE), *NO_STORE], master_playlist(
                    lang, texts["your_ip"], f"{base}/notice.m3u8{carried}", f"{base}/visit.m3u8{carried}")
            return 200, [(b"content-type", HLS_TYPE), *NO_STORE], hls_playlist(lambda i: f"{base}/seg{i}.ts{carried}")
        per_visit = None
        if segment is not None:
            name, content_type = f"seg{segment}.ts", TS_TYPE
        elif extension in VOD_EXTENSIONS:
            name, content_type, per_visit = "notice.mp4", MP4_TYPE, "mp4"
        else:
            name, content_type, per_visit = "notice.ts", TS_TYPE, "mpegts"
        if not visit or not client_ip:
            per_visit = None
        return self.video_lines(notice, lang), name, content_type, per_visit and (client_ip, self.languages[lang]["your_ip"], per_visit)

    def _video_now(self, client: ClientInfo, raw_path: bytes, headers, server, visitor=(None, None, 0, "http")):
        """The answer to a stream URL if it needs no waiting (a playlist, or a video already in
        memory); else None. Failures fall back to the HTML notice (`False`)."""
        try:
            plan = self._video_plan(client, raw_path, headers, server, visitor)
            if isinstance(plan[0], int):
                return plan
            lines, name, content_type, per_visit = plan
            if per_visit is not None:
                ip, _, container = per_visit
                data = self.visit_videos.cached(ip, lines, container)
                return None if data is None else self._ranged(data, content_type, headers)
            data = self.videos.cached(lines, name)
            return None if data is None else self._ranged(data, content_type, headers)
        except Exception:
            log.exception("the notice video failed; answering with the HTML notice")
            return False

    async def _video(self, client: ClientInfo, raw_path: bytes, headers, server, visitor=(None, None, 0, "http")):
        """A stream URL whose video must be read or rendered first: the visitor's own if it can be
        had (rendered now, or the renders are all busy: None), else the shared notice video."""
        try:
            lines, name, content_type, per_visit = self._video_plan(client, raw_path, headers, server, visitor)
            if per_visit is not None:
                ip, label, container = per_visit
                try:
                    data = await self.visit_videos.file(ip, lines, label, container)
                except Exception:
                    log.exception("the visitor's video failed; answering with the shared notice video")
                    data = None
                if data is not None:
                    return self._ranged(data, content_type, headers)
            return self._ranged(await self.videos.file(list(lines), name), content_type, headers)
        except Exception:
            log.exception("the notice video failed; answering with the HTML notice")
            return None

    @staticmethod
    def _ranged(data: bytes, content_type: bytes, headers):
        range_header = next((v.decode("latin-1") for k, v in headers if k == b"range"), None)
        return ranged(data, content_type, range_header, NO_STORE)

    @staticmethod
    def _base_url(host: bytes, scheme: str, server) -> tuple[str, str, int]:
        """(base URL, host name, port) for links we hand out: the Host header when it is a plain
        host name, else this server's own address."""
        text = host.decode("latin-1")
        if not SAFE_HOST.match(text):
            address, port = server or ("127.0.0.1", 80)
            text = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        name, _, port_text = text.rpartition(":") if text.rpartition(":")[2].isdigit() and not text.endswith("]") else (text, "", "")
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
        return f"{scheme}://{text}", name.strip("[]"), port

    def answer(self, received_ns: int, started: float, method: str, raw_path: bytes, query: bytes, http_version: str,
               headers, peer, server, scheme: str, client: ClientInfo, prepared=None, body_size: int = 0,
               body_sha256=None, form_body=None, error=None, not_http: bool = False, plain_status: int | None = None,
               proxied=None):
        """The response for one request, after its hit is in the journal: (status, header block, body).
        `not_http`: bytes that do not read as an HTTP request get a plain 400 instead of the notice."""
        host, accept_language, notice = self._notice_for(headers)
        peer_ip, peer_port = peer or (None, None)
        listener = scheme  # the connection's own (http, or https on the TLS listener), for the metrics
        # The client: the TCP peer, or whom a trusted proxy's PROXY header named; then its forwarding header.
        client_ip, client_port, scheme = self.resolver.resolve(*(proxied or (peer_ip, peer_port)), headers, scheme)
        try:
            if plain_status == 0:  # nothing sent (the client left, or the connection was closed before it)
                status, response_headers, body = 0, b"", b""
            elif plain_status is not None:
                status, response_headers, body = plain_status, PLAIN_HEADERS, \
                    f"{HTTPStatus(plain_status).phrase}: {error}\n".encode()
            elif not_http:
                status, response_headers, body = 400, PLAIN_HEADERS, NOT_HTTP
            elif prepared is not None:
                status, response_headers, body = prepared
            else:
                status, response_headers, body = self._respond(notice, raw_path, accept_language, client_ip, client_port,
                                                               received_ns, client, host, scheme, server)
        except Exception:
            log.exception("building the notice failed; sending the fallback page")
            status, response_headers, body = notice.status, FALLBACK_HEADERS, FALLBACK_PAGE

        elapsed = time.perf_counter() - started
        metrics.worker.request(listener, client.kind, elapsed)  # before the journal: timed by the time it is stored
        self.journal.append(encode((
            self._source, next(self._sequence), received_ns, self.node, host, notice.domain, scheme, method, raw_path,
            query, http_version, client_ip, client_port, peer_ip, peer_port,
            server[0] if server else None, server[1] if server else None,  # the local address: behind a proxy, its side
            self._pack_headers(headers), body_size, body_sha256, form_body, status, elapsed * 1000, error,
        )))
        if not isinstance(response_headers, bytes):
            response_headers = header_block(response_headers)
        return status, response_headers + b"content-length: %d\r\n" % len(body), body

    def _respond(self, notice: Notice, raw_path: bytes, accept_language: bytes, client_ip, client_port, received_ns,
                 client: ClientInfo, host: bytes, scheme: str, server):
        asset = self.assets.get(raw_path)
        if asset is not None:
            return 200, asset.headers, asset.body
        lang = self._language(accept_language, notice.language)
        responder = RESPONDERS.get(client.route)
        if responder is not None:
            iptv = self._iptv_notice(notice, lang, client_ip, client_port, host, scheme, server, received_ns, client.account)
            return responder(iptv, client.params)
        body = self.html.render_fast(notice, lang, client_ip or "", "" if client_port is None else str(client_port),
                                     display_time(received_ns))
        return notice.status, self.notice_headers(notice, lang), body

    def _iptv_notice(self, notice: Notice, lang: str, client_ip, client_port, host: bytes, scheme: str, server,
                     received_ns: int, account: str | None = None) -> IptvNotice:
        # Per request: its texts carry this visitor's IP, port and time (nothing of it is cached).
        texts = visit_texts(self.languages[lang], notice.agency, notice.case_ref, client_ip, client_port,
                            display_time(received_ns))
        base_url, host_name, port = self._base_url(host, scheme, server)
        return IptvNotice(
            **texts, base_url=base_url, host=host_name, port=port, scheme=scheme, lang=lang, now=received_ns // 1_000_000_000,
            account=account)

    def tls_failed(self, peer, server, sni: str | None, headers, reason: str) -> None:
        """A TLS connection that never carried a request (its handshake failed: a client rejecting our
        certificate, no TLS at all, gone): a hit all the same, nothing sent, the ClientHello in its
        headers (tls_listener.tls_headers) and the reason."""
        peer = (unmapped(peer[0]), peer[1]) if peer else None
        server = (unmapped(server[0]), server[1]) if server else None
        client = classify(b"", b"", None, headers)
        self.answer(time.time_ns(), time.perf_counter(), "", b"", b"", "", headers, peer, server, "https", client,
                    error=reason, plain_status=0)

    def answer_rejected(self, *, peer, server, method: str, target: bytes, http_version: str, headers, reason: str,
                        status: int | None = None, body_size: int = 0, scheme: str = "http", proxied=None):
        """A request the strict parser refused (unknown method, raw UTF-8 in the path, a NUL in a
        header...). It is logged all the same; if it still reads as an HTTP request it gets the notice
        (never a video: this path cannot wait for one), otherwise a plain 400; `status` (e.g. 431 for
        too large a head) answers with that status and a plain explanation."""
        raw_path, _, query = target.partition(b"?")
        client = classify(raw_path, query, None, headers)
        if client.route in ("stream", "video"):
            client.route = "html"
        return self.answer(time.time_ns(), time.perf_counter(), method, raw_path, query, http_version, headers, peer,
                           server, scheme, client, body_size=body_size, error=reason, not_http=not (method and http_version),
                           plain_status=status, proxied=proxied)
