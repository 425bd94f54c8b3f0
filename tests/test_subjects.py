"""Matching hits against a seized panel's own subscriber records."""

import json

from commands import fails, seized
from helpers import Server, request


def test_import_match_and_report(tmp_path):
    server = Server(tmp_path, settings={"trusted_proxies": ["127.0.0.0/8"]}).start()
    try:
        shapes = [("alice", "203.0.113.5", 40001), ("alice", "203.0.113.6", 40002), ("bob", "198.51.100.7", 40003),
                  ("mallory", "192.0.2.9", 40004)]
        for account, ip, port in shapes:
            request(server.public_port, "GET", f"/player_api.php?username={account}&password=x",
                    headers=[("X-Forwarded-For", ip), ("X-Real-Port", str(port))])
        request(server.public_port, "GET", "/portal.php?type=stb&action=get_profile", headers=[("Cookie", "mac=00:1a:79:aa:bb:cc")])
        server.wait_rows(count=5)
        csv_file = tmp_path / "panel.csv"
        csv_file.write_text("Account,email,payment_ref\nalice,alice@example.org,PAY-1\nbob,\"bob, jr@example.org\",PAY-2\n"
                            "00:1A:79:AA:BB:CC,mag@example.org,PAY-3\ncarol,carol@example.org,PAY-4\n")
        db = f"sqlite:///{server.db_path}"
        assert "4 added, 0 changed" in seized("subjects", "import", str(csv_file), "--case", "CASE-1", "--db", db).stdout
        assert "0 added, 0 changed, 4 unchanged" in seized("subjects", "import", str(csv_file), "--case", "CASE-1", "--db", db).stdout
        bad = tmp_path / "bad.csv"
        bad.write_text("user,email\nx,y\n")
        assert "the CSV needs an 'account' column" in fails("subjects", "import", str(bad), "--case", "CASE-1", "--db", db)

        token = server.new_token("investigator")
        listed = server.api("GET", "/api/v1/subjects?case=CASE-1", token).json()
        assert {(s["account"], s["hits"]) for s in listed} == {("alice", 2), ("bob", 1), ("00:1A:79:AA:BB:CC", 1), ("carol", 0)}
        assert next(s for s in listed if s["account"] == "bob")["attributes"] == {"email": "bob, jr@example.org", "payment_ref": "PAY-2"}
        alice = server.api("GET", "/api/v1/subjects/alice/hits", token).json()
        assert alice["hits"] == 2 and alice["distinct_ips"] == 2
        assert [(t["client_ip"], t["client_port"]) for t in alice["tuples"]] == [("203.0.113.5", 40001), ("203.0.113.6", 40002)]
        assert all(t["timestamp_utc"].endswith("Z") and len(t["timestamp_utc"]) == 24 for t in alice["tuples"])
        assert alice["records"] == [{"case_ref": "CASE-1", "attributes": {"email": "alice@example.org", "payment_ref": "PAY-1"}}]
        assert server.api("GET", "/api/v1/subjects/00:1a:79:aa:bb:cc/hits", token).json()["hits"] == 1
        assert server.api("GET", "/api/v1/subjects/mallory/hits", token).status_code == 404
        assert server.api("GET", "/api/v1/subjects", server.new_token("auditor")).status_code == 403
        report = server.api("GET", "/api/v1/subjects/report?case=CASE-1", token).json()
        assert [u["account"] for u in report["unmatched_accounts"]] == ["mallory"]
    finally:
        assert server.stop() == 0
    out = tmp_path / "report.json"
    assert "4 subjects, 1 unmatched" in seized("evidence", "subjects-report", "--case", "CASE-1", "--out", str(out), "--db", db).stdout
    report = json.loads(out.read_text())
    import sqlite3
    from contextlib import closing
    with closing(sqlite3.connect(server.db_path)) as conn:  # command-line reads are audited too
        audited = conn.execute("SELECT role, endpoint, rows FROM audit WHERE method = 'CLI'").fetchall()
    assert ("cli", "seized evidence subjects-report", 4) in audited
    by_account = {s["account"]: s for s in report["subjects"]}
    assert by_account["carol"]["hits"] == 0 and by_account["carol"]["first_seen"] is None
    assert by_account["alice"]["isps"] == [{"asn": None, "as_org": None, "hits": 2}]
    assert report["unmatched_accounts"][0]["account"] == "mallory" and report["unmatched_accounts"][0]["hits"] == 1
