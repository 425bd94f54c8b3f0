"""`seized domains export`: each resolver list checked by the resolver's own tool from Debian
(named-checkzone, named-checkconf, unbound-checkconf, dnsmasq --test) and, for Unbound (local zones
and RPZ) and dnsmasq, loaded into the real resolver on 127.0.0.1 and asked for a seized domain, a
name deep under it and names that are not seized. Then the same lists on the management API."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from commands import fails, seized
from helpers import free_port, wait_for

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def tool(name: str) -> str:
    path = shutil.which(name, path=SBIN)
    assert path, f"{name} is missing: `make tools` installs it (bind9-utils, unbound, dnsmasq-base)"
    return path


V4, V4B, V6 = "192.0.2.10", "198.51.100.7", "2001:db8::10"
ADDRESSES = ("--address", V4, "--address", V6, "--address", V4B)
# What the database holds: notice fields, an IDN, a subdomain of another seized domain, an inactive one.
IMPORT = ("domain,agency,case_ref,legal_basis,language,status,notes,active\r\n"
          "seized-iptv.example,Test Police,CASE-42,Order 7/2026,en,451,\"first, with a comma\",true\r\n"
          "Bücher.Example,Guardia di Test,PROC-9,,it,,,yes\r\n"
          "live.other.example,,,,,,,\r\n"
          "other.example,,,,,,,1\r\n"
          "dormant.example,,,,,,taken off the notice,false\r\n")
ACTIVE = ["other.example", "live.other.example", "seized-iptv.example", "xn--bcher-kva.example"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("resolvers")
    (directory / "domains.csv").write_text(IMPORT, encoding="utf-8")
    url = f"sqlite:///{directory / 'seized.db'}"
    seized("domains", "import", str(directory / "domains.csv"), "--db", url)
    return url


def export(db: str, fmt: str, *extra: str) -> str:
    return seized("domains", "export", "--format", fmt, *ADDRESSES, "--db", db, *extra).stdout


def header_serial(text: str) -> int:
    return int(re.search(r"serial (\d+)", text).group(1))


def ask(port: int, name: str, kind: str = "A") -> tuple[str, set[str]]:
    answer = dns.query.udp(dns.message.make_query(name, kind), "127.0.0.1", port=port, timeout=5)
    return dns.rcode.to_text(answer.rcode()), {item.to_text() for rrset in answer.answer for item in rrset}


def ready(port: int, name: str) -> bool:
    try:
        return ask(port, name)[0] == "NOERROR"
    except (OSError, dns.exception.Timeout):
        return False


class Resolver:
    """A resolver process of our own on 127.0.0.1:port, stopped by its pid at the end."""

    def __init__(self, command: list[str], port: int, probe: str, log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.process.poll() is None and ready(port, probe), timeout=60,
                     message=f"{command[0]} did not answer on port {port}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        assert self.process.returncode is not None, self.log.read_text()


def expect_redirected(port: int) -> None:
    """Every active seized domain and any name under it answer with the node addresses, A and AAAA."""
    for name in ACTIVE:
        for asked in (name, f"www.{name}", f"a.b.c.{name}"):
            assert ask(port, asked, "A") == ("NOERROR", {V4, V4B}), asked
            assert ask(port, asked, "AAAA") == ("NOERROR", {V6}), asked


def unbound_server(port: int, directory) -> str:
    """The start of a `server:` clause for an Unbound of the test's own: loopback, foreground, no
    chroot, user change, pid file or syslog; the caller adds what it tests."""
    return f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{directory}"
  pidfile: ""
  use-syslog: no
  do-ip6: no
"""


