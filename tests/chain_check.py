"""An independent check of the hash chains, purges included: written from the README ("Verifying
the chain", "Retention") with hashlib and json, reading the database with sqlite3 or psycopg (helpers.sql), none of seized's code, so a test that
uses it does not check the app against itself.

    hash = SHA-256(prev_hash || SHA-256(canonical record))   (format 2; format 1 for older hits)

A node's chain starts at 64 zeros, or, once hits were purged, at the `head_at_cut` of its latest
purge record. A hit missing at the start of a chain that no purge record accounts for, a hit missing
or inserted in the middle, an edited field, a purge record that does not fit (overlapping ranges,
more chained hits than hits, an anchor that changes with nothing chained purged), a purged range
that still holds hits, and a checkpoint the chain no longer passes through are each a problem.

What no checker can see: a purge record forged together with the deletion it covers, when no
checkpoint after the cut gives it away. Not handled: hits stored before a database had the chain
(no hash; `seized verify` counts them apart), which this reports as problems."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from helpers import sql

GENESIS = "0" * 64


@dataclass
class NodeChain:
    node: str
    hits: int = 0  # hits stored now
    purged_hits: int = 0  # hits the purge records say were deleted
    purged_chained: int = 0  # of those, the ones that were in the chain: the stored chain starts at this position
    head: str = GENESIS
    purges: list[dict] = field(default_factory=list)
    checkpoints_checked: int = 0  # checkpoints after the cut that the chain was seen to pass through
    problems: list[str] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Chain positions so far: purged ones and stored ones."""
        return self.purged_chained + self.hits


FORMAT_2 = ("uid received_at node host domain scheme method path query http_version client_ip client_port peer_ip "
            "peer_port server_ip server_port headers user_agent body_size body_sha256 status duration_us error client_kind "
            "account device password_hmac country city asn as_org").split()


def record_hash(prev_hash: str, row: dict, format_1: bool = False) -> str:
    """The README's recipes. Format 2: leaf = SHA-256 of the JSON array [2, each field of the list in
    order] (no whitespace, non-ASCII as itself, the duration in whole microseconds, headers and
    device as JSON values, device keys sorted), hash = SHA-256(prev_hash || leaf). Format 1 (hits
    up to the id `chain_v1` records): every column of `hits` but id, prev_hash and hash, nulls left
    out, keys sorted, no whitespace, non-ASCII as itself."""
    if format_1:
        record = {k: v for k, v in row.items() if k not in ("id", "prev_hash", "hash") and v is not None}
        text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()
    values = [2]
    for name in FORMAT_2:
        if name == "duration_us":
            values.append(round(row["duration_ms"] * 1000))
        elif name in ("headers", "device") and isinstance(row[name], str):
            values.append(json.loads(row[name]))
        else:
            values.append(row[name])
    leaf = hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return hashlib.sha256((prev_hash + leaf.hexdigest()).encode("ascii")).hexdigest()


def check_chains(database) -> dict[str, NodeChain]:
    """Every node's chain in the database (a URL, or an SQLite file's path; nodes with hits, purges
    or checkpoints)."""
    query = partial(sql, database if isinstance(database, str) else f"sqlite:///{Path(database)}")
    nodes = sorted({r["node"] for r in query("SELECT node FROM hits UNION SELECT node FROM purges "
                                              "UNION SELECT node FROM checkpoints")})
    return {node: check_node(query, node) for node in nodes}


def problems_of(database) -> dict[str, list[str]]:
    """Only the nodes with problems, and theirs: {} when everything verifies."""
    return {node: chain.problems for node, chain in check_chains(database).items() if chain.problems}


