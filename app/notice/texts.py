"""Notice texts per language: one TOML file per language in `languages/`, chosen by Accept-Language."""

from __future__ import annotations

import re
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


# RFC 9110 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def _weight(params: list[str]) -> float | None:
    """The q of one Accept-Language entry (1 when it has none); None when its q is not a valid
    qvalue or is given twice, which makes the whole entry void. q may be any of its parameters,
    its name in any case."""
    q = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            if q is not None or not QVALUE.fullmatch(value):
                return None
            q = float(value)
    return 1.0 if q is None else q


def choose_language(accept_language: str, available, default: str) -> str:
    """The available language the client ranks highest (RFC 9110 q-values), else `default`.
    An entry with q=0 is "not acceptable" and never chosen; one with an invalid q is ignored."""
    best, best_q = None, 0.0
    for item in accept_language.split(",")[:32]:
        tag, *params = item.split(";")
        q = _weight(params)
        if q is None:
            continue
        primary = tag.strip().lower().partition("-")[0]
        # Equal q: the earlier one wins, so only a strictly higher q replaces it.
        if primary in available and q > best_q:
            best, best_q = primary, q
    if best is not None:
        return best
    return default if default in available else "en"
