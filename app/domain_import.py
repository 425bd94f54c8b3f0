"""`seized domains import` and POST /api/v1/domains/import: a list of seized domains from a file.

Two forms: a plain list (one domain a line; `#` comments and blank lines ignored) or CSV with a
header row naming `domain` (or `name`) and any of the notice fields (agency, case_ref, legal_basis,
language, status, blocked_by, notes, active); other columns (`addresses`, as the resolver-list CSV
has) are ignored, so an exported CSV imports again.

Names are stored as DNS and Host headers carry them (A-labels, lower case) and must have two labels
at least: a bare `tv` would redirect a whole top-level domain.
Everything is checked before anything is written: with one invalid line nothing is imported (each
is reported with its line number), unless `skip_invalid` imports the valid ones. A domain that
exists already is left as it is by a plain list; by CSV it gets the fields of its row (the columns
the file has; an empty cell returns a notice field to the [notice] default)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from pydantic import ValidationError

from .resolver_lists import dns_name

FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes", "active")
NAME_COLUMNS = ("domain", "name")
TRUE, FALSE = ("true", "1", "yes", "y"), ("false", "0", "no", "n")
FORMATS = ("list", "csv")


@dataclass
class Entry:
    line: int
    name: str
    fields: dict | None  # None: a plain list's line, nothing but the name


@dataclass
class Parsed:
    entries: list[Entry] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # {"line", "text", "reason"}
    duplicates: list[dict] = field(default_factory=list)  # {"line", "name", "first_line"}


def domain_name(text: str) -> str:
    """A name as an import stores it; ValueError says why it is none."""
    name = dns_name(text.strip())
    if name is None:
        raise ValueError("not a DNS name (letters, digits, '-' and '_' in labels of 1 to 63, 253 at most)")
    if "." not in name:
        raise ValueError("a single label: seizing it would take a whole top-level domain")
    return name


def parse(text: str, fmt: str) -> Parsed:
    """Every line checked; nothing written. ValueError when the file as a whole is unusable (a CSV
    without a domain column)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: list or csv")
    parsed, seen = Parsed(), {}
    rows = _csv_rows(text) if fmt == "csv" else _list_rows(text)
    for line, raw, fields in rows:
        try:
            name = domain_name(raw)
            if fields is not None:
                fields = _checked_fields(fields)
        except ValueError as error:
            parsed.invalid.append({"line": line, "text": raw, "reason": str(error)})
            continue
        if name in seen:
            parsed.duplicates.append({"line": line, "name": name, "first_line": seen[name]})
            continue
        seen[name] = line
        parsed.entries.append(Entry(line, name, fields))
    return parsed


def _list_rows(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield number, line, None


def _csv_rows(text: str):
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        raise ValueError("the CSV is empty: it needs a header row naming a domain column")
    columns = [c.strip().lower() for c in header]
    name_column = next((columns.index(c) for c in NAME_COLUMNS if c in columns), None)
    if name_column is None:
        raise ValueError(f"the CSV header names no domain column (domain or name): {header}")
    used = {columns.index(c): c for c in FIELDS if c in columns}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        cells = row + [""] * (len(columns) - len(row))
        yield line, cells[name_column], {name: cells[index] for index, name in used.items()}


def _checked_fields(cells: dict) -> dict:
    """A CSV row's notice fields, checked as the API checks them (app/api/domains.DomainSettings)."""
    from .api.domains import DomainSettings

    values: dict = {}
    for name, cell in cells.items():
        cell = cell.strip() if name != "notes" else cell
        if name == "active":
            if cell.lower() not in TRUE + FALSE + ("",):
                raise ValueError(f"active must be true or false, not {cell!r}")
            values["active"] = cell.lower() not in FALSE
        elif name == "notes":
            values["notes"] = cell
        else:
            values[name] = cell or None
    try:
        checked = DomainSettings(**values)
    except ValidationError as error:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
    return checked.model_dump(include=set(values))


async def apply(store, parsed: Parsed, dry_run: bool = False) -> dict:
    """Writes the entries (unless dry_run) and reports what became of each: added, updated (a CSV
    row changed an existing domain), unchanged (it exists and nothing in the file differs)."""
    existing = {row["name"]: row for row in await store.list_domains()}
    report = {"added": [], "updated": [], "unchanged": []}
    for entry in parsed.entries:
        current = existing.get(entry.name)
        fields = dict(entry.fields or {})
        if current is None:
            report["added"].append(entry.name)
            if not dry_run:
                active = fields.pop("active", True)
                await store.add_domain(entry.name, **fields)
                if not active:
                    await store.update_domain(entry.name, active=0)
            continue
        changed = {k: v for k, v in fields.items() if (bool(current[k]) if k == "active" else current[k]) != v}
        if not changed:
            report["unchanged"].append(entry.name)
            continue
        report["updated"].append(entry.name)
        if not dry_run:
            if "active" in changed:
                changed["active"] = int(changed["active"])
            await store.update_domain(entry.name, **changed)
    return report
