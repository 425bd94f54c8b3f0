"""`seized domains`: the seized-domain list, stored in the database."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import domain_import, resolver_lists
from ..config import canonical_domain, normalise_domain
from .common import ConfigOption, DbOption, cli_settings, with_store

domains_app = typer.Typer(help="Manage the seized-domain list (stored in the database).", no_args_is_help=True)


class ListFormat(str, Enum):
    table = "table"
    json = "json"


# The columns of `domains list`: every field a domain has.
LIST_COLUMNS = ("name", "active", "agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes",
                "created_at", "updated_at")


@domains_app.command("list")
def domains_list(
    config: ConfigOption = None,
    db: DbOption = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="table, or json (an array of objects).")] = ListFormat.table,
):
    """List the seized domains, every field (an empty notice field takes the [notice] default)."""
    rows = with_store(cli_settings(config, db=db).db, lambda store: store.list_domains())
    items = [{column: bool(row["active"]) if column == "active" else row[column] for column in LIST_COLUMNS} for row in rows]
    if format is ListFormat.json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    table = [LIST_COLUMNS] + [tuple(_cell(item[c]) for c in LIST_COLUMNS) for item in items]
    widths = [max(len(line[i]) for line in table) for i in range(len(LIST_COLUMNS))]
    for line in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _cell(value) -> str:
    """A value as one table cell: nothing for none, yes/no, line breaks shown as spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split()) if not str(value).isprintable() else str(value)


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


ExportFormat = Enum("ExportFormat", {name: name for name in resolver_lists.FORMATS}, type=str)
ImportFormat = Enum("ImportFormat", {name: name for name in domain_import.FORMATS}, type=str)


@domains_app.command("export")
def domains_export(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="rpz, bind (with bind-zone), unbound, dnsmasq, hosts or csv.")],
    address: Annotated[list[str], typer.Option("--address", "-a", help="A node address the domains resolve to (IPv4 or IPv6); repeatable.")],
    config: ConfigOption = None,
    db: DbOption = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of standard output.")] = None,
    zone: Annotated[str, typer.Option(help="rpz: the policy zone's name.")] = resolver_lists.DEFAULT_ZONE,
    ttl: Annotated[int, typer.Option(min=0, max=2**31 - 1, help="Time to live of the answers, seconds.")] = resolver_lists.DEFAULT_TTL,
    zone_file: Annotated[str, typer.Option(help="bind: where the bind-zone file is installed.")] = resolver_lists.DEFAULT_ZONE_FILE,
):
    """The active seized domains as a resolver list for ISPs: every name under each domain answers
    with the addresses given."""
    rows = with_store(cli_settings(config, db=db).db, lambda store: store.list_domains())
    try:
        lists = resolver_lists.ResolverList.build(rows, address, zone=zone, ttl=ttl, zone_file=zone_file)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    text = resolver_lists.render(format.value, lists)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8", newline="")
    for name in lists.skipped:
        typer.echo(f"warning: {name!r} is no DNS name: left out", err=True)
    if output is not None:
        typer.echo(f"{output}: {len(lists.domains)} domains, serial {lists.serial}", err=True)


@domains_app.command("import")
def domains_import(
    file: Annotated[Path, typer.Argument(help="A plain list (one domain a line, # comments) or CSV with a header; - reads standard input.")],
    config: ConfigOption = None,
    db: DbOption = None,
    format: Annotated[Optional[ImportFormat], typer.Option("--format", "-f", help="list or csv [csv for a .csv file, else list].")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; change nothing.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid lines even if some are invalid.")] = False,
):
    """Add seized domains from a file. With any invalid line nothing is imported and the exit is 1
    (with --skip-invalid the valid lines are, exit 0); existing domains: a list leaves them as they
    are, a CSV row updates them."""
    fmt = format.value if format else ("csv" if file.suffix.lower() == ".csv" else "list")
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"{file}: {error}", param_hint="FILE") from None
    try:
        parsed = domain_import.parse(text, fmt)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="FILE") from None
    for bad in parsed.invalid:
        typer.echo(f"{file}:{bad['line']}: {bad['text']!r}: {bad['reason']}", err=True)
    for dup in parsed.duplicates:
        typer.echo(f"{file}:{dup['line']}: {dup['name']} again (first on line {dup['first_line']}): ignored", err=True)
    if parsed.invalid and not skip_invalid:
        typer.echo(f"error: {len(parsed.invalid)} invalid line(s): nothing imported (--skip-invalid imports the others)",
                   err=True)
        raise typer.Exit(1)
    report = with_store(cli_settings(config, db=db).db, lambda store: domain_import.apply(store, parsed, dry_run))
    verb = "would be" if dry_run else ""
    typer.echo(f"{len(report['added'])} {verb + ' ' if verb else ''}added, {len(report['updated'])} "
               f"{verb + ' ' if verb else ''}updated, {len(report['unchanged'])} unchanged, "
               f"{len(parsed.invalid)} invalid" + (" (dry run: nothing changed)" if dry_run else ""))
