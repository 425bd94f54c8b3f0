"""API tokens: `sz_<id>_<secret>`. Only the SHA-256 of the whole token is stored (the token is 256
random bits, so a plain hash is enough); it is looked up by id and compared in constant time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .record import utc_text

if TYPE_CHECKING:
    from .store import Store

ROLES = ("admin", "investigator", "auditor")
PREFIX = "sz_"


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(store: Store, name: str, role: str, expires_days: float | None = None,
                       keep: Callable[[str], None] | None = None) -> str:
    """Store a new token and return its secret form: the only time it is ever shown. `keep`, if
    given, is handed the token before it is stored (a token it fails to keep is never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise ValueError("a token needs a name of 1 to 100 characters")
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    expires_at = None
    if expires_days is not None:
        expires_at = utc_text(datetime.now(timezone.utc) + timedelta(days=expires_days))
    if keep is not None:
        keep(token)
    await store.add_token(token_id, name, role, _digest(token), expires_at)
    return token


async def verify_token(store: Store, token: str) -> Principal | None:
    """The principal for a presented token, or None if unknown, wrong, expired or revoked."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    token_id = token[len(PREFIX):].partition("_")[0]
    row = await store.get_token(token_id)
    # Compared even when the id is unknown, so timing does not tell which ids exist.
    expected = row["secret_sha256"] if row else "0" * 64
    if not hmac.compare_digest(_digest(token), expected) or row is None:
        return None
    if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= utc_text()):
        return None
    await store.touch_token(token_id)
    return Principal(token_id, row["name"], row["role"])


async def ensure_admin_token(store: Store, keep: Callable[[str], None]) -> str | None:
    """First run: if no usable admin token exists, make one, hand it to `keep` (which puts it where
    the operator will read it) and return its name. Kept before it is stored: a token that could not
    be kept would lock everyone out of the management API."""
    if await store.has_active_token("admin"):
        return None
    existing = {row["name"] for row in await store.list_tokens()}
    name = next(n for n in ("initial-admin", *(f"initial-admin-{i}" for i in range(2, 10_000))) if n not in existing)
    await create_token(store, name, "admin", keep=keep)
    return name
