"""Bearer-token authentication, roles, and slowing down whoever keeps failing."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict, deque

from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ..tokens import Principal, verify_token
from .deps import StoreDep


class Problem(BaseModel):
    detail: str | list


def problem(description: str) -> dict:
    """An error response in the OpenAPI document: `{"detail": ...}` as FastAPI sends it."""
    return {"model": Problem, "description": description}


# FastAPI reads a JSON body before it checks the token, so a body that is not JSON gets 400 first.
BAD_BODY = problem("the body is not valid JSON")
UNAVAILABLE = "the database is unavailable (with Retry-After)"
ERRORS = {
    401: problem("missing, invalid, expired or revoked token"),
    403: problem("the token's role may not use this endpoint"),
    429: problem("too many failed authentications from this address (with Retry-After)"),
    503: problem(UNAVAILABLE),
}


class FailureLimiter:
    """After `limit` failed authentications from one address within `window` seconds, that
    address gets 429 until the window has passed. Checks still running count against the limit
    too, so a burst of concurrent wrong tokens cannot all be checked before the first failure is
    counted. During a lockout, a token that authenticated within the window is still let through
    (investigators behind the same NAT as an attacker keep working); any other gets 429 unchecked.
    Failures are counted for the metrics."""

    REMEMBERED = 4096  # tokens that authenticated lately (their SHA-256), for lockouts

    def __init__(self, limit: int = 10, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque] = defaultdict(deque)
        self._checking: dict[str, int] = defaultdict(int)
        self._good: dict[str, float] = {}  # SHA-256 of a token -> when it last authenticated
        self.failed = 0
        self.throttled = 0

    def _recent(self, address: str) -> deque:
        failures = self._failures[address]
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def admit(self, address: str, token: str) -> int | None:
        """Before a token is checked: None to go on (then `done`), or the seconds to wait (429)."""
        failures = self._recent(address)
        if len(failures) + self._checking[address] >= self.limit and not self._known_good(token):
            if not self._checking[address]:
                del self._checking[address]
            self.throttled += 1
            oldest = failures[0] if failures else time.monotonic()
            return max(1, int(oldest + self.window - time.monotonic()) + 1)
        self._checking[address] += 1
        return None

    def done(self, address: str, token: str, ok: bool | None) -> None:
        """After the check: `ok` True (authenticated), False (a failure) or None (no answer)."""
        self._checking[address] -= 1
        if not self._checking[address]:
            del self._checking[address]
        if ok is None:
            return
        if ok:
            if len(self._good) >= self.REMEMBERED:
                self._good.clear()
            self._good[_sha256(token)] = time.monotonic()
        else:
            self.failed += 1
            self._failures[address].append(time.monotonic())

    def _known_good(self, token: str) -> bool:
        seen = self._good.get(_sha256(token)) if token else None
        return seen is not None and time.monotonic() - seen < self.window


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# Reads `Authorization: Bearer …` and declares the scheme in the OpenAPI document, so that /docs
# has an Authorize button and generated clients know to send the token. A missing or other header
# is no error here (None): the check below answers it, counted as a failure.
BEARER = HTTPBearer(auto_error=False, scheme_name="token", description="a token from `seized tokens create` (`sz_…`)")


async def authenticate(request: Request, store, token: str) -> Principal | None:
    """A presented token's principal, or None: checked through the failure limiter (429 while the
    address is locked out). The API's bearer tokens and the dashboard's sign-in both come here."""
    limiter: FailureLimiter = request.app.state.limiter
    address = request.client.host if request.client else "unknown"
    retry = limiter.admit(address, token)
    if retry is not None:
        raise HTTPException(429, "too many failed authentications; retry later", headers={"Retry-After": str(retry)})
    outcome = None  # a store that cannot answer (503) is no failed authentication
    try:
        principal = await verify_token(store, token) if token else None
        outcome = principal is not None
    finally:
        limiter.done(address, token, outcome)
    return principal


def require(*roles: str):
    """A dependency: the caller's token must be valid and carry one of `roles`."""

    async def check(request: Request, store: StoreDep,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> Principal:
        principal = await authenticate(request, store, credentials.credentials if credentials else "")
        if principal is None:
            raise HTTPException(401, "missing, invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = principal
        if principal.role not in roles:
            raise HTTPException(403, f"this endpoint needs the {' or '.join(roles)} role; the token has {principal.role}")
        return principal

    return check
