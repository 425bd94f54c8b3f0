"""app/dbcopy.py and the schema's versions: an embedded deployment moved to PostgreSQL keeps every
row as it was and verifies; a schema newer than the code is refused."""

import json

import pytest

from commands import seized
from helpers import sql

TABLES = ("domains", "tokens", "audit", "checkpoints", "subjects", "journal_progress")


@pytest.mark.backends("sqlite")
def test_an_embedded_deployment_moves_to_postgresql_as_it_was(fresh_server, postgres_database, tmp_path):
    old = fresh_server(match_key="copy-key-0123456789", checkpoint_every_hits=5).start()
    admin = old.admin_token
    for i in range(12):
        old.request(target=f"/player_api.php?username=user{i % 3}&password=secret{i}",
                    headers=[("User-Agent", f"Player/{i % 2}")])
    old.wait_rows(count=12)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("account,name\nuser1,Alice\nuser2,Bob\n")
    seized("subjects", "import", str(subjects), "--case", "CASE-7", "--db", old.db_url)
    assert old.stop() == 0

    target = postgres_database(tmp_path / "pg")
    copied = seized("db", "copy", "--from", old.db_url, "--to", target)
    assert "copied 12 hits" in copied.stdout
    for table in TABLES:  # every row as it was, ids included
        assert sql(target, f"SELECT * FROM {table} ORDER BY 1, 2") == sql(old.db_url, f"SELECT * FROM {table} ORDER BY 1, 2"), table
    assert sql(target, "SELECT * FROM hits ORDER BY id") == sql(old.db_url, "SELECT * FROM hits ORDER BY id")
    report = json.loads(seized("verify", "--db", target).stdout)
    assert report["ok"] and report["nodes"][0]["hits"] == 12 and report["nodes"][0]["checkpoints"]

    again = seized("db", "copy", "--from", old.db_url, "--to", target, check=False)
    assert again.returncode == 2 and "the target database is not empty" in again.stderr

    new = fresh_server(db_url=target).start()  # the same node, now on PostgreSQL: its token and chain go on
    assert new.api("GET", "/api/v1/tokens", admin).status_code == 200
    new.request(target="/after-the-move")
    rows = new.wait_rows(count=13)
    assert rows[-1]["path"] == "/after-the-move" and rows[-1]["id"] == 13 and rows[-1]["prev_hash"] == rows[-2]["hash"]
    assert new.stop() == 0
    assert json.loads(seized("verify", "--db", target).stdout)["ok"]


def test_a_schema_newer_than_the_code_is_refused(fresh_server):
    server = fresh_server().start()
    assert server.stop() == 0
    current = seized("db", "migrate", "--db", server.db_url).stdout
    assert "schema version" in current
    table = "migrations" if server.backend == "sqlite" else "schema_migrations"
    sql(server.db_url, f"INSERT INTO {table} VALUES (999, '2030-01-01T00:00:00.000000Z')")
    refused = seized("db", "migrate", "--db", server.db_url, check=False)
    assert refused.returncode == 2 and "schema version 999, newer than this seized knows" in refused.stderr
    with pytest.raises(RuntimeError, match="newer than this seized knows"):
        server.start()
