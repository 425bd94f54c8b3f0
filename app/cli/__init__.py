"""The `seized` command. Thin: every command calls the same store, query and token code the
service uses, directly on the database (`--db`) or through a running server (`--url`, `--token`)."""

from __future__ import annotations

import asyncio
import functools
import getpass
import inspect
import json
import sys
import time
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from .config import load_settings, normalise_domain
from .query import MAX_PAGE, Exporter, HitFilter, record
from .store import SchemaTooNew, open_store
from .tokens import ROLES, create_token

app = typer.Typer(help="seized: the notice service for seized domains, and its evidential hit log.",
                  no_args_is_help=True, add_completion=False)
hits_app = typer.Typer(help="Read, query and export the hit log.", no_args_is_help=True)
domains_app = typer.Typer(help="Manage the seized-domain list (stored in the database).", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage management-API tokens.", no_args_is_help=True)
notice_app = typer.Typer(help="The notice's rendered forms.", no_args_is_help=True)
subjects_app = typer.Typer(help="Subscriber records of a seized panel, to match hits against.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence: ISP packages and plans, checkpoint signing keys.", no_args_is_help=True)
app.add_typer(hits_app, name="hits")
app.add_typer(domains_app, name="domains")
app.add_typer(tokens_app, name="tokens")
app.add_typer(notice_app, name="notice")
app.add_typer(evidence_app, name="evidence")
app.add_typer(subjects_app, name="subjects")
db_app = typer.Typer(help="The database: schema migrations, moving a deployment to another store.", no_args_is_help=True)
app.add_typer(db_app, name="db")

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file.")]
DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. sqlite:///data/seized.db.")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Where all state lives (database, journal, videos) [data].")]
UrlOption = Annotated[Optional[str], typer.Option("--url", help="A running server's management URL, e.g. http://127.0.0.1:8081 (instead of --db).")]
TokenOption = Annotated[Optional[str], typer.Option("--token", envvar="SEIZED_TOKEN", help="Investigator token for --url.")]


class Format(str, Enum):
    table = "table"
    csv = "csv"
    ndjson = "ndjson"


class ExportFormat(str, Enum):
    csv = "csv"
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
    try:
        return asyncio.run(run())
    except SchemaTooNew as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _read(db_url: str, work, command: str, filters: dict, count=len):
    """A read of the evidence from the command line, written to the audit log like an API read."""
    async def run(store):
        result = await work(store)
        await store.add_audit(token_name=f"cli:{getpass.getuser()}", role="cli", client_ip=None, method="CLI",
                              endpoint=command, filters=json.dumps(filters, ensure_ascii=False, default=str),
                              rows=count(result), status=200)
        return result
    return _with_store(db_url, run)


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


def _remote(url: str, token: str | None):
    import httpx

    if not token:
        raise typer.BadParameter("--url needs --token (or SEIZED_TOKEN)")
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _check(response) -> None:
    if response.status_code >= 400:
        response.read()
        typer.echo(f"error {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)


def _print_table(items: list[dict]) -> None:
    columns = ("id", "received_at", "client_ip", "client_port", "method", "host", "path", "status")
    table = [columns] + [tuple("" if item[c] is None else str(item[c]) for c in columns) for item in items]
    widths = [min(max(len(line[i]) for line in table), 40) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(cell[:40].ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@app.command()
def serve(
    config: ConfigOption = None,
    public: Annotated[Optional[str], typer.Option(help="Public listener HOST:PORT [0.0.0.0:8080].")] = None,
    admin: Annotated[Optional[str], typer.Option(help="Management listener HOST:PORT [127.0.0.1:8081].")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="Public listener processes [1].")] = None,
    node: Annotated[Optional[str], typer.Option(help="This node's id, stored with every hit.")] = None,
):
    """Start the public notice listener(s), the ingest process and the management listener."""
    from .server import run

    run(_settings(config, public=public, admin=admin, db=db, data_dir=data_dir, workers=workers, node=node))


@app.command()
def status(config: ConfigOption = None, data_dir: DataDirOption = None):
    """A running server's pipeline: journal counters, ingest backlog (hits, bytes, seconds), problems."""
    settings = _settings(config, data_dir=data_dir)
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


@hits_app.command("list")
def hits_list(
    config: ConfigOption = None,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many hits, newest first.")] = 20,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or ndjson.")] = Format.table,
):
    """Print the latest hits, newest first."""
    rows = _read(_settings(config, db=db).db, lambda store: store.latest_hits(limit), "seized hits list", {"limit": limit})
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
        with _remote(url, token) as client:
            while len(items) < limit:
                params = {**filters.active(), "limit": min(MAX_PAGE, limit - len(items))}
                if cursor:
                    params["cursor"] = cursor
                response = client.get("/api/v1/hits", params=params)
                _check(response)
                page = response.json()
                items += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
    else:
        rows = _read(_settings(config, db=db).db, lambda store: store.query_hits(filters, None, limit), "seized hits query",
                     {**filters.active(), "limit": limit})
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
    """Every matching hit, oldest first, streamed (the same export as GET /api/v1/hits/export)."""
    target = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        if url:
            with _remote(url, token) as client, client.stream(
                    "GET", "/api/v1/hits/export", params={**filters.active(), "format": format.value}) as response:
                _check(response)
                for text in response.iter_text():
                    target.write(text)
        else:
            async def export(store):
                exporter, count = Exporter(format.value), 0
                target.write(exporter.start())
                async for rows in store.iter_hits(filters, format.value):
                    target.write(exporter.rows(rows))
                    count += len(rows)
                return count
            _read(_settings(config, db=db).db, export, "seized hits export", filters.active(), count=lambda n: n)
    finally:
        if out:
            target.close()


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
        secret = _with_store(_settings(config, db=db).db, create)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(config: ConfigOption = None, db: DbOption = None):
    """List tokens (never their secrets)."""
    for row in _with_store(_settings(config, db=db).db, lambda store: store.list_tokens()):
        state = "revoked" if row["revoked_at"] else f"expires {row['expires_at']}" if row["expires_at"] else "active"
        typer.echo(f"{row['name']:24} {row['role']:13} {state:40} last used {row['last_used_at'] or 'never'}")


@tokens_app.command("revoke")
def tokens_revoke(name: str, config: ConfigOption = None, db: DbOption = None):
    """Revoke a token by name; it stops working at once."""
    if not _with_store(_settings(config, db=db).db, lambda store: store.revoke_token(name)):
        typer.echo(f"no active token named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name}")


@notice_app.command("render")
def notice_render(
    config: ConfigOption = None,
    db: DbOption = None,
    domain: Annotated[Optional[str], typer.Option(help="Only this domain (default: every active one, and unknown hosts).")] = None,
    language: Annotated[Optional[str], typer.Option(help="Only this language (default: every language).")] = None,
):
    """Pre-render the notice videos IPTV players are sent, so the first player need not wait."""
    from .notice.texts import load_languages
    from .notice.video import NoticeVideos
    from .public import video_lines
    from .domains import load_table
    from .server import seed_domains

    settings = _settings(config, db=db)
    languages = load_languages()
    if language is not None and language not in languages:
        raise typer.BadParameter(f"no language {language!r}; available: {', '.join(languages)}")
    async def domains(store):
        await seed_domains(store, settings)  # as the server does at start
        return await load_table(store, settings.notice)
    table = _with_store(settings.db, domains)
    notices = [*table.notices(), table.default]
    if domain is not None:
        notices = [n for n in notices if n.domain == normalise_domain(domain)]
        if not notices:
            raise typer.BadParameter(f"{domain} is not an active seized domain")
    videos = NoticeVideos(settings.video_dir)
    for notice in notices:
        for lang in [language] if language else languages:
            folder = videos.render_now(list(video_lines(languages[lang], notice)))
            typer.echo(f"{notice.domain or '(unknown hosts)'} [{lang}]: {folder}")


@app.command("purge")
def purge_command(
    config: ConfigOption = None,
    db: DbOption = None,
    days: Annotated[Optional[int], typer.Option(min=1, help="Keep this many days (default: retention_days from the config).")] = None,
):
    """Delete hits older than the retention period, recording each cut so `seized verify` still passes."""
    from .retention import purge_expired

    settings = _settings(config, db=db)
    days = days or settings.retention_days
    if not days:
        raise typer.BadParameter("no retention period: set retention_days in the config or pass --days")
    purges = _with_store(settings.db, lambda store: purge_expired(store, days))
    for cut in purges:
        typer.echo(f"node {cut['node']}: purged {cut['hits']} hits (ids {cut['first_id']}-{cut['last_id']}) "
                   f"received before {cut['cutoff']}")
    if not purges:
        typer.echo("nothing to purge")


@app.command("verify")
def verify_command(
    config: ConfigOption = None,
    db: DbOption = None,
    node: Annotated[Optional[str], typer.Option(help="Only this node's chain.")] = None,
):
    """Walk the hash chain of every node; report the first broken link and check the checkpoints.
    Exits 1 if anything is wrong."""
    from .evidence import load_signing_key, public_key_hex, verify

    settings = _settings(config, db=db)
    trusted = public_key_hex(load_signing_key(settings.signing_key_file)) if settings.signing_key_file else None
    report = _with_store(settings.db, lambda store: verify(store, node, trusted))
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if not report["ok"]:
        raise typer.Exit(1)


@evidence_app.command("package")
@with_hit_filters
def evidence_package(
    filters: HitFilter,
    out: Annotated[Path, typer.Option("--out", help="The ZIP to write.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """One matching package for one ISP data request: hits.csv, manifest.json, README.txt."""
    from .domains import load_table
    from .notice.texts import load_languages
    from .package import write_package

    settings = _settings(config, db=db)
    languages = load_languages()

    async def build(store):
        table = await load_table(store, settings.notice)
        notice = table.match(filters.domain) if filters.domain else table.default
        with open(out, "wb") as target:
            return await write_package(store, filters, target, notice, languages.get(notice.language, languages["en"]))
    manifest = _read(settings.db, build, "seized evidence package", filters.active(), count=lambda m: m["rows"])
    typer.echo(f"{out}: {manifest['rows']} hits, hits.csv sha256 {manifest['files']['hits.csv']}")


@evidence_app.command("plan")
@with_hit_filters
def evidence_plan(filters: HitFilter, config: ConfigOption = None, db: DbOption = None):
    """Which ISPs to ask: hits and distinct client IPs per autonomous system, busiest first."""
    rows = _read(_settings(config, db=db).db, lambda store: store.asn_plan(filters), "seized evidence plan", filters.active())
    typer.echo(f"{'asn':>10}  {'hits':>8}  {'ips':>6}  organisation")
    for row in rows:
        asn = "-" if row["asn"] is None else row["asn"]
        typer.echo(f"{asn:>10}  {row['hits']:>8}  {row['distinct_ips']:>6}  {row['as_org'] or '(unknown)'}")


@subjects_app.command("import")
def subjects_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with an 'account' column.")],
    case: Annotated[str, typer.Option("--case", help="Case reference the records belong to.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """Load a seized panel's subscriber records; the other columns are kept as attributes. Idempotent."""
    from .subjects import parse_subjects_csv

    try:
        records = parse_subjects_csv(file.read_text("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as error:
        raise typer.BadParameter(str(error)) from error
    added, changed = _with_store(_settings(config, db=db).db, lambda store: store.import_subjects(case, records))
    typer.echo(f"{len(records)} records for case {case}: {added} added, {changed} changed, {len(records) - added - changed} unchanged")


@subjects_app.command("list")
def subjects_list(case: Annotated[Optional[str], typer.Option("--case")] = None, config: ConfigOption = None, db: DbOption = None):
    """Imported records with their hit counts."""
    for row in _with_store(_settings(config, db=db).db, lambda store: store.subjects(case)):
        typer.echo(f"{row['case_ref']}  {row['account']:24} {row['hits']:>6} hits  {row['attributes']}")


@evidence_app.command("subjects-report")
def evidence_subjects_report(
    case: Annotated[str, typer.Option("--case")],
    out: Annotated[Path, typer.Option("--out", help="The JSON report to write.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """For each imported account of a case: hits, (IP, port, UTC time) tuples, ISPs, first and last
    seen; and the hits whose account matches no imported record."""
    from .subjects import subjects_report

    report = _read(_settings(config, db=db).db, lambda store: subjects_report(store, case), "seized evidence subjects-report",
                   {"case": case}, count=lambda r: len(r["subjects"]))
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
    typer.echo(f"{out}: {len(report['subjects'])} subjects, {len(report['unmatched_accounts'])} unmatched accounts")


@evidence_app.command("keygen")
def evidence_keygen(out: Annotated[Path, typer.Option("--out", help="Where to write the private key (PEM).")]):
    """Make an Ed25519 key for signing checkpoints; prints the public key to publish."""
    from .evidence import new_signing_key

    try:
        typer.echo(new_signing_key(out))
    except FileExistsError as error:
        raise typer.BadParameter(f"{out} exists; not overwriting a key") from error


@db_app.command("migrate")
def db_migrate(config: ConfigOption = None, db: DbOption = None):
    """Bring the database's schema up to this version of seized (serve does it too, at start)."""
    settings = _settings(config, db=db)
    version = _with_store(settings.db, lambda store: store.schema_version())
    typer.echo(f"{settings.db.split('@')[-1]}: schema version {version}")


@db_app.command("copy")
def db_copy(
    source: Annotated[str, typer.Option("--from", help="The database to copy, e.g. sqlite:///data/seized.db.")],
    target: Annotated[str, typer.Option("--to", help="An empty database, e.g. postgresql://seized@db/seized.")],
):
    """Copy a deployment to another store (e.g. SQLite to PostgreSQL): hits with their chains,
    checkpoints, purges, audit, domains, tokens, subjects. Stop the nodes writing to --from first;
    run `seized verify --db <--to>` afterwards."""
    from .dbcopy import copy_store

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


def main() -> None:
    app()
