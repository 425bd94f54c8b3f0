"""`seized evidence check PACKAGE.zip --public-key KEY`: an evidence package checked offline, with
nothing but the ZIP and the signer's public key (package.py says what a package holds). The same
checks as the standalone verify.js inside each package:

- manifest.json is signed (manifest.sig) by a pinned key, and every file it lists has its SHA-256;
  no other file is in the ZIP;
- records.jsonl and hits.csv hold the manifest's row count, row for row the same hits;
- each row's record hashes to the leaf at its chain position, and the leaves chain from the
  stretch's start to the head the manifest states; the covering checkpoint, where there is one, is
  at that head and signed by a pinned key; an RFC 3161 token on the manifest, where there is one
  and a TSA certificate is given, is valid."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from .chain_format import leaf_v2, link_v2
from .evidence import checkpoint_signature, signature_valid
from .package import COLUMNS, COLUMNS_FORMAT_1
from .query import csv_cell

OWN_FILES = ("manifest.json", "manifest.sig", "manifest.tsr")


def check_package(path, pinned: frozenset[str], tsa_certificate: bytes | None = None) -> dict:
    """{"ok", "problems": [...], "notes": [...], "rows", "chains": [...]} for the package at `path`."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        return {"ok": False, "problems": [f"not a readable ZIP: {error}"], "notes": [], "rows": 0, "chains": []}
    with archive:
        names = set(archive.namelist())
        manifest_bytes = archive.read("manifest.json") if "manifest.json" in names else b""
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            return {"ok": False, "problems": ["manifest.json is missing or not JSON"], "notes": [], "rows": 0, "chains": []}
        _check_signature(archive, names, manifest_bytes, pinned, problems, notes)
        _check_token(archive, names, manifest_bytes, tsa_certificate, problems, notes)
        files = manifest.get("files", {})
        for name, digest in files.items():
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing")
            elif hashlib.sha256(archive.read(name)).hexdigest() != digest:
                problems.append(f"{name}: its SHA-256 differs from the manifest's")
        for name in sorted(names - set(files) - set(OWN_FILES)):
            problems.append(f"{name}: in the ZIP but not in the manifest")
        records = _records(archive, names, problems)
        if len(records) != manifest.get("rows"):
            problems.append(f"records.jsonl holds {len(records)} rows, the manifest says {manifest.get('rows')}")
        _check_csv(archive, names, records, problems, COLUMNS_FORMAT_1 if manifest.get("package_format") == 1 else COLUMNS)
        chains = [_check_chain(archive, chain, records, pinned, problems, notes) for chain in manifest.get("chains", [])]
    return {"ok": not problems, "problems": problems, "notes": notes, "rows": len(records), "chains": chains}


def _check_signature(archive, names, manifest_bytes: bytes, pinned, problems, notes) -> None:
    if "manifest.sig" not in names:
        problems.append("manifest.sig is missing: the package is not signed")
        return
    signature = archive.read("manifest.sig").decode("ascii", "replace").strip()
    signer = next((key for key in sorted(pinned) if signature_valid(key, manifest_bytes, signature)), None)
    if signer is None:
        problems.append("manifest.json is not signed by a pinned key (edited, or another signer)")
    else:
        notes.append(f"manifest.json signed by {signer}")


def _check_token(archive, names, manifest_bytes: bytes, tsa_certificate, problems, notes) -> None:
    if "manifest.tsr" not in names:
        return
    if tsa_certificate is None:
        notes.append("manifest.tsr not checked: no TSA certificate given (--tsa-certificate)")
        return
    from .tsa import check_token

    ok, time, problem = check_token(archive.read("manifest.tsr"), manifest_bytes, tsa_certificate)
    if ok:
        notes.append(f"manifest.json timestamped by the TSA at {time}")
    else:
        problems.append(f"manifest.tsr: {problem}")


def _records(archive, names, problems) -> list[dict]:
    if "records.jsonl" not in names:
        problems.append("records.jsonl is missing")
        return []
    records = []
    for number, line in enumerate(archive.read("records.jsonl").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except ValueError:
            problems.append(f"records.jsonl line {number} is not JSON")
    return records


def _check_csv(archive, names, records: list[dict], problems, columns: dict = COLUMNS) -> None:
    if "hits.csv" not in names:
        problems.append("hits.csv is missing")
        return
    rows = list(csv.reader(io.StringIO(archive.read("hits.csv").decode("utf-8", "replace"), newline="")))
    if not rows or tuple(rows[0]) != tuple(columns):
        problems.append("hits.csv: its header is not the package's columns")
        return
    if len(rows) - 1 != len(records):
        problems.append(f"hits.csv holds {len(rows) - 1} rows, records.jsonl {len(records)}")
    for number, (row, record) in enumerate(zip(rows[1:], records), start=1):
        expected = [csv_cell(make(record)) for make in columns.values()]  # a formula's cell begins with "'"
        if row != expected:
            differing = [name for name, a, b in zip(columns, row, expected) if a != b]
            problems.append(f"hits.csv row {number}: {', '.join(differing) or 'its fields'} differ from its record")


def _check_chain(archive, chain: dict, records: list[dict], pinned, problems, notes) -> dict:
    node = chain.get("node")
    try:
        leaves = archive.read(chain["leaves"]).decode("ascii").split()
    except (KeyError, UnicodeDecodeError):
        problems.append(f"node {node}: its leaves file is missing or unreadable")
        return {"node": node, "ok": False}
    first, last = chain["first_position"], chain["last_position"]
    if len(leaves) != last - first + 1:
        problems.append(f"node {node}: {len(leaves)} leaves for positions {first}..{last}")
        return {"node": node, "ok": False}
    rows = {r.get("position"): r for r in records if r.get("node") == node}
    start = chain.get("proof_start")
    if start is None:
        notes.append(f"node {node}: its {len(rows)} rows are in chain format 1: only the manifest's signature covers them")
        return {"node": node, "ok": True, "format1_rows": len(rows)}
    before = len(problems)
    prev = start["prev_hash"]
    for position in range(start["position"], last + 1):
        leaf = leaves[position - first]
        record = rows.get(position)
        if record is not None:
            try:
                own = leaf_v2(record)
            except (KeyError, TypeError, ValueError) as error:
                own = f"unhashable: {error}"
            if own != leaf:
                problems.append(f"row id {record.get('id')} (node {node}, position {position}): its record does not hash "
                                "to the chain's leaf: edited")
            if record.get("prev_hash") != prev:
                problems.append(f"row id {record.get('id')}: prev_hash is not the chain's")
        prev = link_v2(prev, leaf)
        if record is not None and record.get("hash") != prev:
            problems.append(f"row id {record.get('id')}: hash is not the chain's")
    if prev != chain.get("head"):
        problems.append(f"node {node}: the chain ends at {prev}, the manifest says {chain.get('head')}")
    cp = chain.get("covering_checkpoint")
    if cp is not None:
        if (cp.get("count"), cp.get("head")) != (last, prev):
            problems.append(f"node {node}: the covering checkpoint is not where the chain ends")
        signature = checkpoint_signature(cp["node"], cp, pinned)  # (pinned is never empty: the check needs a key)
        if signature != "valid":
            problems.append(f"node {node}: the covering checkpoint's signature: {signature}")
    format1 = sum(1 for position in rows if position < start["position"])
    if format1:
        notes.append(f"node {node}: {format1} rows in chain format 1: only the manifest's signature covers them")
    return {"node": node, "ok": len(problems) == before, "rows": len(rows), "positions": [first, last], "head": prev,
            "covering_checkpoint_at": cp.get("at") if cp else None}
