"""The public TLS listener's connections. Every TLS connection is a hit, even one whose handshake
fails (a client that rejects our certificate): its ClientHello is read and kept before the
handshake, which is then done over memory BIOs with the certificate for its SNI (tls.py's
CertificateStore). A completed handshake hands the plaintext to an HttpConnection, which answers
as on plain HTTP with scheme https and the ClientHello among the hit's headers (listener.py).

What a hit's headers say of TLS (pseudo-headers, before the request's own; `:` cannot start an
HTTP/1.1 field name, so none can be forged by a client):

    :tls-sni, :tls-alpn (offered, comma-separated), :tls-versions (offered), :tls-ciphers (offered,
    hex), :tls-ja4, :tls-outcome ("ok", or why the handshake failed), :tls-version and
    :tls-cipher (negotiated, when it completed)

A client that sends plain HTTP to the TLS port is answered as plain HTTP (scheme http)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from . import metrics
from .tls import NEED_MORE, CertificateStore, ClientHello, MalformedClientHello, parse_client_hello

log = logging.getLogger("seized.tls")
HANDSHAKE_TIMEOUT_S = 10.0


def tls_headers(hello: ClientHello | None, outcome: str, ssl_object: ssl.SSLObject | None = None) -> list[tuple[bytes, bytes]]:
    """The pseudo-headers a TLS hit carries (module docstring)."""
    if hello is None:
        return [(b":tls-outcome", outcome.encode())]
    seen = hello.as_dict()
    pairs = [(":tls-sni", seen["sni"] or ""), (":tls-alpn", ",".join(seen["alpn"])),
             (":tls-versions", ",".join(seen["supported_versions"]) or seen["legacy_version"]),
             (":tls-ciphers", ",".join(seen["cipher_suites"])), (":tls-ja4", seen["ja4"]), (":tls-outcome", outcome)]
    if ssl_object is not None:
        pairs += [(":tls-version", ssl_object.version() or ""), (":tls-cipher", (ssl_object.cipher() or ("",))[0])]
    return [(name.encode(), value.encode("utf-8", "backslashreplace")) for name, value in pairs]


class TlsConnection(asyncio.Protocol):
    """One connection to the TLS listener. `inner` makes the HttpConnection that serves the
    plaintext; `failed(peer, server, sni, headers, reason)` logs a connection that never got that far."""

    def __init__(self, store: CertificateStore, inner: Callable[[], asyncio.Protocol],
                 failed: Callable[..., None], handshake_timeout: float = HANDSHAKE_TIMEOUT_S):
        self.store, self.make_inner, self.failed = store, inner, failed
        self.handshake_timeout = handshake_timeout
        self.transport = None
        self.buffer = b""
        self.hello: ClientHello | None = None
        self.ssl: ssl.SSLObject | None = None
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.inner: asyncio.Protocol | None = None
        self.ended = False  # logged as failed, or handed over
        self.timer: asyncio.TimerHandle | None = None

    # -- before the handshake --------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(self.handshake_timeout, self._timed_out)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None and self.ssl is None:  # plain HTTP on the TLS port
            self.inner.data_received(data)
        elif self.ssl is None:
            self._hello(data)
        elif self.inner is None:
            self.incoming.write(data)
            self._handshake()
        else:
            self.incoming.write(data)
            self._plaintext()

    def _hello(self, data: bytes) -> None:
        self.buffer += data
        try:
            hello = parse_client_hello(self.buffer)
        except MalformedClientHello as error:
            return self._fail(None, f"not a readable ClientHello: {error}", "malformed_hello")
        if hello == NEED_MORE:
            return None
        if hello is None:  # no TLS at all: most likely plain HTTP sent to the TLS port
            return self._hand_over(None)
        self.hello = hello
        try:
            context = self.store.context_for(hello.server_name)
        except Exception as error:  # noqa: BLE001 - a certificate that cannot be made is a failed handshake, logged
            return self._fail(hello, f"no certificate for {hello.server_name!r}: {error}", "no_certificate")
        self.ssl = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.incoming.write(self.buffer)
        self.buffer = b""
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ValueError) as error:
            self._flush()  # the alert that says why
            return self._fail(self.hello, f"TLS handshake failed: {getattr(error, 'reason', None) or error}",
                              "handshake_failed")
        self._flush()
        self._hand_over(self.ssl)
        self._plaintext()

    def _hand_over(self, ssl_object: ssl.SSLObject | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.ended = True
        metrics.worker.tls("ok" if ssl_object is not None else "plain_http")
        self.inner = self.make_inner()
        headers = tls_headers(self.hello, "ok", ssl_object) if ssl_object is not None else None
        self.inner.connection_made(_Plaintext(self, headers))
        if ssl_object is None and self.buffer:
            buffered, self.buffer = self.buffer, b""
            self.inner.data_received(buffered)

    def _fail(self, hello: ClientHello | None, reason: str, outcome: str) -> None:
        """`outcome`: the reason's kind, for the metrics (status.TLS_OUTCOMES)."""
        if self.ended:
            return
        self.ended = True
        metrics.worker.tls(outcome)
        if self.timer is not None:
            self.timer.cancel()
        peer, server = self.transport.get_extra_info("peername"), self.transport.get_extra_info("sockname")
        sni = hello.server_name if hello is not None else None
        try:
            self.failed(peer, server, sni, tls_headers(hello, reason), reason)
        finally:
            self.transport.close()

    def _timed_out(self) -> None:
        if not self.ended:
            self._fail(self.hello, f"no TLS handshake within {self.handshake_timeout:g} s", "timeout")

    # -- after it ----------------------------------------------------------------------------

    def _plaintext(self) -> None:
        chunks, closed = [], False
        while True:
            try:
                data = self.ssl.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's close_notify
                closed = True
                break
            except ssl.SSLError as error:
                log.debug("TLS read failed: %s", error)
                self.transport.close()
                break
            if not data:
                closed = True
                break
            chunks.append(data)
        self._flush()  # TLS 1.3 session tickets, and anything else the record layer owes
        for chunk in chunks:
            self.inner.data_received(chunk)
        if closed and self.inner.eof_received() is not True:
            self.transport.close()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def eof_received(self):
        if self.inner is not None:
            return self.inner.eof_received()
        self._fail(self.hello, "the client closed the connection during the TLS handshake", "client_closed")
        return None

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.inner is not None:
            self.inner.connection_lost(exc)
        else:
            self._fail(self.hello, "the connection ended during the TLS handshake", "client_closed")

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class _Plaintext(asyncio.Transport):
    """The HttpConnection's transport on a TLS connection: writes are encrypted onto the TCP one."""

    def __init__(self, outer: TlsConnection, tls: list[tuple[bytes, bytes]] | None):
        super().__init__()
        self.outer, self.tls = outer, tls

    def write(self, data) -> None:
        if self.outer.ssl is None:
            self.outer.transport.write(data)
            return
        if self.outer.transport.is_closing():
            return
        self.outer.ssl.write(data)
        self.outer._flush()

    def writelines(self, chunks) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        if self.outer.ssl is not None and not self.outer.transport.is_closing():
            try:
                self.outer.ssl.unwrap()  # our close_notify
            except ssl.SSLError:
                pass
            self.outer._flush()
        self.outer.transport.close()

    def abort(self) -> None:
        self.outer.transport.abort()

    def is_closing(self) -> bool:
        return self.outer.transport.is_closing()

    def get_extra_info(self, name, default=None):
        if name == "seized_tls":
            return self.tls
        return self.outer.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.outer.transport.pause_reading()

    def resume_reading(self) -> None:
        self.outer.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.outer.transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self.outer.transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.outer.transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return False