def check_node(query, node: str) -> NodeChain:
    chain = NodeChain(node)
    purges = query("SELECT * FROM purges WHERE node = ? ORDER BY id", (node,))
    checkpoints = query("SELECT * FROM checkpoints WHERE node = ? ORDER BY id", (node,))
    chain.purges = purges

    # The purge records: ranges in order and apart, counts that add up, the anchor after each cut.
    anchor, anchors = GENESIS, {0: GENESIS}  # chain position -> the hash there, known from the purge records
    for k, purge in enumerate(purges):
        label = f"purge {purge['id']} (ids {purge['first_id']}-{purge['last_id']})"
        if purge["first_id"] > purge["last_id"] or not 0 <= purge["chained"] <= purge["hits"] or purge["hits"] < 1:
            chain.problems.append(f"{label}: its range and counts do not fit ({purge['hits']} hits, {purge['chained']} chained)")
        if k and purge["first_id"] <= purges[k - 1]["last_id"]:
            chain.problems.append(f"{label}: overlaps or precedes the purge before it")
        if purge["chained"] == 0 and purge["head_at_cut"] != anchor:
            chain.problems.append(f"{label}: no chained hit purged, yet the chain head at the cut changed")
        if purge["cutoff"] > purge["at"]:
            chain.problems.append(f"{label}: its cut-off {purge['cutoff']} is after the purge itself ({purge['at']})")
        chain.purged_hits += purge["hits"]
        chain.purged_chained += purge["chained"]
        anchor = purge["head_at_cut"]
        anchors[chain.purged_chained] = anchor

    # The stored hits: the first links to the anchor, each next one to the one before it.
    rows = query("SELECT * FROM hits WHERE node = ? ORDER BY id", (node,))
    format_1 = query("SELECT last_id FROM chain_v1 WHERE node = ?", (node,))
    format_1_last_id = format_1[0]["last_id"] if format_1 else 0
    chain.hits = len(rows)
    last_purged_id = purges[-1]["last_id"] if purges else 0
    inside = [row["id"] for row in rows if row["id"] <= last_purged_id]
    if inside:
        chain.problems.append(f"hits {inside[:5]} are still stored inside a purged range (up to id {last_purged_id})")
    prev = anchor
    position = chain.purged_chained
    at_position: dict[int, tuple[str, int]] = {}  # chain position -> (hash, id) of the stored hit there
    for n, row in enumerate(rows):
        position += 1
        if row["hash"] is None or row["prev_hash"] is None:
            chain.problems.append(f"hit {row['id']}: no hash inside the chain")
            prev = row["hash"] or prev
            continue
        if row["prev_hash"] != prev:
            if n == 0:
                start = f"the cut of purge {purges[-1]['id']} ({prev[:12]}...)" if purges else "64 zeros"
                chain.problems.append(f"hit {row['id']}: the chain does not start at {start}: hits before it were "
                                      f"deleted with no purge record covering them, or it was moved")
            else:
                chain.problems.append(f"hit {row['id']}: prev_hash does not match the hit before it: a hit was "
                                      f"deleted, inserted or moved here")
        if row["hash"] != record_hash(row["prev_hash"], row, row["id"] <= format_1_last_id):
            chain.problems.append(f"hit {row['id']}: the record does not match its hash: a field was edited")
        prev = row["hash"]
        at_position[position] = (row["hash"], row["id"])
    chain.head = prev

    # Checkpoints: the chain must still pass through each one after the cut (and end no earlier).
    for cp in checkpoints:
        label = f"checkpoint {cp['id']} (count {cp['count']})"
        if cp["count"] > chain.length:
            chain.problems.append(f"{label}: the chain ends at {chain.length}, before it: hits were deleted from its end")
        elif cp["count"] in anchors:  # taken exactly where a purge later cut the chain
            if cp["head"] != anchors[cp["count"]]:
                chain.problems.append(f"{label}: its head differs from the purge record's head at that cut")
        elif cp["count"] > chain.purged_chained:
            stored = at_position.get(cp["count"])
            if stored != (cp["head"], cp["last_id"]):
                chain.problems.append(f"{label}: the chain at that position differs from it")
            else:
                chain.checkpoints_checked += 1
        # else: it covers hits purged since; nothing stored is left to compare it with
    return chain