def test_rpz_is_a_zone_bind_loads_and_unbound_answers_from(db, tmp_path):
    before = int(time.time())
    text = export(db, "rpz", "--zone", "seized.rpz.test")
    assert before <= header_serial(text) <= int(time.time())
    zone = tmp_path / "seized.rpz"
    zone.write_text(text)
    checked = subprocess.run([tool("named-checkzone"), "seized.rpz.test", str(zone)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"loaded serial {header_serial(text)}" in checked.stdout
    records = {line for line in text.splitlines() if line and not line.startswith((";", "$", "@"))}
    assert records == {f"{owner}{name} IN {kind} {address}" for name in ACTIVE for owner in ("", "*.")
                       for kind, address in (("A", V4), ("A", V4B), ("AAAA", V6))}
    assert "dormant.example" not in text

    port = free_port()  # Unbound's RPZ: the zone's records are the answers; other names go upstream
    conf = tmp_path / "unbound.conf"
    conf.write_text(unbound_server(port, tmp_path) + f"""  module-config: "respip iterator"
  do-not-query-localhost: no
rpz:
  name: "seized.rpz.test"
  zonefile: "{zone}"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@9
""")
    resolver = Resolver([tool("unbound"), "-d", "-c", str(conf)], port, "seized-iptv.example", tmp_path / "unbound.log")
    try:
        expect_redirected(port)
    finally:
        resolver.stop()


def test_bind_zone_per_domain_loads_in_named_checkconf(db, tmp_path):
    zone_file = tmp_path / "db.seized-redirect"
    fragment = export(db, "bind", "--zone-file", str(zone_file))
    zone_file.write_text(export(db, "bind-zone"))
    assert re.findall(r'^zone "([^"]+)"', fragment, re.MULTILINE) == sorted(ACTIVE)
    (tmp_path / "named.conf.seized").write_text(fragment)
    conf = tmp_path / "named.conf"
    conf.write_text(f'options {{ directory "{tmp_path}"; }};\ninclude "{tmp_path / "named.conf.seized"}";\n')
    checked = subprocess.run([tool("named-checkconf"), "-z", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(re.findall(r"zone (\S+)/IN: loaded serial", checked.stdout)) == sorted(ACTIVE)


def test_unbound_redirect_zones_answer_for_every_subdomain(db, tmp_path):
    listed = tmp_path / "seized.conf"
    seized("domains", "export", "--format", "unbound", *ADDRESSES, "--db", db, "--output", str(listed))
    port = free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(unbound_server(port, tmp_path) + f"""  local-zone: "." refuse
include: "{listed}"
""")
    checked = subprocess.run([tool("unbound-checkconf"), str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    resolver = Resolver([tool("unbound"), "-d", "-c", str(conf)], port, "seized-iptv.example", tmp_path / "unbound.log")
    try:
        expect_redirected(port)
        for name in ("notseized-iptv.example", "example", "dormant.example", "www.dormant.example"):
            assert ask(port, name) == ("REFUSED", set()), name
    finally:
        resolver.stop()


def test_dnsmasq_answers_for_every_subdomain_and_nothing_else(db, tmp_path):
    listed = tmp_path / "seized-dnsmasq.conf"
    listed.write_text(export(db, "dnsmasq"))
    assert subprocess.run([tool("dnsmasq"), "--test", f"--conf-file={listed}"], capture_output=True).returncode == 0
    port = free_port()
    resolver = Resolver([tool("dnsmasq"), "--keep-in-foreground", f"--port={port}", "--listen-address=127.0.0.1",
                         "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file", f"--conf-file={listed}",
                         "--log-facility=-"], port, "seized-iptv.example", tmp_path / "dnsmasq.log")
    try:
        expect_redirected(port)
        for name in ("notseized-iptv.example", "dormant.example", "www.dormant.example"):
            assert ask(port, name)[1] == set(), name  # not answered from the list (REFUSED: no upstream)
    finally:
        resolver.stop()


def test_hosts_and_csv(db):
    hosts = export(db, "hosts")
    assert "no wildcards" in hosts
    lines = {tuple(line.split()) for line in hosts.splitlines() if line and not line.startswith("#")}
    assert lines == {(address, prefix + name) for name in ACTIVE for prefix in ("", "www.") for address in (V4, V6, V4B)}

    rows = list(csv.DictReader(io.StringIO(export(db, "csv"), newline="")))
    assert [row["domain"] for row in rows] == sorted(ACTIVE)
    first = {row["domain"]: row for row in rows}["seized-iptv.example"]
    assert first["addresses"] == f"{V4} {V6} {V4B}"
    assert (first["agency"], first["case_ref"], first["legal_basis"], first["language"], first["status"], first["notes"],
            first["active"]) == ("Test Police", "CASE-42", "Order 7/2026", "en", "451", "first, with a comma", "true")
    assert {row["domain"]: row for row in rows}["xn--bcher-kva.example"]["agency"] == "Guardia di Test"


def test_every_header_says_what_it_is(db):
    before = int(time.time())
    for fmt, comment in (("rpz", ";"), ("bind", "//"), ("bind-zone", ";"), ("unbound", "#"), ("dnsmasq", "#"), ("hosts", "#")):
        text = export(db, fmt)
        head = text.splitlines()[:2]
        assert re.fullmatch(rf"{re.escape(comment)} generated by seized at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}Z", head[0])
        assert head[1].startswith(f"{comment} 4 domains, serial ") and before <= header_serial(text) <= int(time.time())


def test_bad_addresses_and_options_are_clear_errors(db):
    assert "not an IP address: '300.1.1.1'" in fails("domains", "export", "-f", "rpz", "--address", "300.1.1.1", "--db", db)
    assert "Missing option '--address'" in fails("domains", "export", "-f", "rpz", "--db", db)
    assert "not a zone name" in fails("domains", "export", "-f", "rpz", "--address", V4, "--zone", "bad zone", "--db", db)
    assert "'nope' is not one of" in fails("domains", "export", "-f", "nope", "--address", V4, "--db", db)


# ------------------------------------------------------------------ the management API

def test_admins_get_the_same_lists_on_the_api(server):
    admin = server.admin_token
    cli = seized("domains", "export", "-f", "unbound", *ADDRESSES, "--db", server.db_url).stdout
    response = server.api("GET", "/api/v1/domains/export", admin,
                          params=[("format", "unbound"), ("address", V4), ("address", V6), ("address", V4B)])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="seized-unbound.conf"'
    body_lines = [line for line in response.text.splitlines() if not line.startswith("#")]
    assert body_lines == [line for line in cli.splitlines() if not line.startswith("#")]
    assert int(response.headers["x-seized-serial"]) == header_serial(response.text)

    listed = server.api("GET", "/api/v1/domains/export", admin, params={"format": "csv", "address": V6})
    assert listed.headers["content-type"] == "text/csv; charset=utf-8"
    assert "seized-iptv.example" in {row["domain"] for row in csv.DictReader(io.StringIO(listed.text))}

    bad = server.api("GET", "/api/v1/domains/export", admin, params={"format": "rpz", "address": "10.0.0.300"})
    assert bad.status_code == 422 and bad.json()["detail"] == "not an IP address: '10.0.0.300'"
    assert server.api("GET", "/api/v1/domains/export", admin, params={"format": "rpz"}).status_code == 422
    investigator = server.new_token("investigator")
    assert server.api("GET", "/api/v1/domains/export", investigator,
                      params={"format": "rpz", "address": V4}).status_code == 403
    audited = server.sql("SELECT endpoint, status FROM audit WHERE endpoint = ? ORDER BY id", ("/api/v1/domains/export",))
    assert [row["status"] for row in audited][-5:] == [200, 200, 422, 422, 403]
