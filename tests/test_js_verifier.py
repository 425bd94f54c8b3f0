"""The chain format re-implemented in another language: app/verifier/verify.js (Node.js, written
from the format's description, none of seized's code) checks the published test vectors, and a live
log read through the API against the witness file's signed checkpoints; a forged hit fails it."""

import json
import subprocess
from pathlib import Path

from commands import seized
from helpers import request

ROOT = Path(__file__).resolve().parents[1]
VERIFIER = ROOT / "app" / "verifier" / "verify.js"


def verify_js(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(VERIFIER), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_javascript_verifier_reproduces_the_vectors():
    result = verify_js("vectors", ROOT / "tests" / "vectors" / "chain-v2.json")
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


def test_the_javascript_verifier_checks_a_live_log(tmp_path, fresh_server):
    key_file = tmp_path / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    server = fresh_server(signing_key_file=str(key_file), checkpoint_every_hits=7, trusted_proxies=["127.0.0.0/8"],
                          client_port_header="X-Real-Port").start()
    targets = ["/", "/player_api.php?username=bob&password=pw", "/stalker_portal/server/load.php?type=stb&action=handshake&sn=0123%C3%A9&stb_type=MAG250&device_id=AB12",
               "/get.php?username=x&password=y&type=m3u_plus", "/caf%C3%A9/\u00e9?q=%22%5C", "/live/a/b/1.ts"]
    for i in range(30):
        headers = [("X-Forwarded-For", f"2001:db8::{i:x}" if i % 2 else f"203.0.113.{i}"), ("X-Real-Port", str(40000 + i)),
                   ("User-Agent", "MAG250 stbapp ver: 4 rev: 2116 Mobile Safari/533.3" if i % 3 else "VLC/3.0.20 \"x\" \\")]
        if i % 6 == 2:  # the Stalker portal: a set-top box's MAC, a device
            headers += [("Cookie", "mac=00%3A1A%3A79%3A01%3AC3%3A0F; stb_lang=en"), ("X-User-Agent", "Model: MAG250; Link: WiFi")]
        request(server.public_port, "GET", targets[i % len(targets)].encode("utf-8").decode("latin-1"), headers=headers)
    server.wait_rows(count=30)
    assert server.stop() == 0  # a clean stop: a final checkpoint, in the witness file too
    server.start()
    token = server.new_token("investigator")
    hits, cursor = [], None
    while True:
        page = server.api("GET", "/api/v1/hits", token, params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        hits += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(hits) == 30 and any(hit["device"] for hit in hits) and any(":" in hit["client_ip"] for hit in hits)
    log = tmp_path / "hits.jsonl"
    log.write_text("".join(json.dumps(hit, ensure_ascii=False) + "\n" for hit in hits), "utf-8")
    witness = server.directory / "witness" / "checkpoints.jsonl"
    assert witness.read_text().splitlines()  # checkpoints, each signed, the clean stop's last
    result = verify_js("log", log, "--checkpoints", witness, "--public-key", public_key)
    assert result.returncode == 0 and "30 hits" in result.stdout and result.stdout.strip().endswith("OK"), result.stdout

    for field, value in (("client_port", 1), ("received_at", hits[3]["received_at"].replace(".", ".9", 1)[:27] + "Z"),
                         ("headers", [["host", "elsewhere"]])):
        forged = [dict(hit) for hit in hits]
        forged[3][field] = value
        log.write_text("".join(json.dumps(hit) + "\n" for hit in forged), "utf-8")
        result = verify_js("log", log, "--checkpoints", witness, "--public-key", public_key)
        assert result.returncode == 1 and "does not match its hash" in result.stdout, (field, result.stdout)
    for kept, said in ((hits[:-1], "prev_hash does not match"),  # (newest first) the oldest hit left out
                       (hits[1:], "the chain ends before the checkpoint")):  # the newest
        log.write_text("".join(json.dumps(hit) + "\n" for hit in kept), "utf-8")
        assert said in verify_js("log", log, "--checkpoints", witness).stdout
    other = seized("evidence", "keygen", "--out", str(tmp_path / "other.pem")).stdout.strip()
    log.write_text("".join(json.dumps(hit) + "\n" for hit in hits), "utf-8")
    assert "not pinned" in verify_js("log", log, "--checkpoints", witness, "--public-key", other).stdout
