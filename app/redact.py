"""Secrets are replaced before anything is stored: password-like query and form values and the
secret part of `Authorization`. Everything else is kept byte for byte."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from .clients import redact_path

REDACTED = "[REDACTED]"
PASSWORD_KEYS = frozenset({"password", "pass", "pwd", "passwd"})
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})


def redact_form(encoded: str) -> str:
    """`a=1&password=x` -> `a=1&password=[REDACTED]` (query strings and urlencoded bodies)."""
    if "=" not in encoded:
        return encoded
    pairs = encoded.split("&")
    changed = False
    for i, pair in enumerate(pairs):
        key, sep, value = pair.partition("=")
        if sep and value and unquote_plus(key).strip().lower() in PASSWORD_KEYS:
            pairs[i] = f"{key}={REDACTED}"
            changed = True
    return "&".join(pairs) if changed else encoded


def redact_authorization(value: str) -> str:
    """Basic keeps its username (`Basic alice:[REDACTED]`); any other scheme keeps only its name."""
    scheme, _, credentials = value.strip().partition(" ")
    if not credentials:
        return REDACTED if scheme else value
    if scheme.lower() == "basic":
        try:
            username = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return f"{scheme} {REDACTED}"
        return f"{scheme} {username}:{REDACTED}"
    return f"{scheme} {REDACTED}"


def redact_url(url: str) -> str:
    """A URL in a header (Referer, Origin): userinfo password, the password segment of a stream
    path, and password-like query values."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        userinfo, at, hostport = authority.rpartition("@")
        if at and ":" in userinfo:
            authority = f"{userinfo.partition(':')[0]}:{REDACTED}@{hostport}"
        path, query_sep, query = tail.partition("?")
        if slash:
            path = redact_path("/" + path, REDACTED)[1:]
        url = f"{scheme}://{authority}{slash}{path}{query_sep}{query}"
    base, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = query.partition("#")
    return f"{base}?{redact_form(query)}{hash_sep}{fragment}"


def redact_header(name: str, value: str) -> str:
    if name in AUTH_HEADERS:
        return redact_authorization(value)
    if name == "referer":
        return redact_url(value)
    return value
