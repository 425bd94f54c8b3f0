"""GeoIP/ASN enrichment from small .mmdb files built here (mmdb-writer), IPv4 and IPv6."""

import os
import signal
import time

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from commands import seized
from helpers import Server, request


def write_city(path, entries, database_type="GeoLite2-City"):
    writer = MMDBWriter(ip_version=6, database_type=database_type, ipv4_compatible=True)
    for network, (country, city) in entries.items():
        record = {"country": {"iso_code": country, "names": {"en": country}}}
        if city:
            record["city"] = {"names": {"en": city}}
        writer.insert_network(IPSet([network]), record)
    temporary = path.with_suffix(".tmp")
    writer.to_db_file(str(temporary))
    os.replace(temporary, path)  # as an admin's update script would: the new file appears whole


def write_asn(path, entries):
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for network, (number, org) in entries.items():
        writer.insert_network(IPSet([network]), {"autonomous_system_number": number, "autonomous_system_organization": org})
    writer.to_db_file(str(path))


CITY = {"203.0.113.0/24": ("IT", "Rome"), "2001:db8::/32": ("DE", "Berlin")}
ASN = {"203.0.113.0/24": (64500, "Example Telecom"), "2001:db8::/32": (64501, "Example Fibre")}


def hit_from(server, ip, path):
    response = request(server.public_port, "GET", path, headers=[("X-Forwarded-For", ip)])
    return server.row_for_port(response.local_port, by="peer_port")


@pytest.fixture
def geo_server(tmp_path):
    city, asn = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    write_city(city, CITY)
    write_asn(asn, ASN)
    server = Server(tmp_path / "srv", settings={"trusted_proxies": ["127.0.0.0/8"], "geoip_city_db": str(city),
                                                "geoip_asn_db": str(asn)}).start()
    server.city_db = city
    yield server
    server.stop()


def test_hits_are_enriched_v4_and_v6(geo_server):
    v4 = hit_from(geo_server, "203.0.113.7", "/a")
    v6 = hit_from(geo_server, "2001:db8::9", "/b")
    unknown = hit_from(geo_server, "198.51.100.1", "/c")
    assert (v4["country"], v4["city"], v4["asn"], v4["as_org"]) == ("IT", "Rome", 64500, "Example Telecom")
    assert (v6["country"], v6["city"], v6["asn"], v6["as_org"]) == ("DE", "Berlin", 64501, "Example Fibre")
    assert (unknown["country"], unknown["city"], unknown["asn"], unknown["as_org"]) == (None, None, None, None)

    token = geo_server.new_token("investigator")
    by_asn = geo_server.api("GET", "/api/v1/hits?asn=64500", token).json()["items"]
    assert [item["client_ip"] for item in by_asn] == ["203.0.113.7"]
    by_country = geo_server.api("GET", "/api/v1/hits?country=de", token).json()["items"]
    assert [item["client_ip"] for item in by_country] == ["2001:db8::9"]
    stats = geo_server.api("GET", "/api/v1/stats?group=asn", token).json()["rows"]
    assert {row["key"]: row["hits"] for row in stats} == {"64500": 1, "64501": 1, None: 1}
    countries = geo_server.api("GET", "/api/v1/stats?group=country", token).json()["rows"]
    assert {row["key"] for row in countries} == {"IT", "DE", None}


def test_a_replaced_database_is_picked_up_without_restart(geo_server):
    assert hit_from(geo_server, "203.0.113.7", "/before")["country"] == "IT"
    time.sleep(0.01)
    write_city(geo_server.city_db, {"203.0.113.0/24": ("FR", "Paris"), "2001:db8::/32": ("DE", "Berlin")})
    assert hit_from(geo_server, "203.0.113.7", "/after")["city"] == "Paris"  # its new mtime alone is enough
    assert geo_server.process.poll() is None


def test_sighup_reopens_a_database_whose_mtime_did_not_change(geo_server):
    assert hit_from(geo_server, "203.0.113.7", "/before")["city"] == "Rome"
    old = os.stat(geo_server.city_db)
    write_city(geo_server.city_db, {"203.0.113.0/24": ("FR", "Paris"), "2001:db8::/32": ("DE", "Berlin")})
    os.utime(geo_server.city_db, ns=(old.st_atime_ns, old.st_mtime_ns))  # only SIGHUP can explain a reload now
    assert hit_from(geo_server, "203.0.113.7", "/unchanged-mtime")["city"] == "Rome"
    geo_server.process.send_signal(signal.SIGHUP)  # the supervisor passes it on to the ingest process
    deadline = time.monotonic() + 10
    while (row := hit_from(geo_server, "203.0.113.8", "/after-hup"))["city"] != "Paris" and time.monotonic() < deadline:
        time.sleep(0.1)  # the signal and the hit travel separately: a hit may be stored before the reload
    assert (row["country"], row["city"], row["asn"]) == ("FR", "Paris", 64500)
    assert geo_server.process.poll() is None  # and it keeps serving


