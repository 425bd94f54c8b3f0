"""Matching packages for ISPs: one ZIP per data request, holding the connections (IP, source port,
UTC time to the microsecond), what proves them against the log's hash chain, and a signed manifest,
so that an ISP or a court can check the package with no access to our database (package_check.py
in Python, verifier/verify.js in JavaScript, which travels inside each package).

    hits.csv        the rows an ISP looks up, sorted by time, each with its node, chain position,
                    id, uid, prev_hash and hash
    records.jsonl   each row's complete hashed record (chain_format 2), to recompute its hash
    chain-N.txt     per node, the leaf of every chain position from the package's first row to its
                    covering checkpoint: what links the rows to a signed chain head, without the
                    contents of the hits between them
    manifest.json   filters, row count, SHA-256 of every file, per node the stretch of chain and its
                    covering checkpoint, enrichment databases, the clock note
    manifest.sig    Ed25519 signature of manifest.json's bytes (signing_key_file)
    manifest.tsr    an RFC 3161 token over manifest.json (tsa_url), where configured
    verify.js       the standalone verifier; README.txt says how to run it

Nothing depends on when the package was made: the same rows and checkpoints give the same ZIP, byte
for byte (a TSA's token, which carries its own time, aside)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import hashlib
import json
import logging
import operator
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .chain_format import leaf_v2, link_v2
from .hit_fields import RECORD_FIELDS
from .query import HitFilter

if TYPE_CHECKING:
    from .config import Settings
    from .store import Store

log = logging.getLogger("seized.package")
VERIFIER = Path(__file__).with_name("verifier") / "verify.js"
PACKAGE_FORMAT = 2  # 2: hits.csv's timestamp_utc to the microsecond, as received_at (1: to the millisecond)
DEFAULT_PORTS = {"http": 80, "https": 443}


def destination_port(record: dict) -> int | None:
    """The port the client connected to: the listener's own when the client reached it directly;
    behind a proxy (the TCP peer is not the client), the port the client named in its Host header,
    else its scheme's default."""
    direct = record["peer_ip"] is None or (record["peer_ip"], record["peer_port"]) == (record["client_ip"], record["client_port"])
    if direct:
        return record["server_port"]
    host = record["host"] or ""
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
    return int(port) if port.isascii() and port.isdigit() and 0 < int(port) < 65536 else DEFAULT_PORTS.get(record["scheme"])


# The columns of hits.csv, in order: what the ISP looks up first (RFC 6302: source address, port and
# time; then the destination address, port and protocol a CGNAT look-up may also need), then what the
# request was, then what ties the row to the hash chain. server_ip is the local address the connection
# arrived at: behind a proxy, the proxy-facing one (as server_port).
_DERIVED = {
    "timestamp_utc": operator.itemgetter("received_at"),  # to the microsecond, as every time seized writes
    "destination_port": destination_port,
    "protocol": lambda r: "TCP",  # the listener serves HTTP over TCP only
}
COLUMNS = {name: _DERIVED.get(name) or operator.itemgetter(name) for name in (
    "client_ip", "client_port", "timestamp_utc", "server_ip", "destination_port", "protocol", "domain", "method", "path",
    "user_agent", "server_port", "scheme", "node", "position", "id", "uid", "prev_hash", "hash")}
# hits.csv as packages of format 1 wrote it, for checking them: timestamp_utc to the millisecond.
COLUMNS_FORMAT_1 = {**COLUMNS, "timestamp_utc": lambda r: r["received_at"][:23] + "Z"}
CLOCK_NOTE = ("Timestamps are the receiving server's system clock, in UTC, when the request head was complete. "
              "What was measured of that clock (the kernel's synchronisation flag and error estimate, the NTP source "
              "where one answered, any step) is in each covering checkpoint's `clock`; nothing more is claimed.")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's date: the same rows make the same bytes


