"""Tamper evidence. Each node's hits form a hash chain, in the order they were stored (the format,
by version, is chain_format's). Checkpoints record a node's chain head and length from time to
time, signed with Ed25519 when a signing key is configured, so a published checkpoint later proves
nothing before it changed; verify() walks the chains and checks them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import tsa
from .chain_format import GENESIS, canonical_row, canonical_v1, leaf_v2, link_v1, link_v2
from .record import COLUMNS

if TYPE_CHECKING:
    from .store import Store

NODE = COLUMNS.index("node")
canonical = canonical_v1  # signed messages (checkpoints, purges): a JSON object, keys sorted


def chain_rows(rows: list[tuple], heads: dict[str, str]) -> tuple[list[tuple], dict[str, str]]:
    """Rows (COLUMNS order) extended with prev_hash and hash (format 2); and the heads after them.
    `heads` must hold the current head of every node in `rows` (GENESIS for a new one); it is not changed."""
    heads = dict(heads)
    linked = []
    sha256 = hashlib.sha256
    for row in rows:
        node = row[NODE]
        prev = heads[node]
        leaf = sha256(canonical_row(row)).hexdigest()
        digest = sha256((prev + leaf).encode("ascii")).hexdigest()
        linked.append((*row, prev, digest))
        heads[node] = digest
    return linked, heads


@dataclass
class Break:
    id: int
    reason: str


def row_hash(row: dict, version: int = 2) -> str | None:
    """The hash a stored row should have after its prev_hash, in its chain format; None if the row
    holds a value the format cannot (a float where an integer belongs)."""
    try:
        if version == 1:
            return link_v1(row["prev_hash"] or "", {column: row[column] for column in COLUMNS})
        return link_v2(row["prev_hash"] or "", leaf_v2(row))
    except (ValueError, TypeError):
        return None


def check_link(prev: str, row: dict, version: int = 2) -> Break | None:
    """Whether a stored row continues the chain from `prev`, and if not, how it breaks."""
    if row["hash"] != row_hash(row, version):
        return Break(row["id"], "the record does not match its hash: a field was edited")
    if row["prev_hash"] != prev:
        return Break(row["id"], "prev_hash does not match the hit before it: a hit was deleted, inserted or moved here")
    return None


# -- checkpoint signatures --------------------------------------------------------------------

def checkpoint_message(node: str, count: int, last_id: int, head: str, at: str, clock: str | None = None) -> bytes:
    """What a checkpoint's signature covers; its clock record (JSON text) too, where it has one."""
    fields = {"node": node, "count": count, "last_id": last_id, "head": head, "at": at}
    return canonical(fields if clock is None else {**fields, "clock": clock})


PURGE_FIELDS = ("node", "at", "cutoff", "first_id", "last_id", "hits", "chained", "head_at_cut", "checkpoint_id")


def purge_message(record: dict) -> bytes:
    """What a purge record's signature covers (a record from before schema 17 has no checkpoint_id:
    canonical() leaves the null out, so its message is as it was)."""
    return canonical({k: record.get(k) for k in PURGE_FIELDS})


def purge_signer(private_key):
    """For the store's purge: (public key, signature) of a purge record, made before it is stored."""
    public = public_key_hex(private_key)
    return lambda record: (public, sign(private_key, purge_message(record)))


