"""`seized db`: schema migrations, and moving a deployment to another store."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ..store import open_store
from .common import ConfigOption, DbOption, cli_settings, with_store

db_app = typer.Typer(help="The database: schema migrations, moving a deployment to another store.", no_args_is_help=True)


@db_app.command("migrate")
def db_migrate(config: ConfigOption = None, db: DbOption = None):
    """Bring the database's schema up to this version of seized (serve does it too, at start)."""
    settings = cli_settings(config, db=db)
    version = with_store(settings.db, lambda store: store.schema_version())
    typer.echo(f"{settings.db.split('@')[-1]}: schema version {version}")


@db_app.command("copy")
def db_copy(
    source: Annotated[str, typer.Option("--from", help="The database to copy, e.g. sqlite:///data/seized.db.")],
    target: Annotated[str, typer.Option("--to", help="An empty database, e.g. postgresql://seized@db/seized.")],
):
    """Copy a deployment to another store (e.g. SQLite to PostgreSQL): hits with their chains,
    checkpoints, purges, audit, domains, tokens, subjects. Stop the nodes writing to --from first;
    run `seized verify --db <--to>` afterwards."""
    from ..dbcopy import copy_store

    async def run():
        old = await open_store(source)
        try:
            new = await open_store(target)
            try:
                return await copy_store(old, new, typer.echo)
            finally:
                await new.close()
        finally:
            await old.close()
    try:
        copied = asyncio.run(run())
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"copied {copied['hits']} hits; check them with: seized verify --db {target}")
