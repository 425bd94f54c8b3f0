"""`seized healthcheck`: exit 0 if the running service answers, 1 if not. For a container's
HEALTHCHECK or a monitoring probe; it needs nothing but Python (no curl in a slim image)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Annotated, Optional

import typer

from ..config import split_address
from .common import ConfigOption, cli_settings

# A listener bound to every address is reached on loopback (an IPv6 `[::]` one is dual-stack).
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "": "127.0.0.1"}


def _reachable(address: str) -> tuple[str, int]:
    host, port = split_address(address)
    return LOOPBACK.get(host, host), port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def healthcheck(
    config: ConfigOption = None,
    admin: Annotated[Optional[str], typer.Option(help="Management listener HOST:PORT [from the config, 127.0.0.1:8081].")] = None,
    ready: Annotated[bool, typer.Option("--ready", help="Ask /readyz (database, workers, ingest, journal) instead of /healthz.")] = False,
    public: Annotated[bool, typer.Option("--public", help="Also connect to every plain public listener (no request is "
                                                           "sent, so no hit is logged).")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer.")] = 5.0,
):
    """Exit 0 if the management listener answers /healthz (or /readyz with --ready), else 1."""
    settings = cli_settings(config, admin=admin)
    host, port = _reachable(settings.admin)
    path = "/readyz" if ready else "/healthz"
    url = f"http://{_url_host(host)}:{port}{path}"
    problems = []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read(64 * 1024) or b"{}")
    except urllib.error.HTTPError as error:  # /readyz answers 503 with its problems named
        try:
            named = json.loads(error.read(64 * 1024)).get("problems") or []
        except ValueError:
            named = []
        problems.append(f"{url}: HTTP {error.code}" + (f" ({'; '.join(map(str, named))})" if named else ""))
    except (OSError, ValueError) as error:  # refused, timed out, not JSON
        problems.append(f"{url}: {getattr(error, 'reason', error)}")
    else:
        if not ready and body.get("status") != "ok":
            problems.append(f"{url}: status {body.get('status')!r}")
    if public:
        for address in settings.public:
            target = _reachable(address)
            try:
                socket.create_connection(target, timeout=timeout).close()
            except OSError as error:
                problems.append(f"public listener {address}: {error}")
    if problems:
        typer.echo("unhealthy: " + "; ".join(problems), err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {url}" + (f" and {len(settings.public)} public listener(s)" if public else ""))
