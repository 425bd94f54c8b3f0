"""Notice texts per language: one TOML file per language in `languages/`, chosen by Accept-Language."""

from __future__ import annotations

import tomllib
from pathlib import Path

LANGUAGES_DIR = Path(__file__).parent / "languages"


def load_languages(directory: Path = LANGUAGES_DIR) -> dict[str, dict[str, str]]:
    languages = {path.stem.lower(): tomllib.loads(path.read_text("utf-8")) for path in sorted(directory.glob("*.toml"))}
    if "en" not in languages:
        raise RuntimeError(f"{directory}: en.toml, the fallback language, is missing")
    reference = set(languages["en"])
    for code, texts in languages.items():
        missing = reference - set(texts)
        if missing:
            raise RuntimeError(f"{directory}/{code}.toml lacks {sorted(missing)}")
    return languages


def choose_language(accept_language: str, available, default: str) -> str:
    """The available language the client ranks highest (RFC 9110 q-values), else `default`."""
    best, best_q = None, 0.0
    for item in accept_language.split(",")[:32]:
        tag, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().partition("-")[0]
        # Equal q: the earlier one wins, so only a strictly higher q replaces it.
        if primary in available and q > best_q:
            best, best_q = primary, q
    if best is not None:
        return best
    return default if default in available else "en"
