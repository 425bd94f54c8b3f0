"""The public listener's HTTP/1.1 server: an asyncio protocol over httptools (llhttp), no ASGI
layer in between. Measured against uvicorn and granian (bench/anchors.py, bench/RESULTS.md): it
costs less CPU per request than either, and granian's parser would drop malformed requests before
our code could log them. Here every byte sequence reaches us: what llhttp rejects
(unknown methods, raw UTF-8, NUL or bare CR in headers, oversized heads, bytes that are not HTTP)
is read leniently from the bytes kept (protocol.py), logged, and answered.

One connection: requests are answered in order (pipelining included); a request whose answer
needs the notice video is awaited in a task while later ones queue behind it."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from http import HTTPStatus

import httptools

from .capture import FORM_TYPE, unmapped
from .protocol import parse_head

log = logging.getLogger("seized.listener")

HEAD_CAP = 64 * 1024  # bytes of request line and headers; more is answered 431 (and logged)
KEEPALIVE_TIMEOUT = 5.0  # an idle keep-alive connection is closed after this
REQUEST_TIMEOUT = 30.0  # a request still incomplete after this much silence is closed
LARGE_BODY = 64 * 1024  # a body this large is written after its head, not copied behind it
STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii") for status in HTTPStatus}


class _Clock:
    """The Date header, formatted once a second."""

    second = -1
    header = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.header = b"date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode() + b"\r\n"
        return cls.header


def serialize(status: int, header_block: bytes, body: bytes, head_only: bool, close: bool) -> bytes:
    """The response bytes; `header_block` is the header lines, content-length included."""
    return b"".join((STATUS_LINES.get(status) or b"HTTP/1.1 %d Status\r\n" % status, _Clock.date(), header_block,
                     b"connection: close\r\n\r\n" if close else b"\r\n", b"" if head_only else body))


class _Slot:
    """A place in a connection's answer queue, filled when its (awaited) answer is ready."""

    __slots__ = ("data", "close")

    def __init__(self):
        self.data: bytes | None = None
        self.close = False


