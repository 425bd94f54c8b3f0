"""Writes chain-v2.json, the chain format's published test vectors (README: "The chain format"):
a few hits chosen to reach every rule (unicode, escapes, nulls, headers, a device, a fractional
duration, IPv4 and IPv6 addresses), their canonical bytes, leaves and hashes, and a checkpoint signed with a test key
whose seed is published here (never use it for anything else). Run from the repository root:

    .venv/bin/python tests/vectors/make.py

tests/unit/test_chain_format.py checks that seized still computes exactly these values, and
tests/test_js_verifier.py that an independent verifier in JavaScript does."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from app.chain_format import GENESIS, V2_FIELDS, canonical_v2, leaf_v2, link_v2  # noqa: E402
from app.evidence import checkpoint_message, public_key_hex, sign  # noqa: E402

SEED = bytes(range(32))  # the test key: public, for these vectors only


def record(**fields) -> dict:
    base = {name: None for name in V2_FIELDS if name != "duration_us"}
    base.update(duration_ms=0.0, headers=[], body_size=0, status=451)
    base.update(fields)
    return base


HITS = [
    record(uid="0000018f2b3c4d5e" + "a1b2c3d4" + "00000001", received_at="2026-11-23T06:00:25.123456Z", node="vector-node",
           host="iptv.example", domain="iptv.example", scheme="http", method="GET", path="/player_api.php",
           query="username=alice&password=[REDACTED]", http_version="1.1", client_ip="203.0.113.7", client_port=51234,
           peer_ip="203.0.113.7", peer_port=51234, server_ip="192.0.2.10", server_port=80,
           headers=[["host", "iptv.example"], ["user-agent", "IPTV Smarters Pro/3.1.5"]],
           user_agent="IPTV Smarters Pro/3.1.5", status=200, duration_ms=0.317, client_kind="xtream_api", account="alice",
           password_hmac="5f" * 32, country="IT", city="Roma", asn=64500, as_org="Example Telecom S.p.A."),
    record(uid="0000018f2b3c4d5f" + "a1b2c3d4" + "00000002", received_at="2026-11-23T06:00:26.000001Z", node="vector-node",
           host="xn--tv-9ia.example", domain=None, scheme="https", method="POST", path="/stalker_portal/server/load.php",
           query="", http_version="1.1", client_ip="2001:db8::1", client_port=443, peer_ip="2001:db8:ffff::2",
           peer_port=40000, server_ip="2001:db8:ffff::1", server_port=8080,
           headers=[["host", "xn--tv-9ia.example"], ["cookie", "mac=00:1A:79:01:C3:0F; stb_lang=it"],
                    ["x-note", "caf\u00e9 \u20ac \U0001f4fa \"quoted\" back\\slash\ttab\nnewline\x01\u2028"]],
           user_agent=None, body_size=17, body_sha256="ab" * 32, status=451, duration_ms=12.0,
           client_kind="stalker", device={"mac": "00:1a:79:01:c3:0f", "model": "MAG250", "serial": "SN\u00e9"}),
    record(uid="0000018f2b3c4d60" + "a1b2c3d4" + "00000003", received_at="2026-11-23T06:00:27.999999Z", node="vector-node",
           host="", scheme="http", method="", path="", query="", http_version="", client_ip="198.51.100.9",
           client_port=1, server_ip="192.0.2.10", server_port=80, headers=[], status=400, duration_ms=1234567.891,
           error="invalid HTTP request head"),
]


def main() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    prev, hits = GENESIS, []
    for position, hit in enumerate(HITS, start=1):
        leaf = leaf_v2(hit)
        digest = link_v2(prev, leaf)
        hits.append({"position": position, "record": hit, "canonical": canonical_v2(hit).decode("utf-8"), "leaf": leaf,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    at, clock = "2026-11-23T06:01:00.000000Z", json.dumps({"stepped_s": 0.0, "synchronised": True}, sort_keys=True)
    message = checkpoint_message("vector-node", len(HITS), 3, prev, at, clock)
    vectors = {
        "format": 2,
        "about": "seized chain format 2 test vectors: see README.md, 'The chain format'",
        "fields": list(V2_FIELDS),
        "genesis": GENESIS,
        "hits": hits,
        "checkpoint": {"node": "vector-node", "count": len(HITS), "last_id": 3, "head": prev, "at": at, "clock": clock,
                       "message": message.decode("utf-8"), "public_key": public_key_hex(key),
                       "signature": sign(key, message)},
        "test_key_seed": SEED.hex(),
    }
    path = Path(__file__).with_name("chain-v2.json")
    path.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
