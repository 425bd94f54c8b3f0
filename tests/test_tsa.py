"""Trusted time: each checkpoint carries an RFC 3161 timestamp token from the configured TSA, and
`seized verify` checks it against the TSA's certificate. The TSA is built here: a throwaway CA and
TSA certificate made with `openssl`, `openssl ts -reply` answering queries over HTTP on loopback."""

import base64
import http.server
import json
import subprocess
import threading
from datetime import datetime

import pytest

from commands import seized
from helpers import free_port, tamper, wait_for
from app.witness import read

TSA_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

TSA_CONFIG = """\
[ tsa ]
default_tsa = test_tsa
[ test_tsa ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.crt", "-subj", f"/CN={name}", "-days", "2",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return directory / f"{name}.crt"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        query = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:  # one `openssl ts -reply` at a time: it increments the serial file
            request, reply = self.server.dir / "query.tsq", self.server.dir / "reply.tsr"
            request.write_bytes(query)
            done = subprocess.run(["openssl", "ts", "-reply", "-queryfile", str(request), "-config",
                                   str(self.server.dir / "tsa.cnf"), "-out", str(reply)], capture_output=True)
            answer = reply.read_bytes() if done.returncode == 0 else b""
        self.send_response(200 if answer else 500)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.server.answered += 1

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    """A TSA on 127.0.0.1: its CA's certificate (`ca`), another CA's (`stranger`) and its `url`."""
    directory = tmp_path_factory.mktemp("tsa")
    ca = make_ca(directory, "test-ca")
    stranger = make_ca(directory, "other-ca")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key",
            "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=directory)
    (directory / "tsa.ext").write_text(TSA_EXTENSIONS)
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", ca.name, "-CAkey", "test-ca.key", "-CAcreateserial",
            "-out", "tsa.crt", "-days", "2", "-extfile", "tsa.ext", cwd=directory)
    (directory / "tsa.cnf").write_text(TSA_CONFIG.format(dir=directory))
    (directory / "serial").write_text("01\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.dir, server.lock, server.answered = directory, threading.Lock(), 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.ca, server.stranger = ca, stranger
    yield server
    server.shutdown()
    server.server_close()


def verify(url, *options) -> dict:
    result = seized("verify", "--db", url, *options, check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_checkpoints_carry_tokens_that_verify(fresh_server, tsa, tmp_path):
    server = fresh_server(domains=[], checkpoint_every_hits=3, tsa_url=tsa.url, tsa_certificate=str(tsa.ca)).start()
    for i in range(7):
        server.request(target=f"/timed/{i}")
        if i in (2, 5):  # each three their own batch: a checkpoint falls due after each
            server.wait_rows(count=i + 1)
    server.wait_rows(count=7)
    wait_for(lambda: server.sql("SELECT COUNT(*) AS n FROM checkpoints")[0]["n"] >= 2, message="no checkpoints")
    through_api = server.api("GET", "/api/v1/evidence/verify", server.new_token("auditor")).json()
    assert through_api["ok"]  # the API checks the tokens too, with the configured certificate
    assert {c["timestamp"]["status"] for c in through_api["nodes"][0]["checkpoints"]} == {"valid"}
    assert all("clock" in c for c in through_api["nodes"][0]["checkpoints"])
    assert server.stop() == 0
    url = server.db_url
    stored = server.sql("SELECT * FROM checkpoints ORDER BY id")
    assert len(stored) >= 2 and all(cp["tsa_token"] for cp in stored)
    assert tsa.answered >= len(stored)
    # Published with the rest of the checkpoint, as stored.
    witnessed = read(server.directory / "witness" / "checkpoints.jsonl")
    assert [w["tsa_token"] for w in witnessed] == [cp["tsa_token"] for cp in stored]

    report = verify(url, "--config", str(server.config_path))  # tsa_certificate from the config
    assert report["exit"] == 0 and report["ok"]
    results = report["nodes"][0]["checkpoints"]
    assert [r["timestamp"]["status"] for r in results] == ["valid"] * len(stored)
    for result in results:  # the TSA's time agrees with the checkpoint's own
        assert abs((moment(result["timestamp"]["time"]) - moment(result["at"])).total_seconds()) < 5
        assert result["timestamp"]["problem"] is None
        assert {"id", "at", "count", "head", "problem", "signature", "clock"} <= result.keys()

    # No certificate to check them with: unchecked, not a failure.
    unchecked = verify(url)
    assert unchecked["ok"] and {r["timestamp"]["status"] for r in unchecked["nodes"][0]["checkpoints"]} == {"unchecked"}
    # Another CA did not issue the TSA's certificate: every token fails.
    foreign = verify(url, "--tsa-certificate", str(tsa.stranger))
    assert foreign["exit"] == 1 and not foreign["ok"]
    assert {r["timestamp"]["status"] for r in foreign["nodes"][0]["checkpoints"]} == {"invalid"}

    # One token with a byte of its signature flipped; another checkpoint given a third's token.
    first = bytearray(base64.b64decode(stored[0]["tsa_token"]))
    first[-1] ^= 0x01
    tamper(url, ("UPDATE checkpoints SET tsa_token = ? WHERE id = ?", (base64.b64encode(first).decode(), stored[0]["id"])),
           ("UPDATE checkpoints SET tsa_token = ? WHERE id = ?", (stored[-1]["tsa_token"], stored[1]["id"])))
    broken = verify(url, "--tsa-certificate", str(tsa.ca))
    assert broken["exit"] == 1 and not broken["ok"]
    statuses = [r["timestamp"] for r in broken["nodes"][0]["checkpoints"]]
    assert [s["status"] for s in statuses] == ["invalid", "invalid"] + ["valid"] * (len(stored) - 2)
    assert statuses[0]["problem"] and "another message" in statuses[1]["problem"]
    assert all(r["problem"] is None for r in broken["nodes"][0]["checkpoints"])  # the chain itself is intact

    # Every token stripped from the database: "none" is no failure on its own (the TSA may have been
    # down), but the witness copy still holds them, and says so.
    tamper(url, ("UPDATE checkpoints SET tsa_token = NULL", ()))
    stripped = verify(url, "--tsa-certificate", str(tsa.ca))
    assert stripped["ok"] and {r["timestamp"]["status"] for r in stripped["nodes"][0]["checkpoints"]} == {"none"}
    caught = verify(url, "--tsa-certificate", str(tsa.ca), "--witness", str(server.directory / "witness" / "checkpoints.jsonl"))
    assert caught["exit"] == 1 and not caught["ok"]
    assert {w["problem"] for w in caught["nodes"][0]["witness"]} == {
        "the database's copy of this checkpoint has another timestamp token, or none: stripped or replaced"}


def test_a_tsa_that_is_down_costs_only_the_tokens(fresh_server):
    down = f"http://127.0.0.1:{free_port()}/tsa"  # nothing listens there
    server = fresh_server(domains=[], checkpoint_every_hits=3, tsa_url=down).start()
    for i in range(5):
        server.request(target=f"/untimed/{i}")
        if i == 2:
            server.wait_rows(count=3)
    assert len(server.wait_rows(count=5)) == 5  # the hits are all logged
    assert server.stop() == 0
    stored = server.sql("SELECT * FROM checkpoints ORDER BY id")
    assert len(stored) >= 2 and all(cp["tsa_token"] is None for cp in stored)
    assert "without a timestamp token" in server.log_path.read_text()
    report = verify(server.db_url)
    assert report["ok"] and {r["timestamp"]["status"] for r in report["nodes"][0]["checkpoints"]} == {"none"}


def test_witness_lines_from_before_tokens_are_read(tmp_path):
    old = {"node": "n", "count": 3, "last_id": 3, "head": "a" * 64, "at": "2026-01-01T00:00:00.000000Z",
           "public_key": None, "signature": None}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    assert read(path) == [old | {"clock": None, "tsa_token": None}]


def test_a_package_manifest_carries_a_token_checked_offline(fresh_server, tsa, tmp_path):
    """With tsa_url, an evidence package's manifest is timestamped too (manifest.tsr), and
    `seized evidence check --tsa-certificate` checks the token against the manifest's bytes."""
    import zipfile

    key_file = tmp_path / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    server = fresh_server(domains=[], signing_key_file=str(key_file), tsa_url=tsa.url).start()
    server.request(target="/timed-package")
    server.wait_rows(count=1)
    assert server.stop() == 0
    package = tmp_path / "package.zip"
    seized("evidence", "package", "--config", str(server.config_path), "--out", str(package))
    with zipfile.ZipFile(package) as archive:
        assert {"manifest.sig", "manifest.tsr"} <= set(archive.namelist())
        members = {name: archive.read(name) for name in archive.namelist()}
    checked = seized("evidence", "check", str(package), "--public-key", public_key, "--tsa-certificate", str(tsa.ca))
    assert "manifest.json timestamped by the TSA at 20" in checked.stdout and checked.stdout.strip().endswith("OK")
    assert "not checked: no TSA certificate" in seized("evidence", "check", str(package), "--public-key", public_key).stdout
    foreign = seized("evidence", "check", str(package), "--public-key", public_key, "--tsa-certificate", str(tsa.stranger),
                     check=False)
    assert foreign.returncode == 1 and "FAIL manifest.tsr" in foreign.stdout
    swapped = tmp_path / "swapped.zip"  # another package's token: for other bytes
    with zipfile.ZipFile(swapped, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data if name != "manifest.tsr" else base64.b64decode(
                server.sql("SELECT tsa_token FROM checkpoints LIMIT 1")[0]["tsa_token"]))
    result = seized("evidence", "check", str(swapped), "--public-key", public_key, "--tsa-certificate", str(tsa.ca), check=False)
    assert result.returncode == 1 and "FAIL manifest.tsr" in result.stdout
