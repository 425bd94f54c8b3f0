"""Dashboard sessions: signed in by posting an API token, held in the management process's memory.

Why in memory: there is one management process, and a session is only a handle on a token that is
checked again on every page (verify_token, as the API checks a bearer token), so a revoked or
expired token ends its sessions at once. A restart of the management process signs everyone out;
nothing about a session is ever written to disk or the database.

The cookie carries only a random session id (256 bits): HttpOnly, SameSite=Strict, Path=/dashboard,
Secure when the page came over https. Every POST form carries the session's CSRF token, compared
in constant time; the sign-in form, before there is a session, uses a double-submit cookie."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "seized_session"
LOGIN_COOKIE = "seized_signin"  # the sign-in form's CSRF value (double submit)
PATH = "/dashboard"
IDLE_S = 60 * 60  # a session unused this long is over
LIFETIME_S = 12 * 60 * 60  # and every session is over this long after sign-in
MAX_SESSIONS = 10_000  # memory bound: the oldest are dropped past it


@dataclass
class Session:
    id: str
    token: str  # the API token signed in with; checked again on every request
    csrf: str
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_S or now - self.created > LIFETIME_S


class Sessions:
    def __init__(self):
        self._sessions: dict[str, Session] = {}

    def open(self, token: str) -> Session:
        now = time.monotonic()
        self._sessions = {sid: s for sid, s in self._sessions.items() if not s.expired(now)}
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))  # dicts keep insertion order: the oldest
        session = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        now = time.monotonic()
        if session.expired(now):
            self.close(session.id)
            return None
        session.seen = now
        return session

    def close(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)


def same_secret(given: str | None, expected: str | None) -> bool:
    """A CSRF value as sent against the one we hold, in constant time; missing is never equal."""
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


def cookie_options(secure: bool, max_age: int | None = None) -> dict:
    """Starlette's set_cookie arguments for our cookies."""
    return {"httponly": True, "samesite": "strict", "path": PATH, "secure": secure, "max_age": max_age}
