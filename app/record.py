"""A Hit becomes a stored row: bytes decoded, secrets redacted, headers as JSON. Runs in the
writer's worker thread, never on the event loop."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone

from .capture import Hit
from .redact import redact_form, redact_header

COLUMNS = (
    "uid", "received_at", "node", "host", "domain", "scheme", "method", "path", "query",
    "http_version", "client_ip", "client_port", "peer_ip", "peer_port", "server_port",
    "headers", "user_agent", "body_size", "body_sha256", "status", "duration_ms", "error",
)


def text_of(raw: bytes) -> str:
    """Bytes as sent, as text: UTF-8 where valid, `\\xNN` for any other byte and for NUL,
    so every byte is accounted for and the text is storable everywhere."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def iso_utc(ns: int) -> str:
    """Nanoseconds since the epoch -> '2026-11-23T06:00:25.123456Z' (sorts as text)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1000:06d}Z"


def to_row(hit: Hit) -> dict:
    headers = []
    for raw_name, raw_value in hit.headers:
        name = text_of(raw_name)
        headers.append([name, redact_header(name, text_of(raw_value))])
    user_agent = next((value for name, value in headers if name == "user-agent"), None)
    body_sha256 = hit.body_sha256
    if hit.form_body is not None:
        # The hash of a form that holds a password would let anyone test guesses against it.
        body_sha256 = hashlib.sha256(redact_form(text_of(hit.form_body)).encode("utf-8")).hexdigest()
    return {
        "uid": uuid.uuid4().hex,
        "received_at": iso_utc(hit.received_at_ns),
        "node": hit.node,
        "host": text_of(hit.host),
        "domain": hit.domain,
        "scheme": hit.scheme,
        "method": hit.method,
        "path": text_of(hit.raw_path),
        "query": redact_form(text_of(hit.query)),
        "http_version": hit.http_version,
        "client_ip": hit.client_ip,
        "client_port": hit.client_port,
        "peer_ip": hit.peer_ip,
        "peer_port": hit.peer_port,
        "server_port": hit.server_port,
        "headers": json.dumps(headers, ensure_ascii=False, separators=(",", ":")),
        "user_agent": user_agent,
        "body_size": hit.body_size,
        "body_sha256": body_sha256,
        "status": hit.status,
        "duration_ms": round(hit.duration_ms, 3),
        "error": hit.error,
    }


def to_rows(hits: list[Hit]) -> list[dict]:
    return [to_row(hit) for hit in hits]
