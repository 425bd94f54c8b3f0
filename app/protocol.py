"""uvicorn's httptools protocol, plus one thing: a request its parser rejects (bytes that are not
HTTP, raw non-ASCII in the request line, broken header syntax) still leaves a hit in the log
before uvicorn answers 400. uvicorn would otherwise drop it without the app ever seeing it."""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("seized.protocol")


def recording_protocol(app):
    """A protocol class for uvicorn's `http=` setting that reports rejected requests to `app`."""

    class RecordingHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            try:
                try:
                    method = self.parser.get_method().decode("latin-1")
                except Exception:  # the parser failed before it knew the method
                    method = ""
                app.record_rejected(peer=self.client, server=self.server, url=getattr(self, "url", b""),
                                    headers=getattr(self, "headers", []), method=method, reason=f"rejected by HTTP parser: {msg}")
            except Exception:
                log.exception("could not record a rejected request")
            super().send_400_response(msg)

    return RecordingHttpToolsProtocol
