"""Evidence packages checked offline (app/package.py, app/package_check.py, app/verifier/verify.js):
a package made from a live log, signed, checked with no database by `seized evidence check` and by
the JavaScript verifier it carries; then edited, cut, re-signed and forged, each of which must fail."""

import csv
import hashlib
import io
import json
import subprocess
import zipfile

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from commands import fails, seized
from helpers import request

TARGET = "203.0.113.5"


def node_check(directory, *keys) -> subprocess.CompletedProcess:
    """The standalone verifier, as the package's README tells an ISP to run it."""
    args = ["node", str(directory / "verify.js"), "package", str(directory)]
    for key in keys:
        args += ["--public-key", key]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def unzip(package, directory):
    with zipfile.ZipFile(package) as archive:
        archive.extractall(directory)
    return directory


def rewrite(source, target, changes: dict, sign_with=None) -> None:
    """A copy of the package with members replaced (name -> bytes, or None to drop one); with
    `sign_with` (a private key), manifest.json's file hashes are recomputed and it is re-signed."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, data in changes.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    if sign_with is not None:
        manifest = json.loads(members["manifest.json"])
        manifest["files"] = {name: hashlib.sha256(members[name]).hexdigest() for name in manifest["files"] if name in members}
        manifest["rows"] = len(members["records.jsonl"].splitlines())
        members["manifest.json"] = json.dumps(manifest, indent=2).encode()
        members["manifest.sig"] = sign_with.sign(members["manifest.json"]).hex().encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


@pytest.fixture
def logged(tmp_path, fresh_server):
    """A stopped server whose log holds 14 hits, 5 of them from TARGET between others (so a package
    of TARGET's rows needs the leaves of the hits between them), with signed checkpoints."""
    key_file = tmp_path / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    server = fresh_server(signing_key_file=str(key_file), checkpoint_every_hits=4, trusted_proxies=["127.0.0.0/8"],
                          client_port_header="X-Real-Port").start()
    for i in range(14):
        ip = TARGET if i % 3 == 1 else f"198.51.100.{i}"
        assert request(server.public_port, "GET", f"/live/u{i}/secret{i}/{i}.ts",
                       headers=[("X-Forwarded-For", ip), ("X-Real-Port", str(50000 + i)),
                                ("User-Agent", "VLC/3.0.20, \"q\" caf\u00e9")]).status == 200
    server.wait_rows(count=14)
    return server, public_key, key_file


def test_a_package_checks_offline_and_every_forgery_fails(tmp_path, logged):
    server, public_key, key_file = logged
    token = server.new_token("investigator")
    while_running = server.api("GET", f"/api/v1/evidence/package?ip={TARGET}", token)
    assert while_running.status_code == 200, while_running.text
    assert server.stop() == 0
    live = tmp_path / "live.zip"
    live.write_bytes(while_running.content)
    # Made while hits were newer than the last checkpoint or not: either way every row is covered.
    assert "OK" in seized("evidence", "check", str(live), "--public-key", public_key).stdout

    package = tmp_path / "package.zip"
    seized("evidence", "package", "--config", str(server.config_path), "--ip", TARGET, "--out", str(package))
    again = tmp_path / "again.zip"
    seized("evidence", "package", "--config", str(server.config_path), "--ip", TARGET, "--out", str(again))
    assert package.read_bytes() == again.read_bytes()  # reproducible, signature included (Ed25519 is deterministic)

    with zipfile.ZipFile(package) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        hits_csv, records = archive.read("hits.csv"), archive.read("records.jsonl")
    assert names == ["README.txt", "chain-1.txt", "hits.csv", "manifest.json", "manifest.sig", "records.jsonl", "verify.js"]
    rows = csv_rows(hits_csv)
    assert rows[0][:7] == ["client_ip", "client_port", "timestamp_utc", "server_ip", "destination_port", "protocol", "domain"]
    assert rows[0][-6:] == ["node", "position", "id", "uid", "prev_hash", "hash"]
    assert [r[0] for r in rows[1:]] == [TARGET] * 5 and {r[5] for r in rows[1:]} == {"TCP"}
    assert {r[3] for r in rows[1:]} == {"127.0.0.1"}  # the listener's address, as the proxy reached it
    assert {json.loads(line)["server_ip"] for line in records.decode().splitlines()} == {"127.0.0.1"}
    assert "secret" not in hits_csv.decode() and "secret" not in records.decode()
    chain = manifest["chains"][0]
    assert manifest["rows"] == 5 and manifest["signer"] == public_key and chain["rows"] == 5
    assert chain["covering_checkpoint"]["count"] == chain["last_position"] >= 14  # the clean stop's checkpoint
    assert chain["last_position"] - chain["first_position"] + 1 > 5  # leaves of the hits between the rows
    positions = [int(r[rows[0].index("position")]) for r in rows[1:]]
    assert positions == [2, 5, 8, 11, 14]  # chain positions, counted from the node's first hit

    # Valid: both checkers, with nothing but the ZIP and the key.
    assert seized("evidence", "check", str(package), "--public-key", public_key).returncode == 0
    checked = node_check(unzip(package, tmp_path / "unzipped"), public_key)
    assert checked.returncode == 0 and checked.stdout.strip().endswith("OK"), checked.stdout

    # Wrong key: fails.
    other = tmp_path / "other.pem"
    other_key = seized("evidence", "keygen", "--out", str(other)).stdout.strip()
    assert "not signed by a pinned key" in fails("evidence", "check", str(package), "--public-key", other_key)
    assert node_check(tmp_path / "unzipped", other_key).returncode == 1

    signing_key = load_pem_private_key(key_file.read_bytes(), password=None)
    attacker_key = load_pem_private_key(other.read_bytes(), password=None)

    # timestamp_utc is received_at to the microsecond (package format 2); a format 1 package (made
    # before, to the millisecond) still checks, and its millisecond rows pass only under format 1.
    stamp = rows[0].index("timestamp_utc")
    assert [r[stamp] for r in rows[1:]] == [json.loads(line)["received_at"] for line in records.decode().splitlines()]
    millis = [r[:stamp] + [r[stamp][:23] + "Z"] + r[stamp + 1:] for r in rows[1:]]
    for package_format, outcome in ((1, 0), (2, 1)):
        old = tmp_path / f"format-{package_format}.zip"
        rewrite(package, old, {"hits.csv": csv_bytes(rows[:1] + millis), "manifest.json": json.dumps(
            {**manifest, "package_format": package_format}, indent=2).encode()}, sign_with=signing_key)
        checked = seized("evidence", "check", str(old), "--public-key", public_key, check=False)
        assert checked.returncode == outcome, checked.stdout
        assert node_check(unzip(old, tmp_path / f"format-{package_format}"), public_key).returncode == outcome
    assert "timestamp_utc differ" in checked.stdout
    edited_rows = [r[:] for r in rows]
    edited_rows[2][1] = "40000"  # another source port: another subscriber
    edited_records = records.decode().splitlines()
    edited_records[1] = json.dumps({**json.loads(edited_records[1]), "client_port": 40000})
    edited = {"hits.csv": csv_bytes(edited_rows), "records.jsonl": ("\n".join(edited_records) + "\n").encode()}
    other_server = [r[:] for r in rows]
    other_server[1][3] = "203.0.113.99"  # another destination address, in hits.csv only
    dropped = {"hits.csv": csv_bytes(rows[:2] + rows[3:]),
               "records.jsonl": ("\n".join(records.decode().splitlines()[:1] + records.decode().splitlines()[2:]) + "\n").encode()}
    forged_manifest = json.loads(json.dumps(manifest))
    forged_manifest["filters"] = {"client_ip": "192.0.2.1"}
    cases = {
        "edited row": (edited, None, "SHA-256 differs"),
        "edited row, manifest rehashed": (edited, attacker_key, "not signed by a pinned key"),
        # Even a manifest re-signed with the real key cannot make an edited row fit the chain.
        "edited row, re-signed by the signer": (edited, signing_key, "does not hash to the chain's leaf"),
        # hits.csv must say what the hashed records say, column by column
        "edited server_ip in hits.csv, re-signed by the signer": ({"hits.csv": csv_bytes(other_server)}, signing_key,
                                                                  "server_ip differ"),
        "dropped row": (dropped, None, "SHA-256 differs"),
        "dropped row, manifest rehashed": (dropped, attacker_key, "not signed by a pinned key"),
        "edited manifest": ({"manifest.json": json.dumps(forged_manifest, indent=2).encode()}, None, "not signed by a pinned key"),
        "unsigned": ({"manifest.sig": None}, None, "not signed"),
        "an extra file": ({"extra.csv": b"1,2\r\n"}, None, "not in the manifest"),
    }
    for name, (changes, key, said) in cases.items():
        forged = tmp_path / f"{name}.zip"
        rewrite(package, forged, changes, sign_with=key)
        assert said in fails("evidence", "check", str(forged), "--public-key", public_key), name
        result = node_check(unzip(forged, tmp_path / name), public_key)
        assert result.returncode == 1 and "FAIL" in result.stdout, (name, result.stdout)


def test_the_package_refuses_a_broken_chain(tmp_path, logged, request):
    server, public_key, _ = logged
    assert server.stop() == 0
    if server.backend == "postgres":
        pytest.skip("editing a hit in place needs the SQLite file (PostgreSQL's partitions refuse UPDATE)")
    import sqlite3

    db = sqlite3.connect(server.db_path)
    for trigger in [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'hit_rows'")]:
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("UPDATE hit_rows SET client_port = 1 WHERE id = 3")  # a hit between the package's rows
    db.commit()
    db.close()
    said = fails("evidence", "package", "--config", str(server.config_path), "--ip", TARGET, "--out", str(tmp_path / "p.zip"))
    assert "hit 3 does not match its hash" in said and not (tmp_path / "p.zip").exists()
