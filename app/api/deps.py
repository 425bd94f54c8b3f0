"""What the handlers are handed rather than fetch for themselves: the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..store.contract import Store


async def get_store(request: Request) -> Store:
    """The application's store (async: a plain function would be run in a thread for nothing)."""
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]