class HttpConnection(asyncio.Protocol):
    __slots__ = ("app", "connections", "body_cap", "transport", "parser", "peer", "server", "head", "head_size",
                 "url", "headers", "received_ns", "started", "body_size", "body_digest", "form", "in_body",
                 "queue", "closing", "last_active", "in_request", "tasks")

    def __init__(self, app, connections: set, body_cap: int):
        self.app = app
        self.connections = connections
        self.body_cap = body_cap
        self.transport = None
        self.queue: collections.deque[_Slot] = collections.deque()
        self.closing = False
        self.tasks: set[asyncio.Task] = set()

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.server = transport.get_extra_info("sockname")
        if self.peer is not None:
            self.peer = self.peer[:2]
        if self.server is not None:
            # (address, port) the connection arrived at: the hit's server_ip and server_port
            self.server = (unmapped(self.server[0]), self.server[1])
        self.parser = httptools.HttpRequestParser(self)
        self.head = b""
        self.head_size = 0
        self.in_body = False
        self.in_request = False
        self.last_active = time.monotonic()
        self.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.connections.discard(self)
        self.closing = True
        for task in self.tasks:
            task.cancel()

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.closing:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_active = time.monotonic()
        if not self.in_body:
            # Kept for the lenient reader, should llhttp reject this request.
            self.head = self.head + data if self.head_size < HEAD_CAP else self.head
            self.head_size += len(data)
            if self.head_size > HEAD_CAP:
                self._reject("request head larger than 64 KiB", 431)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.closing = True  # answered as a plain request above; no protocol switch here
            self._flush()
        except httptools.HttpParserError as error:
            self._reject(f"strict HTTP parser: {error}")

    def expire(self, now: float) -> None:
        """Called by the worker's sweep: close idle keep-alive connections and stalled requests."""
        if self.queue:
            return
        limit = REQUEST_TIMEOUT if self.in_request else KEEPALIVE_TIMEOUT
        if now - self.last_active > limit:
            self.closing = True
            self.transport.close()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_request = True
        self.url = b""
        self.headers = []
        self.received_ns = time.time_ns()
        self.started = time.perf_counter()
        self.body_size = 0
        self.body_digest = None
        self.form = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_body = True
        for name, value in self.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif name == b"content-type" and value.partition(b";")[0].strip().lower() == FORM_TYPE:
                self.form = []  # form bodies are kept (up to the cap): they may carry credentials

    def on_body(self, chunk: bytes) -> None:
        room = self.body_cap - self.body_size
        if room > 0:
            head = chunk[:room]
            if self.body_digest is None:
                self.body_digest = hashlib.sha256()
            self.body_digest.update(head)
            if self.form is not None:
                self.form.append(head)
        self.body_size += len(chunk)

    def on_message_complete(self) -> None:
        self.in_body = self.in_request = False
        self.head, self.head_size = b"", 0
        url = self.url
        if url[:1] == b"/":
            raw_path, _, query = url.partition(b"?")
        else:  # absolute-form (a proxy request) or '*'
            try:
                parsed = httptools.parse_url(url)
                raw_path, query = parsed.path or b"/", parsed.query or b""
            except httptools.HttpParserInvalidURLError:
                raw_path, query = url, b""
        parser = self.parser
        method = parser.get_method().decode("ascii", "replace")
        keep_alive = parser.should_keep_alive()
        answer = self.app.handle(
            method, raw_path, query, parser.get_http_version(), self.headers, self.peer, self.server, self.received_ns,
            self.started, self.body_size, self.body_digest.hexdigest() if self.body_digest is not None else None,
            b"".join(self.form) if self.form else None)
        if answer.__class__ is tuple and not self.queue:  # the common case: answered at once
            status, block, body = answer
            if len(body) > LARGE_BODY and method != "HEAD":  # a video: sent as is, not copied behind its head
                self.transport.write(serialize(status, block, b"", True, not keep_alive))
                self.transport.write(body)
            else:
                self.transport.write(serialize(status, block, body, method == "HEAD", not keep_alive))
            if not keep_alive:
                self.closing = True
                self.transport.close()
            return
        slot = _Slot()
        self.queue.append(slot)
        if isinstance(answer, tuple):
            self._fill(slot, answer, method == "HEAD", not keep_alive)
        else:
            task = asyncio.ensure_future(self._await(slot, answer, method == "HEAD", not keep_alive))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    # -- answers ---------------------------------------------------------------------------

    async def _await(self, slot: _Slot, answer, head_only: bool, close: bool) -> None:
        try:
            result = await answer
        except Exception:
            log.exception("answering a stream request failed")
            result = (500, b"content-length: 0\r\n", b"")
            close = True
        self._fill(slot, result, head_only, close)

    def _fill(self, slot: _Slot, answer, head_only: bool, close: bool) -> None:
        status, headers, body = answer
        slot.data = serialize(status, headers, body, head_only, close)
        slot.close = close
        self._flush()

    def _flush(self) -> None:
        """Write every answer at the head of the queue that is ready, in request order."""
        queue = self.queue
        while queue and queue[0].data is not None:
            slot = queue.popleft()
            if self.transport.is_closing():
                queue.clear()
                return
            self.transport.write(slot.data)
            if slot.close:
                self.closing = True
                queue.clear()
                self.transport.close()
                return
        if self.closing and not queue and not self.transport.is_closing():
            self.transport.close()

    def _reject(self, reason: str, status: int | None = None) -> None:
        """A request llhttp refused (or too large a head): logged and answered from the bytes kept."""
        self.closing = True
        head, self.head = self.head, b""
        try:
            method, target, version, headers = parse_head(head)
            status_, response_headers, body = self.app.answer_rejected(
                peer=self.peer, server=self.server, method=method, target=target, http_version=version,
                headers=headers, reason=reason, status=status)
        except Exception:
            log.exception("could not answer a rejected request")
            status_, response_headers, body, method = 400, b"content-length: 0\r\n", b"", ""
        slot = _Slot()
        slot.data = serialize(status_, response_headers, body, method == "HEAD", True)
        slot.close = True
        self.queue.append(slot)
        self._flush()

    def shutdown(self) -> None:
        """Stop: an idle connection closes now; a busy one after its queued answers."""
        self.closing = True
        if not self.queue and not self.in_request:
            self.transport.close()
