"""The lenient reader: a request llhttp rejects (a method it does not know, raw non-ASCII in the
request line, a NUL in a header, bytes that are not HTTP) would otherwise never be logged. The
listener (listener.py) reads it from the bytes it kept, logs it, and answers: with the notice when
it still reads as HTTP, else with 400."""

from __future__ import annotations

import re

TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a method of any length (the head limit bounds it)
SEPARATOR = re.compile(rb"[ \t]+")  # spaces or tabs between the request line's words
VERSION = re.compile(rb"HTTP/[^ \t]*", re.IGNORECASE)  # http/1.1 too


def parse_head(head: bytes) -> tuple[str, bytes, str, list[tuple[bytes, bytes]]]:
    """Best effort on bytes the real parser refused: (method, target, version, headers)."""
    head = head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    request_line, *header_lines = re.split(rb"\r?\n", head)
    words = SEPARATOR.split(request_line.strip(b" \t"))
    method, target, version = "", b"", ""
    if len(words) >= 3 and TOKEN.fullmatch(words[0]) and VERSION.fullmatch(words[-1]):
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
