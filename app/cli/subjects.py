"""`seized subjects`: a seized panel's subscriber records, to match hits against."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import ConfigOption, DbOption, cli_settings, with_store

subjects_app = typer.Typer(help="Subscriber records of a seized panel, to match hits against.", no_args_is_help=True)


@subjects_app.command("import")
def subjects_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="CSV with an 'account' column, or a JSON array of objects with an 'account' (.json).")],
    case: Annotated[str, typer.Option("--case", help="Case reference the records belong to.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """Load a seized panel's subscriber records; the other columns are kept as attributes. Idempotent.
    A file that cannot be read as it is (short or long rows, an account twice with other values, not
    UTF-8, binary...) is refused whole: exit 2, one line saying what and where."""
    from ..subjects import SubjectsFileError, listing, parse_subjects

    try:
        parsed = parse_subjects(file.read_bytes(), file.name)
    except (SubjectsFileError, OSError) as error:
        typer.echo(f"error: {file}: {error}", err=True)
        raise typer.Exit(2) from None
    records = parsed.records
    added, changed = with_store(cli_settings(config, db=db).db, lambda store: store.import_subjects(case, records))
    typer.echo(f"{len(records)} records for case {case}: {added} added, {changed} changed, {len(records) - added - changed} unchanged")
    if parsed.identical_duplicates:
        lines = parsed.identical_duplicates
        typer.echo(f"{len(lines)} rows repeat an earlier row exactly, imported once: line "
                   + listing(lines, lambda d: f"{d[0]} (= line {d[1]})"))


@subjects_app.command("list")
def subjects_list(case: Annotated[Optional[str], typer.Option("--case")] = None, config: ConfigOption = None, db: DbOption = None):
    """Imported records with their hit counts: only the hits of each record's own case's domains,
    MAC addresses in any notation (as `seized evidence subjects-report` matches them)."""
    from ..subjects import subjects_list

    for row in with_store(cli_settings(config, db=db).db, lambda store: subjects_list(store, case)):
        typer.echo(f"{row['case_ref']}  {row['account']:24} {row['hits']:>6} hits  {row['attributes']}")
