"""The HTML notice. Jinja2 renders each (domain, language) once with markers where the
per-visit values go; a request only escapes its IP, port and time into those gaps."""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..domains import Notice

SLOTS = ("ip", "port", "time")
SAFE = re.compile(r"[0-9A-Za-z:. -]*")  # IP addresses, ports, our own time stamps
# A slot's marker in the rendered page: `<` opens it, and autoescaped text (every notice field, every
# language string) never holds a raw `<`, so no admin text can be taken for a slot, whatever it holds
# (a NUL in the agency field once spliced the visitor's IP into the page). Only the template itself
# could write one, and it is ours.
MARK_OPEN, MARK_CLOSE = "<\x00seized-slot:", "\x00>"
SLOT_MARK = re.compile(re.escape(MARK_OPEN) + "(" + "|".join(SLOTS) + ")" + re.escape(MARK_CLOSE))


class HtmlNotice:
    def __init__(self, templates_dir: Path, languages: dict[str, dict[str, str]]):
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir), autoescape=True)
        self._template = env.get_template("notice.html")
        self._languages = languages
        self._pieces = lru_cache(maxsize=4096)(self._render_pieces)
        self._templates = lru_cache(maxsize=4096)(self._render_template)

    def _render_pieces(self, notice: Notice, lang: str) -> tuple[bytes | str, ...]:
        """Alternating literal bytes and slot names."""
        texts = self._languages[lang]
        before, _, after = texts["lead"].partition("{domain}")
        html = self._template.render(
            lang=lang,
            t=texts,
            lead=(before, after),
            notice=notice,
            domain=notice.domain,
            **{slot: Markup(f"{MARK_OPEN}{slot}{MARK_CLOSE}") for slot in SLOTS},
        )
        pieces = SLOT_MARK.split(html)  # literal, slot name, literal, ...
        return tuple(piece.encode("utf-8") if i % 2 == 0 else piece for i, piece in enumerate(pieces))

    def render(self, notice: Notice, lang: str, values: dict[str, str]) -> bytes:
        return b"".join(
            piece if isinstance(piece, bytes) else escape(values[piece]).encode("utf-8")
            for piece in self._pieces(notice, lang)
        )

    def _render_template(self, notice: Notice, lang: str) -> tuple[list, tuple]:
        """The page's pieces and where its slots sit among them: a request fills in the slots and joins."""
        pieces = self._pieces(notice, lang)
        return list(pieces), tuple((i, piece) for i, piece in enumerate(pieces) if isinstance(piece, str))

    def render_fast(self, notice: Notice, lang: str, ip: str, port: str, time: str) -> bytes:
        """`render` for the values the listener has: an IP address, a port and a time we formatted
        ourselves, so markup is impossible in them; anything unexpected is escaped all the same."""
        pieces, slots = self._templates(notice, lang)
        if not SAFE.fullmatch(ip):
            ip = escape(ip)
        values = {"ip": ip.encode(), "port": port.encode(), "time": time.encode()}
        pieces = pieces.copy()
        for index, slot in slots:
            pieces[index] = values[slot]
        return b"".join(pieces)
