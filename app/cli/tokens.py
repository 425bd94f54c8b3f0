"""`seized tokens`: management-API tokens."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..tokens import ROLES, create_token
from .common import ConfigOption, DbOption, cli_settings, with_store

tokens_app = typer.Typer(help="Manage management-API tokens.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses it (unique).")],
    expires: Annotated[Optional[float], typer.Option(min=0.001, help="Days until it expires (default: never).")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
):
    """Create a token and print its secret: the only time it is shown (only a hash is stored)."""
    async def create(store):
        if any(row["name"] == name for row in await store.list_tokens()):
            raise typer.BadParameter(f"a token named {name!r} exists")
        return await create_token(store, name, role, expires)
    try:
        secret = with_store(cli_settings(config, db=db).db, create)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(config: ConfigOption = None, db: DbOption = None):
    """List tokens (never their secrets)."""
    for row in with_store(cli_settings(config, db=db).db, lambda store: store.list_tokens()):
        state = "revoked" if row["revoked_at"] else f"expires {row['expires_at']}" if row["expires_at"] else "active"
        typer.echo(f"{row['name']:24} {row['role']:13} {state:40} last used {row['last_used_at'] or 'never'}")


@tokens_app.command("revoke")
def tokens_revoke(name: str, config: ConfigOption = None, db: DbOption = None):
    """Revoke a token by name; it stops working at once."""
    if not with_store(cli_settings(config, db=db).db, lambda store: store.revoke_token(name)):
        typer.echo(f"no active token named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name}")
