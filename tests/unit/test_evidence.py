"""app/evidence.py: canonical JSON of signed messages, the hash chain's links, and checkpoint signatures."""

import hashlib
import json

import pytest
from hypothesis import given, settings, strategies as st

from app.chain_format import link_v1
from app.evidence import (GENESIS, canonical, chain_rows, check_link, checkpoint_message, new_signing_key,
                          public_key_hex, sign, signature_valid, load_signing_key)
from app.record import COLUMNS

PROPERTY = settings(deadline=None, database=None)


def readme_canonical(record: dict) -> bytes:
    """The README's own ten lines, written out independently of app/evidence.py."""
    record = {k: v for k, v in record.items() if k not in ("id", "prev_hash", "hash") and v is not None}
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("record, text", [
    ({}, "{}"), ({"a": None}, "{}"), ({"b": 1, "a": "x"}, '{"a":"x","b":1}'), ({"a": "\u00e9\u20ac"}, '{"a":"\u00e9\u20ac"}'),
    ({"a": "\x00\x1f\"\\\n\r\t\x7f"}, '{"a":"\\u0000\\u001f\\"\\\\\\n\\r\\t\x7f"}'), ({"a": 12.0}, '{"a":12.0}'),
    ({"a": 0.1 + 0.2}, '{"a":0.30000000000000004}'), ({"a": 10**30}, '{"a":1000000000000000000000000000000}'),
    ({"a": True, "b": False, "c": ""}, '{"a":true,"b":false,"c":""}'), ({"a": -0.0}, '{"a":-0.0}'), ({"a": 1e-7}, '{"a":1e-07}'),
    ({"\u00e9": 1, "z": 2, "Z": 3}, '{"Z":3,"z":2,"\u00e9":1}'), ({"a": "\U0001f4fa\u2028"}, '{"a":"\U0001f4fa\u2028"}'),
])
def test_canonical(record, text):
    assert canonical(record) == text.encode("utf-8") == readme_canonical(record)


def test_link_v1():
    """Format 1, kept for hits stored before schema 16."""
    record = {"a": 1}
    assert link_v1(GENESIS, record) == hashlib.sha256(b"0" * 64 + b'{"a":1}').hexdigest()
    assert link_v1(GENESIS, {"a": 1, "b": None}) == link_v1(GENESIS, record)  # a null column added later changes nothing


def rows(n, nodes=("node-1",)):
    out = []
    for i in range(n):
        row = dict.fromkeys(COLUMNS)
        row.update(uid=f"u{i}", received_at=f"2026-11-23T06:00:{i:02d}.000000Z", node=nodes[i % len(nodes)], method="GET",
                   path="/", client_ip="1.2.3.4", client_port=1000 + i, status=451, duration_ms=0.5 * i, headers="[]")
        out.append(tuple(row[c] for c in COLUMNS))
    return out


def spec_hash(prev: str, row: dict) -> str:
    """Format 2 as the README states it, written out independently of app/chain_format.py."""
    values = [2] + [round(row["duration_ms"] * 1000) if n == "duration_us" else
                    json.loads(row[n]) if n in ("headers", "device") and row[n] is not None else row[n] for n in SPEC_FIELDS]
    leaf = hashlib.sha256(json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256((prev + leaf).encode()).hexdigest()


SPEC_FIELDS = ("uid received_at node host domain scheme method path query http_version client_ip client_port peer_ip "
               "peer_port server_ip server_port headers user_agent body_size body_sha256 status duration_us error "
               "client_kind account device password_hmac country city asn as_org").split()


def stored(linked):
    """Rows as the database gives them back to verify: dicts with id, prev_hash and hash."""
    return [{**dict(zip(COLUMNS, row)), "id": i + 1, "prev_hash": row[-2], "hash": row[-1]} for i, row in enumerate(linked)]


def test_chain_rows_links_each_node_separately():
    heads = {"node-1": GENESIS, "node-2": "f" * 64}
    linked, new_heads = chain_rows(rows(6, ("node-1", "node-2")), heads)
    assert heads == {"node-1": GENESIS, "node-2": "f" * 64}  # not changed
    for node, first_prev in heads.items():
        prev = first_prev
        for row in stored(linked):
            if row["node"] == node:
                assert check_link(prev, row) is None
                assert row["hash"] == spec_hash(prev, row)
                prev = row["hash"]
        assert new_heads[node] == prev


def test_chain_rows_continues_from_the_heads_given():
    all_at_once, head = chain_rows(rows(10), {"node-1": GENESIS})
    first, middle = chain_rows(rows(10)[:4], {"node-1": GENESIS})
    rest, end = chain_rows(rows(10)[4:], middle)
    assert first + rest == all_at_once and end == head
    with pytest.raises(KeyError):
        chain_rows(rows(1), {})  # a node without a head is a caller's error, not a new chain


def test_check_link_names_what_broke():
    chain = stored(chain_rows(rows(3), {"node-1": GENESIS})[0])
    assert [check_link(p, r) for p, r in zip([GENESIS] + [r["hash"] for r in chain], chain)] == [None] * 3
    edited = {**chain[1], "client_port": 1}
    assert "a field was edited" in check_link(chain[0]["hash"], edited).reason and check_link(chain[0]["hash"], edited).id == 2
    assert "a hit was deleted, inserted or moved" in check_link(GENESIS, chain[1]).reason  # chain[0] deleted
    assert "a field was edited" in check_link(chain[0]["hash"], {**chain[1], "prev_hash": None}).reason
    # a column set from null to a value changes the hash too
    assert check_link(chain[0]["hash"], {**chain[1], "country": "IT"}) is not None


def test_checkpoint_signatures(tmp_path):
    public = new_signing_key(tmp_path / "keys" / "signing.pem")
    assert (tmp_path / "keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    key = load_signing_key(tmp_path / "keys" / "signing.pem")
    assert public_key_hex(key) == public and len(public) == 64
    message = checkpoint_message("node-1", 10, 42, "a" * 64, "2026-11-23T06:00:25.000000Z")
    assert message == b'{"at":"2026-11-23T06:00:25.000000Z","count":10,"head":"' + b"a" * 64 + b'","last_id":42,"node":"node-1"}'
    signature = sign(key, message)
    assert signature_valid(public, message, signature)
    assert not signature_valid(public, message.replace(b"10", b"11"), signature)
    assert not signature_valid(public, message, "00" * 64) and not signature_valid(public, message, "zz")
    assert not signature_valid("00", message, signature)
    with pytest.raises(FileExistsError):
        new_signing_key(tmp_path / "keys" / "signing.pem")