class PackageError(Exception):
    """The package cannot be made: the chain does not agree with itself or its checkpoints."""


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def csv_lines(rows) -> bytes:
    """hits.csv's text: as every CSV seized writes (query.CsvWriter), formula-looking text neutralised."""
    from .query import CsvWriter

    return CsvWriter().lines(rows).encode("utf-8")


def record_line(record: dict) -> bytes:
    """A row of records.jsonl: the record as readers get it (headers and device as JSON values), and its position."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _as_record(row: dict) -> dict:
    record = {name: row[name] for name in RECORD_FIELDS}
    for name in ("headers", "device"):
        if isinstance(record[name], str):
            record[name] = json.loads(record[name])
    return record


@dataclass
class NodeStretch:
    """One node's rows in the package, and the stretch of its chain that proves them."""
    node: str
    ids: set[int] = field(default_factory=set)
    positions: dict[int, int] = field(default_factory=dict)  # id -> chain position
    first_position: int = 0
    last_position: int = 0
    start_prev_hash: str | None = None  # before the first position given a leaf (format 2)
    start_position: int | None = None
    head: str | None = None
    last_id: int | None = None
    format1_rows: int = 0
    checkpoint: dict | None = None


async def _prove(store: Store, stretch: NodeStretch, v1_last_id: int, leaves) -> None:
    """Walk the node's chain from its first package row to the first checkpoint that covers its last
    one (or to that row, if no checkpoint does yet), checking every link, numbering positions and
    writing each position's leaf ("-" for a hit in chain format 1, which has none) to `leaves`."""
    first, last = min(stretch.ids), max(stretch.ids)
    stretch.checkpoint = next((cp for cp in await store.checkpoints(stretch.node) if cp["last_id"] >= last), None)
    end_id = stretch.checkpoint["last_id"] if stretch.checkpoint else last
    walk = _Walk(stretch, v1_last_id, end_id, await store.chain_position(stretch.node, first) - 1)
    stretch.first_position = walk.position + 1
    async for rows in store.iter_chain(stretch.node, after=first - 1):
        # Hashing a long stretch takes seconds: in a worker thread, so a server keeps answering.
        if await asyncio.to_thread(walk.take, rows, leaves):
            break
    cp = stretch.checkpoint
    if cp and (cp["count"], cp["head"]) != (walk.position, walk.prev):
        raise PackageError(f"node {stretch.node}: the chain disagrees with checkpoint {cp['id']}; run `seized verify`")
    if len(stretch.positions) != len(stretch.ids):
        raise PackageError(f"node {stretch.node}: {len(stretch.ids) - len(stretch.positions)} rows not found in the chain")
    stretch.last_position, stretch.head, stretch.last_id = walk.position, walk.prev, end_id


@dataclass
class _Walk:
    stretch: NodeStretch
    v1_last_id: int
    end_id: int
    position: int
    prev: str | None = None

    def take(self, rows: list[dict], leaves) -> bool:
        """One chunk of the chain: its leaves written; True once the end is reached."""
        stretch, lines, done = self.stretch, [], False
        for row in rows:
            if row["id"] < 1 or row["hash"] is None:
                raise PackageError(f"node {stretch.node}: hit {row['id']} is outside the chain; run `seized verify`")
            if self.prev is not None and row["prev_hash"] != self.prev:
                raise PackageError(f"node {stretch.node}: the chain breaks at hit {row['id']}; run `seized verify`")
            self.position += 1
            if row["id"] <= self.v1_last_id:
                lines.append("-")
            else:
                leaf = leaf_v2(row)
                if link_v2(row["prev_hash"], leaf) != row["hash"]:
                    raise PackageError(f"node {stretch.node}: hit {row['id']} does not match its hash; run `seized verify`")
                if stretch.start_position is None:
                    stretch.start_position, stretch.start_prev_hash = self.position, row["prev_hash"]
                lines.append(leaf)
            if row["id"] in stretch.ids:
                stretch.positions[row["id"]] = self.position
            self.prev = row["hash"]
            if row["id"] == self.end_id:
                done = True
                break
        leaves.write("".join(line + "\n" for line in lines).encode("ascii"))
        return done


