"""The `seized` command against a running server's database."""

import json

import pytest
from pathlib import Path
import re
import subprocess
import sys
import time

from commands import fails, seized
from helpers import sql


def test_domains_added_and_removed_by_cli_reach_the_running_server(server):
    db = server.db_url
    assert server.request(host="tv.newly-seized.example").text.count("newly-seized.example") == 0
    seized("domains", "add", "Newly-Seized.example", "--db", db, "--agency", "CLI Agency", "--status", "410",
           "--language", "it", "--case-ref", "CLI-1")
    listed = seized("domains", "list", "--db", db).stdout
    assert "newly-seized.example" in listed and "CLI Agency" in listed

    deadline = time.monotonic() + 10
    while (response := server.request(host="tv.newly-seized.example")).status != 410 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status == 410
    assert "CLI Agency" in response.text and "CLI-1" in response.text
    assert response.header("content-language") == "it"
    assert server.row_for_port(response.local_port)["domain"] == "newly-seized.example"

    seized("domains", "remove", "newly-seized.example", "--db", db)
    deadline = time.monotonic() + 10
    while (response := server.request(host="tv.newly-seized.example")).status == 410 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status == 451
    assert server.row_for_port(response.local_port)["domain"] is None
    assert fails("domains", "remove", "newly-seized.example", "--db", db, exit_code=1) == "no such domain: newly-seized.example"


def test_config_seeds_only_what_the_database_lacks_and_only_once(fresh_server):
    srv = fresh_server(domains=[{"name": "seed.example", "agency": "From Config"},
                                {"name": "other.example", "agency": "Other From Config"}])
    db = srv.db_url
    seized("domains", "add", "seed.example", "--db", db, "--agency", "From Database")
    srv.start()
    assert "From Database" in srv.request(host="seed.example").text
    assert "Other From Config" in srv.request(host="other.example").text
    seized("domains", "remove", "other.example", "--db", db)
    assert srv.stop() == 0
    srv.start()  # the file still names other.example: removed stays removed
    assert "other.example" not in seized("domains", "list", "--db", db).stdout
    assert srv.request(host="other.example").text.count("Other From Config") == 0
    assert srv.stop() == 0


def test_invalid_domain_and_missing_config_are_clear_errors(tmp_path):
    assert "not a domain name" in fails("domains", "add", "bad/name", "--db", f"sqlite:///{tmp_path}/x.db")
    assert "config file not found" in fails("hits", "list", "--config", str(tmp_path / "nope.toml"))


@pytest.mark.backends("sqlite")  # SEIZED_DB names an SQLite file
def test_environment_variables_override_the_config_file(fresh_server, monkeypatch):
    srv = fresh_server(domains=[{"name": "env.example"}])
    env_db = srv.directory / "from-env.db"
    monkeypatch.setenv("SEIZED_DB", f"sqlite:///{env_db}")  # the server and the command below inherit them
    monkeypatch.setenv("SEIZED_NOTICE__AGENCY", "Agency From Env")
    srv.start()
    response = srv.request(host="unknown.example")
    assert "Agency From Env" in response.text
    assert srv.stop() == 0
    out = seized("hits", "list", "--format", "ndjson", cwd=srv.directory).stdout
    assert str(response.local_port) in out
    assert env_db.exists() and not srv.db_path.exists()


