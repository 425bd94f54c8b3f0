"""`seized notice`: the notice's rendered forms."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..config import normalise_domain
from .common import ConfigOption, DbOption, cli_settings, with_store

notice_app = typer.Typer(help="The notice's rendered forms.", no_args_is_help=True)


@notice_app.command("render")
def notice_render(
    config: ConfigOption = None,
    db: DbOption = None,
    domain: Annotated[Optional[str], typer.Option(help="Only this domain (default: every active one, and unknown hosts).")] = None,
    language: Annotated[Optional[str], typer.Option(help="Only this language (default: every language).")] = None,
):
    """Pre-render the notice videos IPTV players are sent, so the first player need not wait."""
    from ..domains import load_table, seed_domains
    from ..notice.texts import load_languages
    from ..notice.video import NoticeVideos, video_lines

    settings = cli_settings(config, db=db)
    languages = load_languages()
    if language is not None and language not in languages:
        raise typer.BadParameter(f"no language {language!r}; available: {', '.join(languages)}")
    async def domains(store):
        await seed_domains(store, settings)  # as the server does at start
        return await load_table(store, settings.notice)
    table = with_store(settings.db, domains)
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
