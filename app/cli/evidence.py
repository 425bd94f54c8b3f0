"""The evidence: `seized verify` and `seized purge` (the chains and their recorded cuts), and
`seized evidence` (ISP packages and plans, subscriber reports, checkpoint signing keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..query import HitFilter
from .common import ConfigOption, DbOption, audited_read, cli_settings, with_hit_filters, with_store

evidence_app = typer.Typer(help="Evidence: ISP packages and plans, checkpoint signing keys.", no_args_is_help=True)


def purge_command(
    config: ConfigOption = None,
    db: DbOption = None,
    days: Annotated[Optional[int], typer.Option(min=1, help="Keep this many days (default: retention_days from the config).")] = None,
):
    """Delete hits older than the retention period, recording each cut so `seized verify` still passes."""
    from ..retention import purge_expired

    settings = cli_settings(config, db=db)
    days = days or settings.retention_days
    if not days:
        raise typer.BadParameter("no retention period: set retention_days in the config or pass --days")
    purges = audited_read(settings.db, lambda store: purge_expired(store, days, settings.signing_key_file), "purge",
                          {"days": days}, count=lambda cuts: sum(cut["hits"] for cut in cuts))
    for cut in purges:
        typer.echo(f"node {cut['node']}: purged {cut['hits']} hits (ids {cut['first_id']}-{cut['last_id']}) "
                   f"received before {cut['cutoff']}")
    if not purges:
        typer.echo("nothing to purge")


def verify_command(
    config: ConfigOption = None,
    db: DbOption = None,
    node: Annotated[Optional[str], typer.Option(help="Only this node's chain.")] = None,
    public_key: Annotated[Optional[list[str]], typer.Option(
        "--public-key", help="Pin a signer: 64 hex digits or a PEM file; repeatable. With any key pinned (here, in "
                             "trusted_public_keys or by signing_key_file), unsigned checkpoints and other signers fail.")] = None,
    witness: Annotated[Optional[Path], typer.Option(
        "--witness", help="A copy of a witness file (witness_file): its checkpoints are checked against the database, "
                          "so a tail cut or rewritten after the database's last checkpoint is caught.")] = None,
    tsa_certificate: Annotated[Optional[Path], typer.Option(
        "--tsa-certificate", help="The TSA's CA chain (PEM) to check checkpoints' RFC 3161 timestamp tokens with "
                                  "(default: tsa_certificate from the config); an invalid token fails.")] = None,
):
    """Walk the hash chain of every node; report the first broken link and check the checkpoints.
    Exits 1 if anything is wrong."""
    from ..evidence import trusted_keys, verify
    from ..witness import read

    settings = cli_settings(config, db=db)
    try:
        trusted = trusted_keys(settings, public_key or ())
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--public-key") from None
    try:
        witnessed = read(witness) if witness is not None else None
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--witness") from None
    from ..tsa import load_certificates

    tsa_path = tsa_certificate or settings.tsa_certificate
    try:
        tsa_pem = load_certificates(tsa_path) if tsa_path is not None else None
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"{tsa_path}: {error}", param_hint="--tsa-certificate") from None
    report = with_store(settings.db, lambda store: verify(store, node, trusted, witnessed, tsa_pem))
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
    """One matching package for one ISP data request, checkable offline: hits.csv, records.jsonl,
    chain-N.txt, manifest.json (signed), verify.js, README.txt."""
    from ..domains import load_table
    from ..notice.texts import load_languages
    from ..package import PackageError, geo_filter_problem, write_package

    settings = cli_settings(config, db=db)
    languages = load_languages()

    async def build(store):
        table = await load_table(store, settings.notice)
        notice = table.match(filters.domain) if filters.domain else table.default
        with open(out, "wb") as target:
            manifest = await write_package(store, filters, target, notice, languages.get(notice.language, languages["en"]),
                                           settings)
        if manifest["rows"] == 0 and (problem := await geo_filter_problem(store, filters, settings)):
            raise PackageError(problem)
        return manifest
    try:
        manifest = audited_read(settings.db, build, "seized evidence package", filters.active(), count=lambda m: m["rows"])
    except PackageError as error:
        out.unlink(missing_ok=True)
        typer.echo(f"error: no package: {error}", err=True)
        raise typer.Exit(1) from None
    if manifest["rows"] == 0:
        typer.echo("warning: no hit matches these filters: the package holds no rows", err=True)
    typer.echo(f"{out}: {manifest['rows']} hits, hits.csv sha256 {manifest['files']['hits.csv']}")
    if manifest["signer"] is None:
        typer.echo("warning: no signing_key_file in the config: the package is unsigned, so no one can check it "
                   "offline (seized evidence check needs a signer's key)", err=True)


@evidence_app.command("check")
def evidence_check(
    package: Annotated[Path, typer.Argument(help="The package (ZIP) to check.")],
    public_key: Annotated[list[str], typer.Option(
        "--public-key", help="The signer's public key: 64 hex digits or a PEM file; repeatable.")],
    tsa_certificate: Annotated[Optional[Path], typer.Option(
        "--tsa-certificate", help="The TSA's CA chain (PEM), to check the manifest's RFC 3161 token.")] = None,
):
    """Check an evidence package offline, with no database: its signature by a pinned key, every
    file's hash, every row's hash and its place in the signed chain. Exits 1 if anything is wrong."""
    from ..evidence import public_key_of
    from ..package_check import check_package
    from ..tsa import load_certificates

    try:
        pinned = frozenset(public_key_of(key) for key in public_key)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--public-key") from None
    try:
        tsa_pem = load_certificates(tsa_certificate) if tsa_certificate is not None else None
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"{tsa_certificate}: {error}", param_hint="--tsa-certificate") from None
    report = check_package(package, pinned, tsa_pem)
    for note in report["notes"]:
        typer.echo(f"note: {note}")
    for problem in report["problems"]:
        typer.echo(f"FAIL {problem}")
    typer.echo(f"{package}: {report['rows']} rows, " + ("OK" if report["ok"] else f"FAILED: {len(report['problems'])} problems"))
    if not report["ok"]:
        raise typer.Exit(1)


@evidence_app.command("plan")
@with_hit_filters
def evidence_plan(filters: HitFilter, config: ConfigOption = None, db: DbOption = None):
    """Which ISPs to ask: hits and distinct client IPs per autonomous system, busiest first."""
    rows = audited_read(cli_settings(config, db=db).db, lambda store: store.asn_plan(filters), "seized evidence plan",
                        filters.active())
    typer.echo(f"{'asn':>10}  {'hits':>8}  {'ips':>6}  organisation")
    for row in rows:
        asn = "-" if row["asn"] is None else row["asn"]
        typer.echo(f"{asn:>10}  {row['hits']:>8}  {row['distinct_ips']:>6}  {row['as_org'] or '(unknown)'}")


@evidence_app.command("subjects-report")
def evidence_subjects_report(
    case: Annotated[str, typer.Option("--case")],
    out: Annotated[Path, typer.Option("--out", help="The JSON report to write.")],
    config: ConfigOption = None,
    db: DbOption = None,
):
    """For each imported account of a case: hits, (IP, port, UTC time) tuples, ISPs, first and last
    seen; and the hits whose account matches no imported record."""
    from ..subjects import subjects_report

    report = audited_read(cli_settings(config, db=db).db, lambda store: subjects_report(store, case),
                          "seized evidence subjects-report", {"case": case}, count=lambda r: len(r["subjects"]))
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
    typer.echo(f"{out}: {len(report['subjects'])} subjects, {len(report['unmatched_accounts'])} unmatched accounts")


@evidence_app.command("keygen")
def evidence_keygen(out: Annotated[Path, typer.Option("--out", help="Where to write the private key (PEM).")]):
    """Make an Ed25519 key for signing checkpoints; prints the public key to publish."""
    from ..evidence import new_signing_key

    try:
        typer.echo(new_signing_key(out))
    except FileExistsError as error:
        raise typer.BadParameter(f"{out} exists; not overwriting a key") from error
