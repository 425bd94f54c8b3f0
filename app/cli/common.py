"""What every `seized` command shares: the options, the settings, running work against the
store (audited when it reads the evidence), the hit filters as options, the remote client."""

from __future__ import annotations

import asyncio
import functools
import getpass
import inspect
import json
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from ..config import load_settings
from ..query import HitFilter
from ..store import SchemaTooNew, open_store

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file.")]
DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. sqlite:///data/seized.db.")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Where all state lives (database, journal, videos) [data].")]
UrlOption = Annotated[Optional[str], typer.Option("--url", help="A running server's management URL, e.g. http://127.0.0.1:8081 (instead of --db).")]
TokenOption = Annotated[Optional[str], typer.Option("--token", envvar="SEIZED_TOKEN", help="Investigator token for --url.")]


def cli_settings(config: Path | None, **overrides):
    try:
        return load_settings(config, **overrides)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error


def with_store(db_url: str, work):
    """Run `work(store)` against the database and close it."""
    async def run():
        store = await open_store(db_url)
        try:
            return await work(store)
        finally:
            await store.close()
    try:
        return asyncio.run(run())
    except SchemaTooNew as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


# Commands that write the evidence out as they read it (a file, standard output): like the API's
# export and package, their audit row goes in before the first byte, marked {"_audit": "started"}
# (then a row with the count once done), and they are refused, nothing written, if it cannot be.
AUDITED_FIRST = ("seized hits export", "seized evidence package")


def audited_read(db_url: str, work, command: str, filters: dict, count=len):
    """A read (or a purge) of the evidence from the command line, written to the audit log like an
    API request: after the work, or for AUDITED_FIRST commands also before it."""
    async def run(store):
        def add(rows, stage=None):
            entry = {**filters, "_audit": stage} if stage else filters
            return store.add_audit(token_name=f"cli:{getpass.getuser()}", role="cli", client_ip=None, method="CLI",
                                   endpoint=command, filters=json.dumps(entry, ensure_ascii=False, default=str),
                                   rows=rows, status=200)
        first = command in AUDITED_FIRST
        if first:
            try:
                await add(None, "started")
            except Exception as error:
                typer.echo(f"error: the audit log cannot be written ({error}), so nothing is written; try again "
                           "shortly", err=True)
                raise typer.Exit(1) from None
        result = await work(store)
        try:
            await add(count(result))
        except Exception as error:
            if not first:
                raise
            typer.echo(f"warning: done, but the audit row with the count could not be written ({error}); the row "
                       "written before it started stands", err=True)
        return result
    return with_store(db_url, run)


# Each hit filter is a command-line option of `hits query` and `hits export` (same names as the API's).
FILTER_OPTIONS = {
    "since": (Optional[str], "Received at or after, RFC 3339 (e.g. 2026-11-23T06:00:00Z)."),
    "until": (Optional[str], "Received before, RFC 3339."),
    "domain": (Optional[str], "Seized domain."),
    "ip": (Optional[str], "Client IP, exact."),
    "cidr": (Optional[str], "Client IP inside this network (IPv4 or IPv6)."),
    "port": (Optional[int], "Client source port."),
    "method": (Optional[str], "HTTP method."),
    "path_prefix": (Optional[str], "Path starts with this."),
    "ua": (Optional[str], "User-Agent contains this."),
    "status": (Optional[int], "Response status."),
    "node": (Optional[str], "Node id."),
    "account": (Optional[str], "Xtream username or Stalker MAC."),
    "client_kind": (Optional[str], "browser, xtream_api, playlist, epg, stream, stalker, enigma2 or other."),
    "asn": (Optional[int], "Client's autonomous system number."),
    "country": (Optional[str], "Client's country (ISO 3166 alpha-2)."),
}


def with_hit_filters(command):
    """Adds the filter options to `command` and hands it one validated HitFilter as `filters`."""
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[kind, typer.Option(help=text, rich_help_panel="Filters")])
        for name, (kind, text) in FILTER_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        try:
            filters = HitFilter(**{name: kwargs.pop(name) for name in FILTER_OPTIONS})
        except ValidationError as error:
            raise typer.BadParameter("; ".join(e["msg"] for e in error.errors())) from error
        return command(filters=filters, **kwargs)

    hints = typing.get_type_hints(command, include_extras=True)  # real types, not the strings of `annotations`
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values() if p.name != "filters"]
    wrapper.__signature__ = inspect.Signature(own + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    return wrapper


def remote(url: str, token: str | None):
    """A client of a running server's management API (`--url`, `--token`)."""
    import httpx

    if not token:
        raise typer.BadParameter("--url needs --token (or SEIZED_TOKEN)")
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def check(response) -> None:
    if response.status_code >= 400:
        response.read()
        typer.echo(f"error {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)
