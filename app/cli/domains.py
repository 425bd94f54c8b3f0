"""`seized domains`: the seized-domain list, stored in the database."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ..config import canonical_domain, normalise_domain
from .common import ConfigOption, DbOption, cli_settings, with_store

domains_app = typer.Typer(help="Manage the seized-domain list (stored in the database).", no_args_is_help=True)


@domains_app.command("list")
def domains_list(config: ConfigOption = None, db: DbOption = None):
    """List the seized domains."""
    rows = with_store(cli_settings(config, db=db).db, lambda store: store.list_domains())
    for row in rows:
        settings = {k: row[k] for k in ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by") if row[k] not in (None, "")}
        state = "" if row["active"] else " (inactive)"
        typer.echo(f"{row['name']}{state}  {json.dumps(settings, ensure_ascii=False)}")


@domains_app.command("add")
def domains_add(
    name: str,
    config: ConfigOption = None,
    db: DbOption = None,
    agency: Optional[str] = None,
    case_ref: Optional[str] = None,
    legal_basis: Optional[str] = None,
    language: Optional[str] = None,
    status: Annotated[Optional[int], typer.Option(min=200, max=599)] = None,
    blocked_by: Optional[str] = None,
    notes: str = "",
):
    """Add a seized domain (or replace its settings). A running server picks it up within seconds."""
    try:
        name = normalise_domain(name)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    fields = dict(agency=agency, case_ref=case_ref, legal_basis=legal_basis, language=language, status=status,
                  blocked_by=blocked_by, notes=notes)
    with_store(cli_settings(config, db=db).db, lambda store: store.add_domain(name, replace=True, **fields))
    typer.echo(f"added {name}")


@domains_app.command("remove")
def domains_remove(name: str, config: ConfigOption = None, db: DbOption = None):
    """Remove a seized domain. Its hits stay in the log."""
    name = canonical_domain(name)
    if not with_store(cli_settings(config, db=db).db, lambda store: store.remove_domain(name)):
        typer.echo(f"no such domain: {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")
