"""The hash chain's format: what exactly is hashed for each hit, by version (README: "The chain
format"; test vectors in tests/vectors/chain-v2.json, and an independent verifier in JavaScript,
tools/verify-chain.js).

Version 2 (every hit stored since schema 16):

    leaf = SHA-256(canonical record)              -- 64 lower-case hex digits
    hash = SHA-256(prev_hash || leaf)             -- both as ASCII hex, 128 bytes in

The canonical record is the UTF-8 JSON array `[2, v1, v2, ...]`: the format number, then the value
of each field of V2_FIELDS in that order, with no whitespace. Strings are JSON strings with only
`"`, `\\` and the control characters below U+0020 escaped (as JSON.stringify and Python's
json.dumps(ensure_ascii=False) write them); numbers are integers (the duration in whole
microseconds); an absent value is null; `headers` is an array of [name, value] arrays; `device` an
object with its keys in code point order. The record's id is not hashed (an id is a database's),
nor client_ip_key (derived from client_ip). Because a leaf is a hash, a package can prove its rows
are in a signed chain with the leaves of the hits between them, never their contents.

Version 1 (hits stored before schema 16, up to the id the migration recorded per node in
`chain_v1`): hash = SHA-256(prev_hash || canonical JSON object of every stored column but id,
prev_hash and hash, nulls left out, keys sorted, numbers as stored)."""

from __future__ import annotations

import hashlib
import json

from .hit_fields import FIELDS, ROW_COLUMNS

GENESIS = "0" * 64
VERSION = 2
V2_FIELDS = (
    "uid", "received_at", "node", "host", "domain", "scheme", "method", "path", "query", "http_version",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_ip", "server_port", "headers", "user_agent",
    "body_size", "body_sha256", "status", "duration_us", "error", "client_kind", "account", "device", "password_hmac",
    "country", "city", "asn", "as_org",
)
# The list is fixed: a field added to the record must come with a new format version.
_HASHED = {f.name for f in FIELDS if f.stored and f.public} - {"duration_ms"} | {"duration_us"}
if set(V2_FIELDS) != _HASHED:
    raise RuntimeError(f"chain format 2 and hit_fields differ: {sorted(set(V2_FIELDS) ^ _HASHED)} (a new field needs a new format)")

_string = json.encoder.encode_basestring  # ensure_ascii=False: the escapes JSON.stringify makes


def _json(value) -> str:
    """A value as the canonical form writes it: integers, strings, null, arrays, objects (sorted)."""
    if value is None:
        return "null"
    if value.__class__ is str:
        return _string(value)
    if value.__class__ is int:
        return int.__repr__(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(_string(k) + ":" + _json(value[k]) for k in sorted(value)) + "}"
    raise ValueError(f"the chain format holds integers, strings, arrays and objects, not {value!r}")


def whole_us(duration_ms) -> int:
    """A duration in milliseconds (as records give it, rounded to the microsecond) as microseconds."""
    return round(duration_ms * 1000)


def _stored_json(value):
    """headers and device come as JSON text from the store; as values from an export."""
    return json.loads(value) if isinstance(value, str) else value


def canonical_v2(record: dict) -> bytes:
    """The canonical bytes of a record as readers get it (API, NDJSON export, the store's view)."""
    values = []
    for name in V2_FIELDS:
        if name == "duration_us":
            value = whole_us(record["duration_ms"])
        elif name in ("headers", "device"):
            value = _stored_json(record[name])
        else:
            value = record[name]
        values.append(_json(value))
    return ("[2," + ",".join(values) + "]").encode("utf-8")


def link_v2(prev_hash: str, leaf: str) -> str:
    return hashlib.sha256((prev_hash + leaf).encode("ascii")).hexdigest()


def leaf_v2(record: dict) -> str:
    return hashlib.sha256(canonical_v2(record)).hexdigest()


# canonical_v2 of an ingest row (ROW_COLUMNS order), without a dict: headers and device are already
# canonical JSON text there (record.py writes them compact, device keys sorted), so they go in as
# they are; long strings repeat from hit to hit, so their encoding is remembered.
# tests/unit/test_chain_format.py checks both give the same bytes.
_POSITIONS = tuple(ROW_COLUMNS.index("duration_ms" if n == "duration_us" else n) for n in V2_FIELDS)
_RAW = frozenset(ROW_COLUMNS.index(n) for n in ("headers", "device"))
_DURATION = ROW_COLUMNS.index("duration_ms")
_encoded: dict[str, str] = {}


def _row_value(i: int, value) -> str:
    if value is None:
        return "null"
    if value.__class__ is str:
        if i in _RAW:
            return value
        if len(value) < 48:
            return _string(value)
        encoded = _encoded.get(value)
        if encoded is None:
            if len(_encoded) >= 65_536:
                _encoded.clear()
            encoded = _encoded[value] = _string(value)
        return encoded
    if i == _DURATION:
        return int.__repr__(whole_us(value))
    if value.__class__ is int:
        return int.__repr__(value)
    return _json(value)


def canonical_row(row: tuple) -> bytes:
    return ("[2," + ",".join([_row_value(i, row[i]) for i in _POSITIONS]) + "]").encode("utf-8")


# -- version 1, for hits stored before schema 16 --------------------------------------------------

def canonical_v1(record: dict) -> bytes:
    present = {key: value for key, value in record.items() if value is not None}
    return json.dumps(present, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def link_v1(prev_hash: str, record: dict) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_v1(record)).hexdigest()