def test_first_start_writes_an_admin_token_file_never_the_log_and_cli_manages_tokens(fresh_server):
    import httpx
    srv = fresh_server(domains=[]).start()
    token = srv.admin_token
    assert re.fullmatch(r"sz_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert srv.admin_token_path.stat().st_mode & 0o777 == 0o600
    log = srv.log_path.read_text()
    assert token not in log and "sz_" not in log and str(srv.admin_token_path) in log
    db = srv.db_url
    investigator = seized("tokens", "create", "--role", "investigator", "--name", "alice", "--db", db).stdout.strip()
    assert investigator.startswith("sz_")
    assert "a token named 'alice' exists" in fails("tokens", "create", "--role", "investigator", "--name", "alice", "--db", db)
    assert "role must be one of admin, investigator, auditor" in fails("tokens", "create", "--role", "king", "--name", "bob",
                                                                      "--db", db)
    assert "bob" not in seized("tokens", "list", "--db", db).stdout  # the refused token was not made
    url = srv.admin_url("/api/v1/hits")
    assert httpx.get(url, headers={"Authorization": f"Bearer {investigator}"}).status_code == 200
    listed = seized("tokens", "list", "--db", db).stdout
    assert "alice" in listed and "initial-admin" in listed and investigator not in listed
    seized("tokens", "revoke", "alice", "--db", db)
    assert httpx.get(url, headers={"Authorization": f"Bearer {investigator}"}).status_code == 401
    assert fails("tokens", "revoke", "alice", "--db", db, exit_code=1) == "no active token named 'alice'"
    assert srv.stop() == 0
    srv.admin_token_path.unlink()  # read and put away, as the log asks
    srv.start()  # an admin token exists now: none is made, no file written
    assert not srv.admin_token_path.exists() and srv.log_path.read_text().count("no admin token existed") == 1
    assert srv.stop() == 0


def test_notice_render_prerenders_the_videos_the_server_then_serves(fresh_server):
    srv = fresh_server(domains=[{"name": "render.example", "agency": "Render Agency"}])
    out = seized("notice", "render", "--config", str(srv.config_path), "--domain", "render.example", "--language", "it").stdout
    folder = Path(out.strip().rpartition(": ")[2])
    assert folder.parent == srv.directory / "video"
    assert out.startswith("render.example [it]: ")
    assert sorted(p.name for p in folder.iterdir()) == ["notice.mp4", "notice.ts", "seg0.ts", "seg1.ts", "seg2.ts"]
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    srv.start()
    # (an HLS segment: a plain .ts stream URL gets the visitor's own rendering, tests/test_tv_picture.py)
    response = srv.request("GET", "/_seized/video/it/seg0.ts", host="render.example")
    assert response.status == 200 and response.body == (folder / "seg0.ts").read_bytes()
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # served from the cache, not rendered again
    assert srv.stop() == 0
    assert "nope.example is not an active seized domain" in fails("notice", "render", "--config", str(srv.config_path),
                                                                  "--domain", "nope.example")


def test_cli_lists_hits_as_ndjson_and_table(server):
    # Four hits of its own: the table's limit of 3 is both met and needed, whatever ran before (or did not).
    mine_ids = [server.row_for_port(server.request(target=f"/cli-table/{i}").local_port)["id"] for i in range(3)]
    response = server.request(target="/get.php?username=a&password=b")
    mine_ids.append(server.row_for_port(response.local_port)["id"])
    db = server.db_url
    out = seized("hits", "list", "--db", db, "--limit", "500", "--format", "ndjson").stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == sorted((r["id"] for r in records), reverse=True)
    mine = next(r for r in records if r["client_port"] == response.local_port)
    required = {"id", "received_at", "domain", "host", "client_ip", "client_port", "peer_ip", "peer_port", "server_port",
                "scheme", "method", "path", "query", "http_version", "headers", "user_agent", "body_size",
                "body_sha256", "status", "node"}
    assert required <= set(mine)
    assert mine["query"] == "username=a&password=[REDACTED]"
    assert isinstance(mine["headers"], list)
    table = seized("hits", "list", "--db", db, "--limit", "3").stdout.splitlines()
    assert table[0].split()[:4] == ["id", "received_at", "client_ip", "client_port"]
    assert len(table) == 4  # the header and --limit 3 rows
    listed = [int(line.split()[0]) for line in table[1:]]
    assert listed == sorted(listed, reverse=True)
    assert min(listed) > min(mine_ids)  # the newest: our last three, or hits stored after them


def test_an_admin_token_file_that_cannot_be_written_stops_the_start_and_no_token_is_stored(fresh_server):
    srv = fresh_server(domains=[])
    blocker = srv.directory / "not-a-directory"
    blocker.write_text("")
    srv.settings["admin_token_file"] = str(blocker / "token")
    srv.write_config()
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--config", str(srv.config_path)], cwd=srv.directory,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"the new one cannot be written to {blocker / 'token'}" in result.stderr and "Traceback" not in result.stderr
    srv.settings["admin_token_file"] = str(srv.directory / "token")
    srv.write_config()
    srv.start()  # the token that could not be kept was never stored: this start makes the first one
    assert srv.admin_token_path == srv.directory / "token"
    assert "initial-admin-2" not in seized("tokens", "list", "--db", srv.db_url).stdout
    assert srv.api("GET", "/api/v1/settings", srv.admin_token).status_code == 200
    assert srv.stop() == 0


def test_domains_list_is_a_table_of_every_field_or_json(tmp_path):
    db = f"sqlite:///{tmp_path / 'seized.db'}"
    seized("domains", "add", "listed.example", "--db", db, "--agency", "List Agency", "--case-ref", "L-1",
           "--legal-basis", "Art. 5", "--language", "it", "--status", "410", "--blocked-by", "https://police.test/l",
           "--notes", "seized at dawn\nsecond line")
    seized("domains", "add", "quiet.example", "--db", db)
    sql(db, "UPDATE domains SET active = 0 WHERE name = 'quiet.example'")  # (the CLI has no switch for it; the API's PATCH)
    header, first, second = seized("domains", "list", "--db", db).stdout.splitlines()
    assert header.split() == ["name", "active", "agency", "case_ref", "legal_basis", "language", "status", "blocked_by",
                              "notes", "created_at", "updated_at"]
    cells = re.split(r"\s{2,}", first)
    assert cells[:9] == ["listed.example", "yes", "List Agency", "L-1", "Art. 5", "it", "410", "https://police.test/l",
                         "seized at dawn second line"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", cells[9])
    assert second.split()[:2] == ["quiet.example", "no"]
    as_json = json.loads(seized("domains", "list", "--format", "json", "--db", db).stdout)
    assert [d["name"] for d in as_json] == ["listed.example", "quiet.example"]
    assert as_json[0]["notes"] == "seized at dawn\nsecond line" and as_json[0]["active"] is True
    assert as_json[1]["active"] is False and as_json[1]["agency"] is None and set(as_json[1]) == set(header.split())


def test_a_package_filtered_by_asn_or_country_without_geoip_is_an_error_not_an_empty_zip(server, tmp_path):
    response = server.request(host="seized-iptv.example", target="/geo-less")
    server.row_for_port(response.local_port)  # stored, without GeoIP (the server has no database for it)
    out = tmp_path / "package.zip"
    said = fails("evidence", "package", "--db", server.db_url, "--asn", "64500", "--out", str(out), exit_code=1)
    assert "the asn filter cannot match" in said and "set geoip_asn_db" in said
    assert not out.exists()
    said = fails("evidence", "package", "--db", server.db_url, "--country", "IT", "--path-prefix", "/geo-less",
                 "--out", str(out), exit_code=1)
    assert "the country filter cannot match: none of the" in said and "set geoip_city_db" in said
    assert not out.exists()
    investigator = server.new_token("investigator")
    refused = server.api("GET", "/api/v1/evidence/package", investigator, params={"asn": 64500})
    assert refused.status_code == 422 and "geoip_asn_db" in refused.json()["detail"]

    # No hit at all in the range: nothing to blame on GeoIP; an empty package, and a warning.
    result = seized("evidence", "package", "--db", server.db_url, "--asn", "64500", "--since", "2100-01-01T00:00:00Z",
                    "--out", str(out))
    assert "no hit matches these filters" in result.stderr and out.exists()
