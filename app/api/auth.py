"""Bearer-token authentication, roles, and slowing down whoever keeps failing."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from fastapi import HTTPException, Request
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
ERRORS = {
    401: problem("missing, invalid, expired or revoked token"),
    403: problem("the token's role may not use this endpoint"),
    429: problem("too many failed authentications from this address"),
}


class FailureLimiter:
    """After `limit` failed authentications from one address within `window` seconds, that
    address gets 429 until the window has passed. Failures are counted for the metrics."""

    def __init__(self, limit: int = 10, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque] = defaultdict(deque)
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

    def retry_after(self, address: str) -> int | None:
        failures = self._recent(address)
        if len(failures) < self.limit:
            return None
        self.throttled += 1
        return max(1, int(failures[0] + self.window - time.monotonic()) + 1)

    def fail(self, address: str) -> None:
        self.failed += 1
        self._failures[address].append(time.monotonic())


def require(*roles: str):
    """A dependency: the caller's token must be valid and carry one of `roles`."""

    async def check(request: Request, store: StoreDep) -> Principal:
        limiter: FailureLimiter = request.app.state.limiter
        address = request.client.host if request.client else "unknown"
        retry = limiter.retry_after(address)
        if retry is not None:
            raise HTTPException(429, "too many failed authentications; retry later", headers={"Retry-After": str(retry)})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        principal = None
        if scheme.lower() == "bearer" and token.strip():
            principal = await verify_token(store, token.strip())
        if principal is None:
            limiter.fail(address)
            raise HTTPException(401, "missing, invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = principal
        if principal.role not in roles:
            raise HTTPException(403, f"this endpoint needs the {' or '.join(roles)} role; the token has {principal.role}")
        return principal

    return check
