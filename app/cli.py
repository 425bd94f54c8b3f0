"""The `seized` command. Thin: every command calls the same store and server code the service uses."""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .config import load_settings, normalise_domain
from .store import open_store

app = typer.Typer(help="seized: the notice service for seized domains, and its evidential hit log.",
                  no_args_is_help=True, add_completion=False)
hits_app = typer.Typer(help="Read the hit log.", no_args_is_help=True)
domains_app = typer.Typer(help="Manage the seized-domain list (stored in the database).", no_args_is_help=True)
app.add_typer(hits_app, name="hits")
app.add_typer(domains_app, name="domains")

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file.")]
DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. sqlite:///data/seized.db.")]


class Format(str, Enum):
    table = "table"
    ndjson = "ndjson"


def _settings(config: Path | None, **overrides):
    try:
        return load_settings(config, **overrides)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error


def _with_store(db_url: str, work):
    """Run `work(store)` against the database and close it."""
    async def run():
        store = await open_store(db_url)
        try:
            return await work(store)
        finally:
            await store.close()
    return asyncio.run(run())


@app.command()
def serve(
    config: ConfigOption = None,
    public: Annotated[Optional[str], typer.Option(help="Public listener HOST:PORT [0.0.0.0:8080].")] = None,
    admin: Annotated[Optional[str], typer.Option(help="Management listener HOST:PORT [127.0.0.1:8081].")] = None,
    db: DbOption = None,
    node: Annotated[Optional[str], typer.Option(help="This node's id, stored with every hit.")] = None,
):
    """Start the public notice listener and the management listener."""
    from .server import run

    run(_settings(config, public=public, admin=admin, db=db, node=node))


def row_for_output(row: dict) -> dict:
    return {**row, "headers": json.loads(row["headers"])}


@hits_app.command("list")
def hits_list(
    config: ConfigOption = None,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many hits, newest first.")] = 20,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
):
    """Print the latest hits, newest first."""
    rows = _with_store(_settings(config, db=db).db, lambda store: store.latest_hits(limit))
    if format is Format.ndjson:
        for row in rows:
            typer.echo(json.dumps(row_for_output(row), ensure_ascii=False))
        return
    columns = ("id", "received_at", "client_ip", "client_port", "method", "host", "path", "status")
    table = [columns] + [tuple("" if row[c] is None else str(row[c]) for c in columns) for row in rows]
    widths = [min(max(len(line[i]) for line in table), 40) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(cell[:40].ljust(width) for cell, width in zip(line, widths)).rstrip())


@domains_app.command("list")
def domains_list(config: ConfigOption = None, db: DbOption = None):
    """List the seized domains."""
    rows = _with_store(_settings(config, db=db).db, lambda store: store.list_domains())
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
    _with_store(_settings(config, db=db).db, lambda store: store.add_domain(name, replace=True, **fields))
    typer.echo(f"added {name}")


@domains_app.command("remove")
def domains_remove(name: str, config: ConfigOption = None, db: DbOption = None):
    """Remove a seized domain. Its hits stay in the log."""
    name = name.strip().lower().rstrip(".")
    if not _with_store(_settings(config, db=db).db, lambda store: store.remove_domain(name)):
        typer.echo(f"no such domain: {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")


def main() -> None:
    app()
