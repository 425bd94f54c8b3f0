"""`seized serve` and `seized status`: running the service, and asking how it runs."""

from __future__ import annotations

import enum
import json
import os
import time
from typing import Annotated, Optional

import typer

from .common import ConfigOption, DataDirOption, DbOption, cli_settings


class LogFormat(str, enum.Enum):
    text = "text"
    json = "json"


def serve(
    config: ConfigOption = None,
    public: Annotated[Optional[list[str]], typer.Option(
        help="Public listener HOST:PORT; repeatable (every port a panel used) [[::]:8080, IPv4 and IPv6].")] = None,
    tls: Annotated[Optional[list[str]], typer.Option(
        help="TLS listener HOST:PORT (HTTPS visitors); repeatable. Certificates: tls_cert_dir, else self-signed.")] = None,
    admin: Annotated[Optional[str], typer.Option(help="Management listener HOST:PORT [127.0.0.1:8081].")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="Public listener processes [1].")] = None,
    node: Annotated[Optional[str], typer.Option(help="This node's id, stored with every hit.")] = None,
    log_format: Annotated[Optional[LogFormat], typer.Option(
        help="The log on stderr: text, or json (one object per line) [text].")] = None,
):
    """Start the public notice listener(s), the ingest process and the management listener."""
    from ..process import LOG_FORMAT_VARIABLE
    from ..server import run

    settings = cli_settings(config, public=public, tls=tls, admin=admin, db=db, data_dir=data_dir, workers=workers,
                            node=node, log_format=log_format.value if log_format else None)
    os.environ[LOG_FORMAT_VARIABLE] = settings.log_format  # for this process and every one it spawns
    run(settings)


def status(config: ConfigOption = None, data_dir: DataDirOption = None):
    """A running server's pipeline: journal counters, ingest backlog (hits, bytes, seconds), problems."""
    settings = cli_settings(config, data_dir=data_dir)
    path = settings.run_dir / "status.json"
    if not path.exists():
        typer.echo(f"no status at {path}: is seized serving with this data directory?", err=True)
        raise typer.Exit(2)
    report = json.loads(path.read_text())
    age = time.time() - path.stat().st_mtime
    journal, ingest = report["journal"], report["ingest"]
    typer.echo(f"status:   {'ok' if report['ok'] else 'DEGRADED'} (as of {age:.1f} s ago)")
    for problem in report["problems"]:
        typer.echo(f"problem:  {problem}")
    typer.echo(f"journal:  {journal['received']} received, {journal['journaled']} journaled, {journal['held']} held in memory, "
               f"{journal['lost']} lost")
    typer.echo(f"ingest:   {ingest['ingested']} ingested, backlog {ingest['backlog_hits']} hits / {ingest['backlog_bytes']} bytes / "
               f"{ingest['backlog_seconds']} s, {ingest['gaps']} gaps ({ingest['gap_bytes']} bytes), "
               f"database {'ok' if ingest['database_ok'] else 'UNAVAILABLE'}")
    for worker in report["workers"]:
        typer.echo(f"{worker['name']}: pid {worker['pid']}, {'alive' if worker['alive'] else 'DOWN'}, "
                   f"{worker['connections']} connections, {worker['restarts']} restarts")
    if age > 5:
        typer.echo("warning:  the status file is stale: seized may not be running", err=True)
        raise typer.Exit(1)
    raise typer.Exit(0 if report["ok"] else 1)
