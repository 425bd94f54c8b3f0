"""An export's audit row goes in before its first byte (issue 12): through a real server, the API's
export and package and the CLI's `hits export` and `evidence package` are refused, 503 (the CLI:
exit 1) and nothing sent or written, when their audit row cannot be written: the database locked
by another process past the busy timeout, or the row refused. Unrefused, the export's "started" row
is in the audit log while the body is still streaming, and a row with the count follows."""

import json
import os
import sqlite3

import httpx
import pytest

from commands import seized
from helpers import seed_journal

REFUSED = ("/api/v1/hits/export", "/api/v1/evidence/package", "seized hits export", "seized evidence package")


def refuse_audit_rows(server) -> None:
    """The database refuses audit rows of exports and packages (as a full disk or a constraint would)."""
    endpoints = ", ".join(f"'{name}'" for name in REFUSED)
    if server.backend == "sqlite":
        server.sql(f"CREATE TRIGGER refuse_export_audit BEFORE INSERT ON audit WHEN NEW.endpoint IN ({endpoints}) "
                   "BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END")
    else:
        server.sql("CREATE FUNCTION refuse_export_audit() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$")
        server.sql(f"CREATE TRIGGER refuse_export_audit BEFORE INSERT ON audit FOR EACH ROW "
                   f"WHEN (NEW.endpoint IN ({endpoints})) EXECUTE FUNCTION refuse_export_audit()")


def allow_audit_rows(server) -> None:
    server.sql("DROP TRIGGER refuse_export_audit" + ("" if server.backend == "sqlite" else " ON audit"))


def assert_refused(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "audit" in response.json()["detail"] or "database" in response.json()["detail"]
    assert "client_ip" not in response.text  # no CSV header, no row


def export_rows(server, endpoint: str) -> list[dict]:
    rows = server.sql("SELECT * FROM audit WHERE endpoint = ? ORDER BY id", (endpoint,))
    return [{**row, "filters": json.loads(row["filters"])} for row in rows]


def test_exports_are_refused_when_their_audit_row_cannot_be_written(tmp_path, fresh_server):
    server = fresh_server().start()
    for i in range(5):
        server.request(target=f"/refused-{i}")
    server.wait_rows(count=5)
    token = server.new_token("investigator")
    refuse_audit_rows(server)

    assert_refused(server.api("GET", "/api/v1/hits/export?format=csv", token))
    assert_refused(server.api("GET", "/api/v1/hits/export?format=ndjson", token))
    assert_refused(server.api("GET", "/api/v1/evidence/package?since=2000-01-01T00:00:00Z", token))
    out, package = tmp_path / "hits.csv", tmp_path / "package.zip"
    cli = seized("hits", "export", "--config", str(server.config_path), "--out", str(out), check=False)
    assert cli.returncode == 1 and "audit log cannot be written" in cli.stderr, cli.stderr
    assert not out.exists() and cli.stdout == ""
    cli = seized("hits", "export", "--config", str(server.config_path), check=False)
    assert cli.returncode == 1 and cli.stdout == ""  # not even the header row
    cli = seized("evidence", "package", "--config", str(server.config_path), "--out", str(package), check=False)
    assert cli.returncode == 1 and "audit log cannot be written" in cli.stderr, cli.stderr
    assert not package.exists()
    assert not any(export_rows(server, endpoint) for endpoint in REFUSED)

    allow_audit_rows(server)  # the same calls now work, each audited
    exported = server.api("GET", "/api/v1/hits/export?format=csv", token)
    assert exported.status_code == 200 and exported.text.count("/refused-") == 5
    started, done = export_rows(server, "/api/v1/hits/export")
    assert (started["filters"], started["rows"], started["status"]) == ({"format": "csv", "_audit": "started"}, None, 200)
    assert (done["filters"], done["rows"], done["status"]) == ({"format": "csv"}, 5, 200)
    assert server.api("GET", "/api/v1/evidence/package?since=2000-01-01T00:00:00Z", token).status_code == 200
    [packaged] = export_rows(server, "/api/v1/evidence/package")  # one row, its count known before the first byte
    assert (packaged["rows"], packaged["status"]) == (5, 200)
    seized("hits", "export", "--config", str(server.config_path), "--out", str(out))
    assert out.read_text().count("/refused-") == 5
    assert [(row["filters"].get("_audit"), row["rows"]) for row in export_rows(server, "seized hits export")] == [
        ("started", None), (None, 5)]


@pytest.mark.backends("sqlite")
def test_an_export_under_an_outside_lock_is_refused_and_sends_nothing(tmp_path, fresh_server):
    server = fresh_server().start()
    server.request(target="/locked-out")
    server.wait_rows("path = '/locked-out'")
    token = server.new_token("investigator")
    locker = sqlite3.connect(server.db_path, timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # held past the server's busy timeout (5 s)
    try:
        during = server.api("GET", "/api/v1/hits/export?format=csv", token, timeout=60)
        out = tmp_path / "hits.csv"
        cli = seized("hits", "export", "--config", str(server.config_path), "--out", str(out), check=False)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_refused(during)
    assert during.headers.get("retry-after")
    assert cli.returncode == 1 and not out.exists() and cli.stdout == "", (cli.stdout, cli.stderr)
    after = server.api("GET", "/api/v1/hits/export?format=csv", token)
    assert after.status_code == 200 and "/locked-out" in after.text
    assert [row["filters"].get("_audit") for row in export_rows(server, "/api/v1/hits/export")] == ["started", None]


def test_the_started_row_is_written_before_the_stream_ends(fresh_server):
    server = fresh_server().start()
    count = 40_000  # some 20 MB of CSV: far more than the socket buffers hold, so the stream is still going
    seed_journal(server, count)
    token = server.new_token("investigator")
    marker = os.urandom(4).hex()
    with httpx.stream("GET", server.admin_url(f"/api/v1/hits/export?format=csv&marker={marker}"),
                      headers={"Authorization": f"Bearer {token}"}, timeout=120) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        received = len(next(chunks))
        mine = [row for row in export_rows(server, "/api/v1/hits/export") if row["filters"].get("marker") == marker]
        assert [(row["filters"].get("_audit"), row["rows"]) for row in mine] == [("started", None)]
        received += sum(len(chunk) for chunk in chunks)
    assert received > 10_000_000
    mine = [row for row in export_rows(server, "/api/v1/hits/export") if row["filters"].get("marker") == marker]
    assert [(row["filters"].get("_audit"), row["rows"]) for row in mine] == [("started", None), (None, count)]
