"""`seized subjects`: a seized panel's subscriber records, to match hits against."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import ConfigOption, DbOption, cli_settings, with_store

subjects_app = typer.Typer(help="Subscriber records of a seized panel, to match hits against.", no_args_is_help=True)


@subjects_app.command("import")
def subjects_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with an 'account' column.")],
    case: Annotated[str, typer.Option("--case", help="Case reference the records belong to.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """Load a seized panel's subscriber records; the other columns are kept as attributes. Idempotent."""
    from ..subjects import parse_subjects_csv

    try:
        records = parse_subjects_csv(file.read_text("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as error:
        raise typer.BadParameter(str(error)) from error
    added, changed = with_store(cli_settings(config, db=db).db, lambda store: store.import_subjects(case, records))
    typer.echo(f"{len(records)} records for case {case}: {added} added, {changed} changed, {len(records) - added - changed} unchanged")


@subjects_app.command("list")
def subjects_list(case: Annotated[Optional[str], typer.Option("--case")] = None, config: ConfigOption = None, db: DbOption = None):
    """Imported records with their hit counts."""
    for row in with_store(cli_settings(config, db=db).db, lambda store: store.subjects(case)):
        typer.echo(f"{row['case_ref']}  {row['account']:24} {row['hits']:>6} hits  {row['attributes']}")
