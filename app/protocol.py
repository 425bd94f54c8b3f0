"""uvicorn's httptools protocol, plus one thing: a request its strict parser rejects (a method it
does not know, raw non-ASCII in the request line, a NUL in a header, bytes that are not HTTP)
would never reach the app and never be logged. Here it is read leniently from the bytes kept,
logged, and answered by the app: with the notice when it still reads as HTTP, else with 400."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("seized.protocol")
HEAD_CAP = 64 * 1024  # bytes of a rejected request kept for its record
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")


def parse_head(head: bytes) -> tuple[str, bytes, str, list[tuple[bytes, bytes]]]:
    """Best effort on bytes the real parser refused: (method, target, version, headers)."""
    head = head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    request_line, *header_lines = re.split(rb"\r?\n", head)
    words = request_line.split(b" ")
    method, target, version = "", b"", ""
    if len(words) >= 3 and TOKEN.fullmatch(words[0]) and words[-1].startswith(b"HTTP/"):
        method = words[0].decode("ascii")
        target = b" ".join(words[1:-1])
        version = words[-1][5:].decode("ascii", "replace")
    elif TOKEN.fullmatch(words[0]):
        method, target = words[0].decode("ascii"), b" ".join(words[1:])
    else:  # not HTTP at all (TLS to a plain port, noise): keep the bytes as the target
        target = request_line[:2048]
        return "", target, "", []
    headers = []
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return method, target, version, headers


def recording_protocol(app):
    """A protocol class for uvicorn's `http=` setting that reports rejected requests to `app`."""

    class RecordingHttpToolsProtocol(HttpToolsProtocol):
        _head = b""

        def data_received(self, data: bytes) -> None:
            if len(self._head) < HEAD_CAP:
                self._head = (self._head + data)[:HEAD_CAP]
            super().data_received(data)

        def on_message_complete(self) -> None:
            self._head = b""
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            try:
                method, target, version, headers = parse_head(self._head)
                status, response_headers, body = app.answer_rejected(
                    peer=self.client, server=self.server, method=method, target=target, http_version=version,
                    headers=headers, reason=f"strict HTTP parser: {msg}")
            except Exception:
                log.exception("could not answer a rejected request")
                super().send_400_response(msg)
                return
            head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode("ascii")]
            head += [name + b": " + value + b"\r\n" for name, value in
                     [*self.server_state.default_headers, *response_headers, (b"connection", b"close")]]
            self.transport.write(b"".join(head) + b"\r\n" + (b"" if method == "HEAD" else body))
            self.transport.close()

    return RecordingHttpToolsProtocol
