"""`seized hits`: read, query and export the hit log, from the database or a running server."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..query import EXPORT_FORMATS, MAX_PAGE, OUTSIDE_CHAIN_HEADER, Exporter, HitFilter, outside_chain_note, record
from .common import ConfigOption, DbOption, TokenOption, UrlOption, audited_read, check, cli_settings, remote, with_hit_filters

hits_app = typer.Typer(help="Read, query and export the hit log.", no_args_is_help=True)


# The choices of --format: the export formats (query.EXPORT_FORMATS), and a table for reading.
ExportFormat = Enum("ExportFormat", {name: name for name in EXPORT_FORMATS}, type=str)
Format = Enum("Format", {"table": "table", **{name: name for name in EXPORT_FORMATS}}, type=str)


def _warn_outside_chain(count: int | str | None) -> None:
    """On standard error: rows with ids below 1 matching the query were left out (query.OUTSIDE_CHAIN_HEADER)."""
    if count and int(count):
        typer.echo(outside_chain_note(int(count)), err=True)


def _page_and_outside(filters: HitFilter, limit: int):
    """The store's page of hits and how many rows with ids below 1 it left out, in one session."""
    async def read(store):
        return await store.query_hits(filters, None, limit), await store.outside_chain(filters)
    return read


def _print_table(items: list[dict]) -> None:
    columns = ("id", "received_at", "client_ip", "client_port", "method", "host", "path", "status")
    table = [columns] + [tuple("" if item[c] is None else str(item[c]) for c in columns) for item in items]
    widths = [min(max(len(line[i]) for line in table), 40) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(cell[:40].ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@hits_app.command("list")
def hits_list(
    config: ConfigOption = None,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many hits, newest first.")] = 20,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or ndjson.")] = Format.table,
):
    """Print the latest hits, newest first."""
    rows, outside = audited_read(cli_settings(config, db=db).db, _page_and_outside(HitFilter(), limit), "seized hits list",
                                 {"limit": limit}, count=lambda result: len(result[0]))
    _warn_outside_chain(outside)
    items = [record(row) for row in rows]
    if format is Format.table:
        _print_table(items)
    else:
        for item in items:
            typer.echo(json.dumps(item, ensure_ascii=False))


@hits_app.command("query")
@with_hit_filters
def hits_query(
    filters: HitFilter,
    config: ConfigOption = None,
    db: DbOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many hits, newest first.")] = 100,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
):
    """Hits matching the filters, newest first (the same query layer as GET /api/v1/hits)."""
    if url:
        items, cursor = [], None
        with remote(url, token) as client:
            while len(items) < limit:
                params = {**filters.active(), "limit": min(MAX_PAGE, limit - len(items))}
                if cursor:
                    params["cursor"] = cursor
                response = client.get("/api/v1/hits", params=params)
                check(response)
                if cursor is None:
                    _warn_outside_chain(response.headers.get(OUTSIDE_CHAIN_HEADER))
                page = response.json()
                items += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
    else:
        rows, outside = audited_read(cli_settings(config, db=db).db, _page_and_outside(filters, limit),
                                     "seized hits query", {**filters.active(), "limit": limit},
                                     count=lambda result: len(result[0]))
        _warn_outside_chain(outside)
        items = [record(row) for row in rows]
    if format is Format.table:
        _print_table(items)
        return
    exporter = Exporter(format.value)
    sys.stdout.write(exporter.start())
    sys.stdout.write(exporter.items(items))


@hits_app.command("export")
@with_hit_filters
def hits_export(
    filters: HitFilter,
    config: ConfigOption = None,
    db: DbOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.csv,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of standard output.")] = None,
):
    """Every matching hit, oldest first, streamed (the same export as GET /api/v1/hits/export).
    Audited before the first byte; refused, no file written, if the audit log cannot be written."""
    target = None

    def opened():  # only once the export is audited (or the server has answered): nothing otherwise
        nonlocal target
        target = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout
        return target

    try:
        if url:
            with remote(url, token) as client, client.stream(
                    "GET", "/api/v1/hits/export", params={**filters.active(), "format": format.value}) as response:
                check(response)
                _warn_outside_chain(response.headers.get(OUTSIDE_CHAIN_HEADER))
                opened()
                for text in response.iter_text():
                    target.write(text)
        else:
            async def export(store):
                _warn_outside_chain(await store.outside_chain(filters))
                exporter, count = Exporter(format.value), 0
                opened().write(exporter.start())
                async for rows in store.iter_hits(filters, format.value):
                    target.write(exporter.rows(rows))
                    count += len(rows)
                return count
            audited_read(cli_settings(config, db=db).db, export, "seized hits export", filters.active(), count=lambda n: n)
    finally:
        if out and target is not None:
            target.close()
