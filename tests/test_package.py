"""ISP packages (app/package.py): the plan of which ISPs to ask, and one ZIP per data request, made
through the API and the command line from hits enriched with the GeoIP/ASN databases of test_geo."""

import csv
import hashlib
import io
import json
import re
import zipfile

from commands import seized
from helpers import request
from test_geo import ASN, CITY, write_asn, write_city


def test_plan_and_packages_for_isps(tmp_path, fresh_server):
    city, asn = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    write_city(city, CITY)
    write_asn(asn, ASN)
    server = fresh_server(domains=[{"name": "iptv-pirata.example", "language": "it", "case_ref": "PROC-77", "agency": "Guardia di Test"}],
                          trusted_proxies=["127.0.0.0/8"], geoip_city_db=str(city), geoip_asn_db=str(asn)).start()
    sent = []
    for i in range(6):
        ip = "203.0.113.5" if i % 2 else "2001:db8::5"
        response = request(server.public_port, "GET", f"/get.php?username=u{i}&password=secret{i}",
                           host="iptv-pirata.example", headers=[("X-Forwarded-For", ip), ("X-Real-Port", str(40000 + i)),
                                                                ("User-Agent", "TiviMate/5, \"quoted\"")])
        assert response.status == 200
        sent.append((ip, 40000 + i))
    server.wait_rows(count=6)
    token = server.new_token("investigator")
    plan = server.api("GET", "/api/v1/evidence/plan", token).json()
    assert plan == [{"asn": 64500, "as_org": "Example Telecom", "hits": 3, "distinct_ips": 1},
                    {"asn": 64501, "as_org": "Example Fibre", "hits": 3, "distinct_ips": 1}]
    via_api = server.api("GET", "/api/v1/evidence/package?asn=64500&domain=iptv-pirata.example", token)
    assert via_api.status_code == 200 and via_api.headers["content-type"] == "application/zip"
    auditor = server.new_token("auditor")
    assert server.api("GET", "/api/v1/evidence/package?asn=64500", auditor).status_code == 403
    assert server.stop() == 0  # its clean stop leaves the checkpoint the package names

    out = tmp_path / "isp-64500.zip"
    db = server.db_url
    cli = seized("evidence", "package", "--db", db, "--asn", "64500", "--domain", "iptv-pirata.example", "--out", str(out))
    assert "3 hits" in cli.stdout
    plan_text = seized("evidence", "plan", "--db", db).stdout
    assert "Example Telecom" in plan_text and "Example Fibre" in plan_text

    for blob in (out.read_bytes(), via_api.content):
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            assert sorted(archive.namelist()) == ["README.txt", "chain-1.txt", "hits.csv", "manifest.json", "records.jsonl",
                                                  "verify.js"]  # no signing key here: no manifest.sig
            hits_csv = archive.read("hits.csv")
            manifest = json.loads(archive.read("manifest.json"))
            readme = archive.read("README.txt").decode()
        rows = list(csv.DictReader(io.StringIO(hits_csv.decode(), newline="")))
        assert list(rows[0]) == ["client_ip", "client_port", "timestamp_utc", "server_ip", "destination_port", "protocol",
                                 "domain", "method", "path", "user_agent", "server_port", "scheme", "node", "position", "id",
                                 "uid", "prev_hash", "hash"]
        # behind the proxy (the TCP peer is not the client): the port the client named, else its scheme's
        assert {(r["destination_port"], r["protocol"]) for r in rows} == {("80", "TCP")}
        # the listener's own address (behind the proxy: the one the proxy connected to), as stored
        assert {r["server_ip"] for r in rows} == {"127.0.0.1"}
        stored = {r["id"]: r for r in server.sql("SELECT id, uid, prev_hash, hash, node, server_ip, server_port, scheme "
                                                  "FROM hits")}
        for row in rows:  # each row tied to its place in the chain, as stored
            assert {k: str(v) for k, v in stored[int(row["id"])].items()} == {k: row[k] for k in stored[int(row["id"])]}
        assert [(r["client_ip"], int(r["client_port"])) for r in rows] == [s for s in sent if s[0] == "203.0.113.5"]
        assert [r["timestamp_utc"] for r in rows] == sorted(r["timestamp_utc"] for r in rows)
        assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", r["timestamp_utc"]) for r in rows)
        assert rows[0]["user_agent"] == 'TiviMate/5, "quoted"' and "secret" not in hits_csv.decode()
        assert manifest["rows"] == 3 and manifest["filters"] == {"asn": 64500, "domain": "iptv-pirata.example"}
        assert manifest["files"]["hits.csv"] == hashlib.sha256(hits_csv).hexdigest()
        assert manifest["files"]["README.txt"] == hashlib.sha256(readme.encode()).hexdigest()
        assert manifest["chains"][0]["node"] == "test-node" and "created_at" not in manifest
        assert "nothing more is claimed" in manifest["clock"] and manifest["tool"].startswith("seized ")
        assert "NTP" not in readme
        assert "PROC-77" in readme and "porta di origine" in readme  # the case's language
        assert "server_ip      l'indirizzo IP del server" in readme  # every column explained
    checkpoint = json.loads(zipfile.ZipFile(out).read("manifest.json"))["chains"][0]["covering_checkpoint"]
    assert checkpoint is not None and checkpoint["last_id"] >= 6  # the clean stop's checkpoint covers every row
    assert "synchronised" in json.loads(checkpoint["clock"])  # what was measured of the clock, with the rows

    again = tmp_path / "again.zip"  # the same rows, made again: the same bytes
    seized("evidence", "package", "--db", db, "--asn", "64500", "--domain", "iptv-pirata.example", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()
    assert {info.date_time for info in zipfile.ZipFile(out).infolist()} == {(1980, 1, 1, 0, 0, 0)}
