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
import heapq
import logging
import re
import time
from http import HTTPStatus

import httptools

from . import proxy_protocol
from .capture import FORM_TYPE, unmapped
from .protocol import parse_head

log = logging.getLogger("seized.listener")

HEAD_CAP = 64 * 1024  # bytes of request line and headers; more is answered 431 (and logged); max_header_bytes
HEAD_TIMEOUT = 10.0  # a request head not complete this long after its first byte: 408 (and logged); header_timeout_s
KEEPALIVE_TIMEOUT = 5.0  # an idle keep-alive connection is closed after this
REQUEST_TIMEOUT = 30.0  # a request body still incomplete after this much silence: 408 (and logged)
LINGER = 2.0  # after a closing error answer, the client's further bytes are read and dropped this long
EXTRA_REQUESTS = 100  # requests read leniently behind a malformed one in the same packet (each logged and answered)
LARGE_BODY = 64 * 1024  # a body this large is written after its head, not copied behind it
HEAD_END = re.compile(rb"(\r?\n\r?\n)")
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


def _skip_body(head: bytes, rest: bytes) -> bytes | None:
    """What follows a leniently read request's body in `rest`; None if that cannot be known."""
    headers = parse_head(head)[3] if head else []
    if any(name == b"transfer-encoding" for name, _ in headers):
        return None
    lengths = {value for name, value in headers if name == b"content-length"} or {b"0"}
    length = lengths.pop()
    return rest[int(length):] if not lengths and length.isdigit() else None  # two lengths: which one?


class _Slot:
    """A place in a connection's answer queue, filled when its (awaited) answer is ready."""

    __slots__ = ("data", "close")

    def __init__(self):
        self.data: bytes | None = None
        self.close = False


