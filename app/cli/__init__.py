"""The `seized` command. Thin: every command calls the same store, query and token code the
service uses, directly on the database (`--db`) or through a running server (`--url`, `--token`).
One module per subject; this one puts them together."""

from __future__ import annotations

import typer

from .db import db_app
from .domains import domains_app
from .evidence import evidence_app, purge_command, verify_command
from .healthcheck import healthcheck
from .hits import hits_app
from .notice import notice_app
from .serve import serve, status
from .subjects import subjects_app
from .tokens import tokens_app

app = typer.Typer(help="seized: the notice service for seized domains, and its evidential hit log.",
                  no_args_is_help=True, add_completion=False)
app.command()(serve)
app.command()(status)
app.command()(healthcheck)
app.command("purge")(purge_command)
app.command("verify")(verify_command)
app.add_typer(hits_app, name="hits")
app.add_typer(domains_app, name="domains")
app.add_typer(tokens_app, name="tokens")
app.add_typer(notice_app, name="notice")
app.add_typer(evidence_app, name="evidence")
app.add_typer(subjects_app, name="subjects")
app.add_typer(db_app, name="db")


def main() -> None:
    app()
