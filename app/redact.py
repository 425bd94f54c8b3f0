"""Secrets are replaced before anything is stored: password-like query, form and cookie values,
the password segment of a stream path, URL userinfo passwords and the secret part of
`Authorization`. Decisions are made on the percent-decoded text (however often encoded, any key
case); what is kept is kept byte for byte."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote, unquote_plus

from .clients import param_key, redact_path

REDACTED = "[REDACTED]"
PASSWORD_KEYS = frozenset({"password", "pass", "pwd", "passwd"})
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
URL_HEADERS = frozenset({"referer", "origin"})


def _decoded_key(key: str, decode=unquote_plus) -> str:
    """A key as compared: percent-decoded until nothing changes (`pass%2577ord` too), then as
    classify() compares (stripped, lower case), a PHP array suffix (`password[]`) dropped."""
    for _ in range(4):
        decoded = decode(key)
        if decoded == key:
            break
        key = decoded
    key = param_key(key)
    return key.partition("[")[0].strip() if "[" in key else key


def is_password_key(key: str, decode=unquote_plus) -> bool:
    return _decoded_key(key, decode) in PASSWORD_KEYS


def _redact_pairs(text: str, separator: str, decode) -> str:
    """Every `key=value` part of `text` whose key is a password's gets its value redacted."""
    if "=" not in text:
        return text
    parts = text.split(separator)
    changed = False
    for i, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if sep and value and is_password_key(key, decode):
            parts[i] = f"{key}={REDACTED}"
            changed = True
    return separator.join(parts) if changed else text


def redact_form(encoded: str) -> str:
    """`a=1&password=x` -> `a=1&password=[REDACTED]` (query strings and urlencoded bodies): every
    password-like key, repeated or not, in any case or percent-encoding."""
    return _redact_pairs(encoded, "&", unquote_plus)


def redact_cookie(value: str) -> str:
    """`mac=...; password=x` -> `mac=...; password=[REDACTED]`: the same keys as a query's."""
    return _redact_pairs(value, ";", unquote)


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
    """A URL in a header (Referer, Origin), absolute or a partial reference (`/live/U/P/1.ts`,
    `//host/...`): userinfo password, the password segment of a stream path, and password-like
    query values."""
    base, hash_sep, fragment = url.partition("#")
    base, query_sep, query = base.partition("?")
    scheme, sep, rest = base.partition("://")
    if not sep and base.startswith("//"):
        scheme, sep, rest = "", "//", base[2:]
    if sep:
        # the authority ends at the first /, ? or # (RFC 3986): an @ further on is no userinfo
        authority, slash, tail = rest.partition("/")
        userinfo, at, hostport = authority.rpartition("@")
        if at and ":" in userinfo:
            authority = f"{userinfo.partition(':')[0]}:{REDACTED}@{hostport}"
        path = redact_path("/" + tail, REDACTED)[1:] if slash else ""
        base = f"{scheme}{sep}{authority}{slash}{path}"
    elif base.startswith("/"):
        base = redact_path(base, REDACTED)
    if query_sep:
        query = redact_form(query)
    return f"{base}{query_sep}{query}{hash_sep}{fragment}"


def redact_header(name: str, value: str) -> str:
    if name in AUTH_HEADERS:
        return redact_authorization(value)
    if name in URL_HEADERS:
        return redact_url(value)
    if name == "cookie":
        return redact_cookie(value)
    return value