def test_a_country_database_gives_country_only(tmp_path):
    country_db = tmp_path / "country.mmdb"
    write_city(country_db, {"203.0.113.0/24": ("IT", None)}, database_type="GeoLite2-Country")
    server = Server(tmp_path / "srv", settings={"trusted_proxies": ["127.0.0.0/8"], "geoip_city_db": str(country_db)}).start()
    try:
        row = hit_from(server, "203.0.113.7", "/x")
        assert (row["country"], row["city"], row["asn"]) == ("IT", None, None)
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("problem", ["missing", "garbage"])
def test_a_missing_or_unreadable_database_warns_once_and_breaks_nothing(tmp_path, problem):
    path = tmp_path / "city.mmdb"
    if problem == "garbage":
        path.write_bytes(b"this is not a MaxMind database" * 100)
    server = Server(tmp_path / "srv", settings={"trusted_proxies": ["127.0.0.0/8"], "geoip_city_db": str(path)}).start()
    try:
        rows = [hit_from(server, "203.0.113.7", f"/x/{i}") for i in range(3)]
        assert all(row["country"] is None and row["status"] == 451 for row in rows)
    finally:
        assert server.stop() == 0
    log = server.log_path.read_text()
    assert log.count("city/country database") == 1
    assert ("unavailable" if problem == "missing" else "unreadable") in log


def test_plan_and_packages_for_isps(tmp_path):
    import csv
    import hashlib
    import io
    import json
    import re
    import zipfile

    city, asn = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    write_city(city, CITY)
    write_asn(asn, ASN)
    server = Server(tmp_path / "srv", settings={"trusted_proxies": ["127.0.0.0/8"], "geoip_city_db": str(city),
                                                "geoip_asn_db": str(asn)},
                    domains=[{"name": "iptv-pirata.example", "language": "it", "case_ref": "PROC-77", "agency": "Guardia di Test"}]).start()
    try:
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
    finally:
        assert server.stop() == 0

    out = tmp_path / "isp-64500.zip"
    db = f"sqlite:///{server.db_path}"
    cli = seized("evidence", "package", "--db", db, "--asn", "64500", "--domain", "iptv-pirata.example", "--out", str(out))
    assert "3 hits" in cli.stdout
    plan_text = seized("evidence", "plan", "--db", db).stdout
    assert "Example Telecom" in plan_text and "Example Fibre" in plan_text

    for blob in (out.read_bytes(), via_api.content):
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            assert sorted(archive.namelist()) == ["README.txt", "hits.csv", "manifest.json"]
            hits_csv = archive.read("hits.csv")
            manifest = json.loads(archive.read("manifest.json"))
            readme = archive.read("README.txt").decode()
        rows = list(csv.DictReader(io.StringIO(hits_csv.decode(), newline="")))
        assert list(rows[0]) == ["client_ip", "client_port", "timestamp_utc", "domain", "method", "path", "user_agent"]
        assert [(r["client_ip"], int(r["client_port"])) for r in rows] == [s for s in sent if s[0] == "203.0.113.5"]
        assert [r["timestamp_utc"] for r in rows] == sorted(r["timestamp_utc"] for r in rows)
        assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["timestamp_utc"]) for r in rows)
        assert rows[0]["user_agent"] == 'TiviMate/5, "quoted"' and "secret" not in hits_csv.decode()
        assert manifest["rows"] == 3 and manifest["filters"] == {"asn": 64500, "domain": "iptv-pirata.example"}
        assert manifest["files"]["hits.csv"] == hashlib.sha256(hits_csv).hexdigest()
        assert manifest["files"]["README.txt"] == hashlib.sha256(readme.encode()).hexdigest()
        assert manifest["chains"][0]["node"] == "test-node" and manifest["chains"][0]["chain_head_now"]["head"]
        assert "NTP" in manifest["clock"] and manifest["tool"].startswith("seized ")
        assert "PROC-77" in readme and "porta di origine" in readme  # the case's language
    checkpoint = json.loads(zipfile.ZipFile(out).read("manifest.json"))["chains"][0]["covering_checkpoint"]
    assert checkpoint is not None and checkpoint["last_id"] >= 6  # the clean stop's checkpoint covers every row