def load_signing_key(path: Path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(Path(path).read_bytes(), password=None)


def public_key_hex(private_key) -> str:
    return _raw_hex(private_key.public_key())


def _raw_hex(public_key) -> str:
    """An Ed25519 public key as the 64 hex digits checkpoints carry."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(private_key, message: bytes) -> str:
    return private_key.sign(message).hex()


def signature_valid(public_key: str, message: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def new_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 600) and return its public key (hex)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return public_key_hex(key)


# -- verification -----------------------------------------------------------------------------

def public_key_of(key: str) -> str:
    """A public key to pin, as hex: given as 64 hex digits, or as a PEM file holding the public key
    (or the private key, whose public half is taken)."""
    if len(key) == 64 and all(c in "0123456789abcdefABCDEF" for c in key):
        return key.lower()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
    try:
        data = Path(key).read_bytes()
    except OSError as error:
        raise ValueError(f"{key!r} is neither 64 hex digits nor a readable PEM file: {error}") from None
    try:
        public = load_pem_private_key(data, password=None).public_key() if b"PRIVATE KEY" in data else load_pem_public_key(data)
        return _raw_hex(public)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{key}: not an Ed25519 key in PEM: {error}") from None


def trusted_keys(settings, extra=()) -> frozenset[str]:
    """The signers verify accepts: `trusted_public_keys`, keys given on the command line, and the
    public half of this node's own signing key. Empty: nothing pinned (signatures are still checked)."""
    keys = {public_key_of(key) for key in (*settings.trusted_public_keys, *extra)}
    if settings.signing_key_file:
        keys.add(public_key_hex(load_signing_key(settings.signing_key_file)))
    return frozenset(keys)


# -- verification -----------------------------------------------------------------------------

def _walk(rows, prev: str, count: int, purged: int, before_chain: int, legacy_last_id: int, v1_last_id: int,
          checkpoints: dict, seen_at: dict):
    """Check one chunk of a node's chain; returns the state to carry on with, and the first break."""
    for row in rows:
        if row["id"] < 1:
            return prev, count, before_chain, Break(row["id"], "an id below 1, which seized never gives: a row outside the chain")
        if row["hash"] is None and count == purged and row["id"] <= legacy_last_id:
            before_chain += 1  # stored before this database had the chain (schema version < 5)
            continue
        broken = Break(row["id"], "a hit without a hash inside the chain") if row["hash"] is None else check_link(prev, row, 1 if row["id"] <= v1_last_id else 2)
        if broken:
            return prev, count, before_chain, broken
        prev, count = row["hash"], count + 1
        if count in checkpoints:
            seen_at[count] = (prev, row["id"])
    return prev, count, before_chain, None


async def verify(store: Store, node: str | None = None, trusted: frozenset[str] = frozenset(),
                 witness: list[dict] | None = None, tsa_certificate: bytes | None = None) -> dict:
    """Walk each node's chain from its first hit; report the first broken link and check every
    checkpoint against the chain (its head at its position), against the one before it, and its
    signature: with `trusted` keys pinned, an unsigned checkpoint or another signer fails. The
    `witness` checkpoints (a witness file's copy) are checked against the chain the same way: one the
    chain no longer reaches, or passes with another head, means the database was cut or rewritten.
    A checkpoint's RFC 3161 token is checked against `tsa_certificate` (PEM): an invalid one fails."""
    report = {"ok": True, "nodes": [], "trusted_keys": sorted(trusted)}
    legacy, v1 = await store.legacy_unhashed(), await store.chain_v1()
    witnessed: dict[str, list[dict]] = {}
    for cp in witness or ():
        witnessed.setdefault(cp["node"], []).append(cp)
    names = [node] if node else sorted(set(await store.nodes()) | set(witnessed))
    for name in names:
        result = await _verify_node(store, name, trusted, legacy.get(name, 0), v1.get(name, 0), witnessed.get(name, []),
                                    tsa_certificate)
        report["ok"] = report["ok"] and result["ok"]
        report["nodes"].append(result)
    return report


def checkpoint_signature(node: str, cp: dict, trusted: frozenset[str]) -> str:
    """A checkpoint's signature: valid, unsigned, invalid, or signed by another key than `trusted`'s."""
    return _signed(cp, checkpoint_message(node, cp["count"], cp["last_id"], cp["head"], cp["at"], cp.get("clock")), trusted)


def _clock_note(cp: dict) -> str | None:
    """What the checkpoint's clock record warns of: a wall clock not synchronised, or stepped."""
    try:
        clock = json.loads(cp.get("clock") or "null")
    except json.JSONDecodeError:
        return "its clock record is not JSON"
    if not isinstance(clock, dict):
        return None
    notes = []
    if clock.get("stepped_s"):
        notes.append(f"the wall clock was set by {clock['stepped_s']:+.3f} s since the checkpoint before")
    if clock.get("synchronised") is False:
        notes.append(f"the clock was not synchronised (kernel's estimated error {clock.get('est_error_us')} µs)")
    return "; ".join(notes) or None


def _signed(record: dict, message: bytes, trusted: frozenset[str]) -> str:
    """A checkpoint's or purge record's signature: valid, unsigned, invalid or by another key."""
    if record["signature"] is None:
        return "unsigned"
    if not signature_valid(record["public_key"] or "", message, record["signature"]):
        return "invalid"
    if trusted and record["public_key"] not in trusted:
        return "signed by another key"
    return "valid"


def _against_chain(cp: dict, purged: int, count: int, broken, seen_at: dict) -> str | None:
    """What is wrong between a checkpoint and the chain as walked (None: it agrees)."""
    position = cp["count"]
    if position <= purged:
        return None  # it covers hits since purged under the retention policy: its signature still counts
    if broken is None and position > count:
        return "the chain ends before this checkpoint: hits were deleted from its end"
    if position in seen_at and seen_at[position] != (cp["head"], cp["last_id"]):
        return "the chain at this position differs from the checkpoint"
    return None


def _timestamp(node: str, cp: dict, tsa_certificate: bytes | None) -> dict:
    """A checkpoint's RFC 3161 token: valid (signed by the TSA over this checkpoint's message),
    invalid, none, or unchecked (a token, but no TSA certificate to check it with)."""
    token = cp.get("tsa_token")
    if not token:
        return {"status": "none", "time": None, "problem": None}
    if tsa_certificate is None:
        return {"status": "unchecked", "time": None, "problem": "no TSA certificate to check it with (tsa_certificate)"}
    try:
        der = tsa.decode(token)
    except ValueError:
        return {"status": "invalid", "time": None, "problem": "the token is not base64"}
    message = checkpoint_message(node, cp["count"], cp["last_id"], cp["head"], cp["at"], cp.get("clock"))
    ok, time, problem = tsa.check_token(der, message, tsa_certificate)
    return {"status": "valid" if ok else "invalid", "time": time, "problem": problem}


def _against_stored(witnessed: dict, stored_at: dict) -> str | None:
    """A witness line against the database's own copy of that checkpoint: a timestamp token or clock
    record that the database lost or changed (tokens stripped to hide when a checkpoint was made)."""
    stored = stored_at.get((witnessed["count"], witnessed["head"]))
    if stored is None:
        return None  # not in the database (cut, or purged): _against_chain says what matters
    for field, what in (("tsa_token", "timestamp token"), ("clock", "clock record"), ("at", "time"),
                        ("signature", "signature")):
        if witnessed.get(field) and stored.get(field) != witnessed.get(field):
            return f"the database's copy of this checkpoint has another {what}, or none: stripped or replaced"
    return None


def _purge_checkpoint(purge: dict, position: int, by_id: dict, made: list[dict]) -> str | None:
    """A purge (schema 17 on) names the first checkpoint whose chain passes through its cut: it must
    be there, of this node, at or after the cut, the first such, and at the cut's head if at the cut."""
    if purge.get("checkpoint_id") is None:
        return None  # a purge from before schema 17: checked against the checkpoints by position only
    cp = by_id.get(purge["checkpoint_id"])
    if cp is None:
        return "the checkpoint it names is not among this node's checkpoints"
    first = next((c for c in made if c["count"] >= position), None)
    if cp["count"] < position or cp is not first:
        return "the checkpoint it names is not the first one after its cut"
    if cp["count"] == position and cp["head"] != purge["head_at_cut"]:
        return "its cut differs from the checkpoint it names"
    return None


async def _verify_node(store: Store, node: str, trusted: frozenset[str], legacy_last_id: int, v1_last_id: int,
                       witnessed: list[dict], tsa_certificate: bytes | None = None) -> dict:
    made = await store.checkpoints(node)  # in the order they were made
    checkpoints = {cp["count"]: cp for cp in (*made, *witnessed)}  # the positions to note while walking
    seen_at: dict[int, tuple[str, int]] = {}  # chain position -> (hash, id), for the checkpoints
    purges = await store.purges(node)
    # After a purge the chain goes on from the cut: the recorded head, and the positions already purged.
    prev = purges[-1]["head_at_cut"] if purges else GENESIS
    count = purged = sum(p["chained"] for p in purges)
    before_chain, broken = 0, None
    async for rows in store.iter_chain(node):
        # Hashing a long chain takes seconds: in a worker thread, so the listeners keep answering.
        prev, count, before_chain, broken = await asyncio.to_thread(
            _walk, rows, prev, count, purged, before_chain, legacy_last_id, v1_last_id, checkpoints, seen_at)
        if broken:
            break
    # Checking a token is a CMS signature and a certificate chain: in a worker thread too.
    timestamps = await asyncio.to_thread(lambda: [_timestamp(node, cp, tsa_certificate) for cp in made])
    results, before = [], None
    for cp, timestamp in zip(made, timestamps):
        if before is not None and (cp["count"] <= before["count"] or cp["last_id"] <= before["last_id"]):
            problem = "goes back from the checkpoint before it: its count and last id must both grow"
        elif before is not None and cp["at"] < before["at"]:
            problem = "its time is before the checkpoint before it: the clock was set back"
        else:
            problem = _against_chain(cp, purged, count, broken, seen_at)
        results.append({"id": cp["id"], "at": cp["at"], "count": cp["count"], "head": cp["head"],
                        "problem": problem, "signature": checkpoint_signature(node, cp, trusted), "clock": _clock_note(cp),
                        "timestamp": timestamp})
        before = cp
    stored_at = {(cp["count"], cp["head"]): cp for cp in made}
    witness = [{"at": cp["at"], "count": cp["count"], "head": cp["head"],
                "problem": _against_chain(cp, purged, count, broken, seen_at) or _against_stored(cp, stored_at),
                "signature": checkpoint_signature(node, cp, trusted)}
               for cp in witnessed]
    cuts, position, last_id = [], 0, None  # purges: signed, one after another, and where checkpoints agree
    by_id = {cp["id"]: cp for cp in made}
    for p in purges:
        position += p["chained"]
        at_cut = checkpoints.get(position)
        if last_id is not None and p["first_id"] <= last_id:
            problem = "overlaps the purge before it"
        elif at_cut is not None and p["chained"] and at_cut["head"] != p["head_at_cut"]:
            problem = "its cut differs from the checkpoint at that position"
        else:
            problem = _purge_checkpoint(p, position, by_id, made)
        cuts.append({k: p.get(k) for k in ("at", "cutoff", "first_id", "last_id", "hits", "head_at_cut", "checkpoint_id")}
                    | {"problem": problem, "signature": _signed(p, purge_message(p), trusted)})
        last_id = p["last_id"]
    accepted = ("valid",) if trusted else ("valid", "unsigned")
    ok = broken is None and all(r["problem"] is None and r["signature"] in accepted for r in (*results, *witness, *cuts))
    ok = ok and all(r["timestamp"]["status"] != "invalid" for r in results)
    return {"node": node, "ok": ok, "hits": count - purged, "head": prev, "hits_before_chain": before_chain,
            "first_break": None if broken is None else {"id": broken.id, "reason": broken.reason},
            "checkpoints": results, "witness": witness, "purged": cuts}
