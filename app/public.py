"""The public listener: a bare ASGI app that answers every host, path and method with the
notice and hands a Hit to the writer. No routing framework: per-domain pages and headers are
precomputed, a request only fills in its own IP, port and time."""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from urllib.parse import quote

from .assets import Assets
from .capture import FORM_TYPE, ClientResolver, Hit, read_body
from .domains import DomainTable, Notice
from .notice.html import HtmlNotice
from .notice.texts import choose_language
from .record import utc_second

log = logging.getLogger("seized.public")

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
NO_STORE = [(b"cache-control", b"no-store")]
# Shown if building the real page ever fails: the visitor still sees a notice, the hit is still logged.
FALLBACK_PAGE = b"<!doctype html><title>Seized</title><h1>This domain has been seized</h1>"
NOT_HTTP = b"Bad request: this is not an HTTP request.\n"


def display_time(ns: int) -> str:
    """'2026-11-23 06:00:25.123 UTC'."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{utc_second(seconds, ' ')}.{rest // 1_000_000:03d} UTC"


class PublicApp:
    def __init__(self, *, node: str, domains: DomainTable, resolver: ClientResolver, html: HtmlNotice,
                 assets: Assets, languages, writer, body_cap: int):
        self.node = node
        self.domains = domains  # replaced whole when the domain list changes
        self.resolver = resolver
        self.html = html
        self.assets = assets
        self.languages = languages
        self.writer = writer
        self.body_cap = body_cap
        self.notice_headers = lru_cache(maxsize=4096)(self._notice_headers)

    @staticmethod
    def _notice_headers(notice: Notice, lang: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-language", lang.encode()),
                   *SECURITY_HEADERS, *NO_STORE]
        if notice.blocked_by:
            url = quote(notice.blocked_by, safe=":/?#[]@!$&'()*+,;=%~")
            headers.append((b"link", f'<{url}>; rel="blocked-by"'.encode("ascii")))
        return headers

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        received_ns = time.time_ns()
        started = time.perf_counter()
        is_form = any(name == b"content-type" and value.partition(b";")[0].strip().lower() == FORM_TYPE
                      for name, value in scope["headers"])
        body_size, body_sha256, form_body = await read_body(receive, self.body_cap, is_form)
        status, headers, body = self.answer(
            received_ns=received_ns, started=started, method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode("utf-8"), query=scope.get("query_string", b""),
            http_version=scope.get("http_version", ""), headers=scope["headers"], peer=scope.get("client"),
            server=scope.get("server"), scheme=scope.get("scheme", "http"),
            body_size=body_size, body_sha256=body_sha256, form_body=form_body,
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def answer(self, *, received_ns: int, started: float, method: str, raw_path: bytes, query: bytes, http_version: str,
               headers, peer, server, scheme: str, body_size: int = 0, body_sha256=None, form_body=None, error=None,
               not_http: bool = False):
        """The response for one request, after handing its Hit to the writer: (status, headers, body).
        `not_http`: bytes that do not read as an HTTP request get a plain 400 instead of the notice."""
        host = accept_language = b""
        for name, value in headers:
            if name == b"host":
                host = host or value
            elif name == b"accept-language":
                accept_language = value
        peer_ip, peer_port = peer or (None, None)
        client_ip, client_port, scheme = self.resolver.resolve(peer_ip, peer_port, headers, scheme)
        notice = self.domains.match(host.decode("latin-1"))
        try:
            if not_http:
                status, response_headers, body = 400, [(b"content-type", b"text/plain; charset=utf-8"), *NO_STORE], NOT_HTTP
            else:
                status, response_headers, body = self._respond(notice, raw_path, accept_language, client_ip, client_port, received_ns)
        except Exception:
            log.exception("building the notice failed; sending the fallback page")
            status, response_headers, body = notice.status, [(b"content-type", b"text/html; charset=utf-8"), *NO_STORE], FALLBACK_PAGE

        self.writer.submit(Hit(
            received_at_ns=received_ns, node=self.node, host=host, domain=notice.domain, scheme=scheme,
            method=method, raw_path=raw_path, query=query, http_version=http_version,
            client_ip=client_ip, client_port=client_port, peer_ip=peer_ip, peer_port=peer_port,
            server_port=(server or (None, None))[1], headers=headers, body_size=body_size, body_sha256=body_sha256,
            form_body=form_body, status=status, duration_ms=(time.perf_counter() - started) * 1000, error=error,
        ))
        return status, [*response_headers, (b"content-length", str(len(body)).encode())], body

    def _respond(self, notice: Notice, raw_path: bytes, accept_language: bytes, client_ip, client_port, received_ns):
        asset = self.assets.get(raw_path)
        if asset is not None:
            return 200, asset.headers, asset.body
        lang = choose_language(accept_language.decode("latin-1"), self.languages, notice.language)
        body = self.html.render(notice, lang, {
            "ip": client_ip or "", "port": "" if client_port is None else str(client_port), "time": display_time(received_ns),
        })
        return notice.status, self.notice_headers(notice, lang), body

    def answer_rejected(self, *, peer, server, method: str, target: bytes, http_version: str, headers, reason: str):
        """A request uvicorn's strict parser refused (unknown method, raw UTF-8 in the path, a NUL in a
        header...). It is logged all the same; if it still reads as an HTTP request it gets the notice,
        otherwise a plain 400."""
        raw_path, _, query = target.partition(b"?")
        return self.answer(
            received_ns=time.time_ns(), started=time.perf_counter(), method=method, raw_path=raw_path, query=query,
            http_version=http_version, headers=headers, peer=peer, server=server, scheme="http", error=reason,
            not_http=not (method and http_version),
        )