def _checkpoint_entry(cp: dict | None) -> dict | None:
    if cp is None:
        return None
    keys = ("node", "at", "count", "last_id", "head", "clock", "public_key", "signature", "tsa_token")
    return {key: cp.get(key) for key in keys}


def enrichment(settings: Settings) -> list[dict]:
    """The GeoIP/ASN databases configured when the package is made: their type, build time and hash."""
    import geoip2.database

    from .record import iso_utc

    found = []
    for kind, path in (("city/country", settings.geoip_city_db), ("asn", settings.geoip_asn_db)):
        if path is None:
            continue
        entry = {"kind": kind, "file": Path(path).name}
        try:
            with geoip2.database.Reader(str(path)) as reader:
                meta = reader.metadata()
            entry |= {"database_type": meta.database_type, "build_utc": iso_utc(meta.build_epoch * 10**9),
                      "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
        except Exception as error:  # noqa: BLE001 - a missing or broken file is stated, not fatal
            entry["problem"] = f"unreadable now: {error}"
        found.append(entry)
    return found


# The filters only GeoIP enrichment at ingest can match (app/geo.py), and the setting that enables it.
GEO_FILTERS = {"asn": "geoip_asn_db", "country": "geoip_city_db"}


async def geo_filter_problem(store: Store, filters: HitFilter, settings: Settings) -> str | None:
    """Why a package's `asn` or `country` filter can match nothing, or None: the hits the other
    filters select exist but not one carries that field (ingested without a GeoIP database), so an
    empty package would say "no hits" where the truth is "not looked up". Asked once a package came
    out empty: cheap then, and never when rows matched."""
    for name, setting in GEO_FILTERS.items():
        if getattr(filters, name) is None:
            continue
        others = filters.model_copy(update=dict.fromkeys(GEO_FILTERS))
        groups = await store.hit_stats(others, name, limit=2)  # one group is None at most
        if groups and all(group["grp"] is None for group in groups):
            configured = getattr(settings, setting)
            now = (f"{setting} is set now ({configured}): hits ingested from now on carry it" if configured
                   else f"no GeoIP database is configured: set {setting} (a MaxMind-format .mmdb) in the config")
            return (f"the {name} filter cannot match: none of the {sum(g['hits'] for g in groups)} hits the other filters "
                    f"select has a{'n' if name == 'asn' else ''} {name}, as they were stored without GeoIP enrichment; {now}")
    return None


async def write_package(store: Store, filters: HitFilter, target, notice, texts: dict[str, str], settings: Settings) -> dict:
    """Write the ZIP to `target` (a binary file object); return its manifest. Raises PackageError if
    the chain does not prove the rows. Blocking work runs in worker threads."""
    from .evidence import load_signing_key, public_key_hex, sign

    v1 = await store.chain_v1()
    stretches: dict[str, NodeStretch] = {}
    spool = tempfile.TemporaryFile()  # the rows as read, until their positions are known
    count = 0
    async for rows in store.iter_hits_by_time(filters):
        records = [_as_record(row) for row in rows]
        for record in records:
            stretch = stretches.setdefault(record["node"], NodeStretch(record["node"]))
            stretch.ids.add(record["id"])
            stretch.format1_rows += record["id"] <= v1.get(record["node"], 0)
        count += len(records)
        await asyncio.to_thread(spool.write, b"".join(record_line(r) for r in records))

    archive = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED)
    files, chains = {}, []
    for index, node in enumerate(sorted(stretches), start=1):
        stretch, name = stretches[node], f"chain-{index}.txt"
        with archive.open(_member(name), "w", force_zip64=True) as member:
            digest = _Digesting(member)
            await _prove(store, stretch, v1.get(node, 0), digest)
        files[name] = digest.hexdigest()
        chains.append({"node": node, "leaves": name, "first_position": stretch.first_position,
                       "last_position": stretch.last_position, "last_id": stretch.last_id, "head": stretch.head,
                       "proof_start": None if stretch.start_position is None else
                       {"position": stretch.start_position, "prev_hash": stretch.start_prev_hash},
                       "rows": len(stretch.ids), "format1_rows": stretch.format1_rows,
                       "covering_checkpoint": _checkpoint_entry(stretch.checkpoint)})

    def positioned():
        """The spooled rows again, 2,000 at a time, each with its chain position."""
        spool.seek(0)
        batch = []
        for line in spool:
            record = json.loads(line)
            record["position"] = stretches[record["node"]].positions[record["id"]]
            batch.append(record)
            if len(batch) == 2000:
                yield batch
                batch = []
        yield batch

    def write_rows() -> None:
        # A ZIP takes one member at a time: hits.csv, then records.jsonl, each from the spool.
        with archive.open(_member("hits.csv"), "w", force_zip64=True) as member:
            hits = _Digesting(member)
            hits.write(csv_lines([list(COLUMNS)]))
            for batch in positioned():
                hits.write(csv_lines([["" if (value := make(r)) is None else value for make in COLUMNS.values()]
                                      for r in batch]))
        with archive.open(_member("records.jsonl"), "w", force_zip64=True) as member:
            records = _Digesting(member)
            for batch in positioned():
                records.write(b"".join(record_line(r) for r in batch))
        spool.close()
        files["hits.csv"], files["records.jsonl"] = hits.hexdigest(), records.hexdigest()

    await asyncio.to_thread(write_rows)
    readme = texts["package_readme"].format(case_ref=notice.case_ref or "-", agency=notice.agency,
                                            legal_basis=notice.legal_basis or "-").lstrip().encode("utf-8")
    verifier = VERIFIER.read_bytes()
    files["README.txt"], files["verify.js"] = hashlib.sha256(readme).hexdigest(), hashlib.sha256(verifier).hexdigest()
    signing_key = load_signing_key(settings.signing_key_file) if settings.signing_key_file else None
    manifest = {  # nothing of the moment it was made: the same rows give the same package, byte for byte
        "package_format": PACKAGE_FORMAT,
        "chain_format": 2,
        "tool": f"seized {__version__}",
        "filters": filters.active(),
        "rows": count,
        # rows matching the filters with an id below 1 (never made by seized: outside every chain), left out
        "left_out_outside_chain": await store.outside_chain(filters),
        "columns": list(COLUMNS),
        "files": dict(sorted(files.items())),
        "chains": chains,
        "signer": public_key_hex(signing_key) if signing_key else None,
        "enrichment": enrichment(settings),
        "clock": CLOCK_NOTE,
    }
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    token = await _timestamp(settings.tsa_url, manifest_bytes) if settings.tsa_url else None

    def finish() -> None:
        archive.writestr(_member("README.txt"), readme)
        archive.writestr(_member("verify.js"), verifier)
        archive.writestr(_member("manifest.json"), manifest_bytes)
        if signing_key is not None:
            archive.writestr(_member("manifest.sig"), sign(signing_key, manifest_bytes) + "\n")
        if token is not None:
            archive.writestr(_member("manifest.tsr"), token)
        archive.close()

    await asyncio.to_thread(finish)
    return manifest


async def _timestamp(url: str, message: bytes) -> bytes | None:
    """An RFC 3161 token over the manifest; a TSA that fails costs the package its token, not the package."""
    from . import tsa

    try:
        return await asyncio.to_thread(tsa.request_token, url, message)
    except tsa.TsaError as error:
        log.warning("package made without a timestamp token: %s", error)
        return None


class _Digesting:
    """A file that also hashes what is written to it."""

    def __init__(self, target):
        self.target, self.sha256 = target, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.target.write(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()