class HttpConnection(asyncio.Protocol):
    # Open connections a worker keeps before it sheds slow ones (set by the worker from its open-file
    # limit): past the limit it could accept no one, the visitor who is no attacker included.
    max_connections = 1 << 30
    SHED = 64  # connections made room for at once (one scan of them all)
    __slots__ = ("app", "connections", "body_cap", "transport", "parser", "peer", "server", "head", "head_size",
                 "url", "headers", "received_ns", "started", "body_size", "body_digest", "form", "in_body",
                 "queue", "closing", "last_active", "in_request", "tasks", "max_head", "head_timeout", "head_started",
                 "body_left", "done", "boundary_lost", "linger_until", "proxied", "proxy_pending", "scheme", "tls")

    def __init__(self, app, connections: set, body_cap: int, max_head: int = HEAD_CAP, head_timeout: float = HEAD_TIMEOUT):
        self.app = app
        self.connections = connections
        self.body_cap = body_cap
        self.max_head = max_head
        self.head_timeout = head_timeout
        self.transport = None
        self.queue: collections.deque[_Slot] = collections.deque()
        self.closing = False
        self.tasks: set[asyncio.Task] = set()
        # Requests complete in the packet being parsed, answered once it is parsed: bytes behind one
        # that are no request (an unframed body, junk) are told in its record, not logged apart.
        self.done: list[tuple] = []
        self.boundary_lost = False  # a chunked body ended inside the packet: where is not known
        self.linger_until = 0.0  # closing: the time the client's unread bytes stop being drained

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
        # A TLS connection (tls_listener.py): scheme https, the ClientHello as pseudo-headers.
        self.tls = transport.get_extra_info("seized_tls")
        self.scheme = "https" if self.tls else "http"
        # A trusted proxy may start with a PROXY protocol header naming the client (proxy_protocol.py).
        self.proxied = None
        self.proxy_pending = b"" if self.peer is not None and self.app.resolver.is_trusted(self.peer[0]) else None
        self.parser = httptools.HttpRequestParser(self)
        self.head = b""
        self.head_size = 0
        self.in_body = False
        self.in_request = False
        self.body_left = 0
        self.last_active = self.head_started = time.monotonic()
        if len(self.connections) >= self.max_connections:
            self._make_room()
        self.connections.add(self)

    def _make_room(self) -> None:
        """Near the open-file limit: close the idle connections and the slowest incomplete request
        heads (a slowloris flood), the longest waiting first; each request cut is logged with what
        arrived, answered 408. Connections with a request being answered are kept."""
        candidates = [c for c in self.connections if not c.closing and not c.queue and not c.in_body]
        for connection in heapq.nsmallest(self.SHED, candidates, key=lambda c: c.head_started if c.head else c.last_active):
            if connection.head:
                connection._reject("closed to make room: too many open connections (the open-file limit)", 408)
            else:
                connection.closing = True
                connection.transport.close()

    def connection_lost(self, exc) -> None:
        self.connections.discard(self)
        if not self.closing and (self.head or self.in_body):  # the client left mid-request: logged, nothing sent
            self._reject("client closed the connection mid-body" if self.in_body else
                         "client closed the connection before the request head was complete", 0, self.body_size)
        self.closing = True
        for task in self.tasks:
            task.cancel()

    def _proxy_header(self, data: bytes) -> bytes:
        """A trusted peer's first bytes: a PROXY header, taken off (the client and the address it
        connected to noted), or none; what follows is the request. A malformed one is left in place:
        the request then reads as malformed and is logged as such."""
        data = self.proxy_pending + data
        try:
            header = proxy_protocol.parse(data)
        except proxy_protocol.Invalid as error:
            log.info("a malformed PROXY header from %s: %s", self.peer[0], error)
            header = None
        if header == proxy_protocol.NEED_MORE:
            self.proxy_pending = data
            return b""
        self.proxy_pending = None
        if header is None:
            return data
        if header.addresses is not None:
            found = header.addresses
            self.proxied = (unmapped(found.client_ip), found.client_port)
            self.server = (unmapped(found.destination_ip), found.destination_port)
        return data[header.length:]

    def eof_received(self):
        """The client half-closed (shut its sending side): requests it sent before still get their
        answers; a connection with none pending closes. True keeps our side open meanwhile."""
        if self.queue:
            self.closing = True  # _flush closes once the last answer is out
            return True
        return None

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.closing:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """Fed to llhttp a head (up to its blank line) or a sized body at a time, so that the bytes
        of the request being read are known (the lenient reader gets them, a cut request is logged
        with them) and a head over the limit is refused before more of it is kept."""
        if self.closing:
            return
        if self.proxy_pending is not None:
            data = self._proxy_header(data)
            if not data:
                return
        now = time.monotonic()
        if self.head or self.in_body or data.lstrip(b"\r\n"):  # blank lines alone do not keep a connection open
            self.last_active = now
        self.boundary_lost = False
        while data:
            if self.in_body:
                left = self.body_left
                piece = data if left is None or left >= len(data) or left <= 0 else data[:left]
                if left is not None:
                    self.body_left = left - len(piece)
            else:
                head = self.head
                if head:
                    tail = head[-3:]
                    end = (tail + data).find(b"\r\n\r\n")
                    end = -1 if end < 0 else end + 4 - len(tail)
                else:
                    end = data.find(b"\r\n\r\n")
                    end = -1 if end < 0 else end + 4
                piece = data if end < 0 or end >= len(data) else data[:end]
                kept = piece if head else piece.lstrip(b"\r\n")  # blank lines before a request are no part of it
                if kept:
                    if not head:
                        self.head_started = now
                    self.head_size += len(kept)
                    if self.head_size > self.max_head:
                        self.head = (head + kept)[:self.max_head]
                        self._dispatch()
                        self._reject(f"request head over {self.max_head} bytes (max_header_bytes)", 431)
                        return
                    if not head:
                        self.head = kept
                    elif head.__class__ is bytes:  # a head in pieces: a bytearray, so a head trickled a
                        self.head = bytearray(head) + kept  # byte at a time costs no quadratic copying
                    else:
                        head += kept
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                self._dispatch()  # answered as a plain request; no protocol switch here
                self.closing = True
                self._flush()
                return
            except httptools.HttpParserError as error:
                self._parse_failed(f"strict HTTP parser: {error}", data[len(piece):])
                return
            data = data[len(piece):]
        if self.done:
            self._dispatch()

    def expire(self, now: float) -> None:
        """Called by the worker's sweep: close idle keep-alive connections; a request whose head is
        not complete within head_timeout, or whose body stalls, is logged and answered 408."""
        if self.closing:
            if self.linger_until and now > self.linger_until:
                self.transport.close()
            return
        if self.queue:
            return
        if self.in_body:
            if now - self.last_active > REQUEST_TIMEOUT:
                self._reject(f"request body not complete: no data for {REQUEST_TIMEOUT:g} s", 408)
        elif self.head:
            if now - self.head_started > self.head_timeout:
                self._reject(f"request head not complete within {self.head_timeout:g} s (header_timeout_s)", 408)
        elif now - self.last_active > min(KEEPALIVE_TIMEOUT, self.head_timeout):
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
        length, chunked = b"0", False
        for name, value in self.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif name == b"content-type" and value.partition(b";")[0].strip().lower() == FORM_TYPE:
                self.form = []  # form bodies are kept (up to the cap): they may carry credentials
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        try:
            self.body_left = None if chunked else int(length)  # None: chunked, its end found by llhttp alone
        except ValueError:
            self.body_left = None

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
        if self.body_left is None:
            self.boundary_lost = True  # what follows a chunked body in this packet is not in self.head
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
        self.done.append((
            parser.get_method().decode("ascii", "replace"), raw_path, query, parser.get_http_version(), self.headers,
            self.received_ns, self.started, self.body_size,
            self.body_digest.hexdigest() if self.body_digest is not None else None,
            b"".join(self.form) if self.form else None, parser.should_keep_alive()))

    def _dispatch(self, note: str | None = None) -> None:
        """Answer the requests completed in this packet, in order; `note` (bytes behind the last one
        that are no request) goes into the last one's record, which is then answered with close."""
        done, self.done = self.done, []
        if note is None and len(done) == 1 and not self.closing:  # the common case
            self._answer(*done[0])
            return
        for i, message in enumerate(done):
            if self.closing:  # behind a request answered with close: logged, not answered
                self._answer(*message[:-1], False, error="not answered: sent after a request the connection closed "
                                                         "with", plain_status=0)
            elif note is not None and i == len(done) - 1:
                self._answer(*message[:-1], False, error=note)
            else:
                self._answer(*message)

    def _answer(self, method, raw_path, query, version, headers, received_ns, started, body_size, digest, form,
                keep_alive, error=None, plain_status=None) -> None:
        answer = self.app.handle(method, raw_path, query, version, self.tls + headers if self.tls else headers, self.peer,
                                 self.server, received_ns, started, body_size, digest, form, error, plain_status,
                                 scheme=self.scheme, proxied=self.proxied)
        if plain_status == 0:
            return
        if answer.__class__ is tuple and not self.queue:  # the common case: answered at once
            status, block, body = answer
            if len(body) > LARGE_BODY and method != "HEAD":  # a video: sent as is, not copied behind its head
                self.transport.write(serialize(status, block, b"", True, not keep_alive))
                self.transport.write(body)
            else:
                self.transport.write(serialize(status, block, body, method == "HEAD", not keep_alive))
            if not keep_alive:
                self.closing = True
                if error is None:
                    self.transport.close()
                else:  # bytes may follow that were not read
                    self._close()
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
                queue.clear()
                self._close()
                return
        if self.closing and not queue and not self.transport.is_closing():
            self._close()

    def _close(self) -> None:
        """Close after the last answer, lingering: our side is shut (the client reads the answer to
        its end) and what the client still sends is read and dropped until it closes, for at most
        LINGER s. Closing with unread input would reset the connection, destroying the answer in
        flight (a 431 to a client still sending its huge head, a 400 to a pipeline)."""
        self.closing = True
        transport = self.transport
        if self.linger_until or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
            self.linger_until = time.monotonic() + LINGER
        else:
            transport.close()

    def _parse_failed(self, reason: str, rest: bytes) -> None:
        """llhttp refused the request being read. Bytes right behind a complete request in the same
        packet that do not read as a request at all (an unframed or badly framed body, junk) belong
        to it: told in its record, one hit. Otherwise the refused request is logged and answered from
        its bytes, and so is each request behind it in the packet; then the connection is closed."""
        head, in_body = bytes(self.head), self.in_body
        method, _, version, _ = parse_head(head) if head else ("", b"", "", [])
        if self.done and not in_body and not (method and version):
            size = len(head) + len(rest)
            self.head = b""
            self._dispatch(note=f"followed by {'' if self.boundary_lost else f'{size} '}bytes that are no HTTP "
                                f"request ({reason})" + (f": {head[:48]!r}" if head else ""))
            self.closing = True
            self._flush()
            return
        self._dispatch()
        if self.closing:  # the last complete request closed the connection: this one is only logged
            self._reject(reason, 0)
            return
        if method == "PRI" and version == "2.0":  # HTTP/2 with prior knowledge: frames follow, no requests
            self._reject(f"HTTP/2 connection preface followed by {len(rest)} bytes of frames; this listener speaks "
                         "HTTP/1.1", body_size=0)
            return
        # Requests behind it in the packet: framing is lost, they are read leniently; none behind a
        # request with a Transfer-Encoding (what follows is its body, however framed).
        extra, framed = [], None if in_body else _skip_body(head, rest)
        while framed is not None and len(extra) < EXTRA_REQUESTS:
            rest = framed.lstrip(b"\r\n")
            if not rest:
                break
            end = HEAD_END.search(rest)
            head, complete, rest = (rest[:end.start()], True, rest[end.end():]) if end else (rest, False, b"")
            extra.append((head[:self.max_head], complete))
            framed = _skip_body(head, rest)
        last = max((i for i, (_, complete) in enumerate(extra) if complete), default=-1)
        self._reject(reason, body_size=self.body_size if in_body else 0, close=last < 0)
        for i, (head, complete) in enumerate(extra):
            self.head = head
            self._reject(f"behind a malformed request in the same packet ({reason})" if complete else
                         "incomplete request behind a malformed one in the same packet", None if complete else 0,
                         close=i == last)

    def _reject(self, reason: str, status: int | None = None, body_size: int = 0, close: bool = True) -> None:
        """A request llhttp refused, or one cut off (head too large, too slow, the client gone, the
        server stopping): logged and answered from the bytes kept, then the connection is closed
        (`close` False: another answer follows). Status 0: logged, nothing sent."""
        self.closing = True
        head, self.head, self.in_body = bytes(self.head), b"", False
        try:
            method, target, version, headers = parse_head(head)
            status_, response_headers, body = self.app.answer_rejected(
                peer=self.peer, server=self.server, method=method, target=target, http_version=version,
                headers=self.tls + headers if self.tls else headers, reason=reason, status=status, body_size=body_size,
                scheme=self.scheme, proxied=self.proxied)
        except Exception:
            log.exception("could not answer a rejected request")
            status_, response_headers, body, method = 400, b"content-length: 0\r\n", b"", ""
        if status == 0:
            self._flush()
            return
        slot = _Slot()
        slot.data = serialize(status_, response_headers, body, method == "HEAD", close)
        slot.close = close
        self.queue.append(slot)
        if close:
            self._flush()

    def shutdown(self) -> None:
        """Stop: an idle connection closes now; a busy one after its queued answers; one in the middle
        of a request (head or body) gets the notice for what arrived, logged, and is closed."""
        if self.queue:
            self.closing = True
        elif self.head or self.in_body:
            self._reject("server stopping: the request was not complete", body_size=self.body_size if self.in_body else 0)
        else:
            self.closing = True
            self.transport.close()
