"""GeoIP/ASN enrichment from small .mmdb files built here (mmdb-writer), IPv4 and IPv6."""

import os
import signal
import time

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from helpers import request


# write_city, write_asn, CITY and ASN are imported by test_package.py too.
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
def geo_server(tmp_path, fresh_server):
    """Stopped after the test, and must exit 0, by fresh_server."""
    city, asn = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    write_city(city, CITY)
    write_asn(asn, ASN)
    server = fresh_server(domains=[], trusted_proxies=["127.0.0.0/8"], geoip_city_db=str(city), geoip_asn_db=str(asn)).start()
    server.city_db = city
    return server


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


def test_a_country_database_gives_country_only(tmp_path, fresh_server):
    country_db = tmp_path / "country.mmdb"
    write_city(country_db, {"203.0.113.0/24": ("IT", None)}, database_type="GeoLite2-Country")
    server = fresh_server(domains=[], trusted_proxies=["127.0.0.0/8"], geoip_city_db=str(country_db)).start()
    row = hit_from(server, "203.0.113.7", "/x")
    assert (row["country"], row["city"], row["asn"]) == ("IT", None, None)


@pytest.mark.parametrize("problem", ["missing", "garbage"])
def test_a_missing_or_unreadable_database_warns_once_and_breaks_nothing(tmp_path, fresh_server, problem):
    path = tmp_path / "city.mmdb"
    if problem == "garbage":
        path.write_bytes(b"this is not a MaxMind database" * 100)
    server = fresh_server(domains=[], trusted_proxies=["127.0.0.0/8"], geoip_city_db=str(path)).start()
    rows = [hit_from(server, "203.0.113.7", f"/x/{i}") for i in range(3)]
    assert all(row["country"] is None and row["status"] == 451 for row in rows)
    assert server.stop() == 0  # its whole log, below
    log = server.log_path.read_text()
    assert log.count("city/country database") == 1
    assert ("unavailable" if problem == "missing" else "unreadable") in log
