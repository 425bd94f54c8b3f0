"""Matching hits against a seized panel's own subscriber records."""

import json

from commands import fails, seized
from helpers import request


def test_import_match_and_report(tmp_path, fresh_server):
    server = fresh_server(domains=[], trusted_proxies=["127.0.0.0/8"]).start()
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
    db = server.db_url
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
    assert server.stop() == 0  # the report below is read from the stopped server's database (command-line reads are audited too)
    out = tmp_path / "report.json"
    assert "4 subjects, 1 unmatched" in seized("evidence", "subjects-report", "--case", "CASE-1", "--out", str(out), "--db", db).stdout
    report = json.loads(out.read_text())
    audited = [(r["role"], r["endpoint"], r["rows"]) for r in server.sql("SELECT role, endpoint, rows FROM audit WHERE method = 'CLI'")]
    assert ("cli", "seized evidence subjects-report", 4) in audited
    by_account = {s["account"]: s for s in report["subjects"]}
    assert by_account["carol"]["hits"] == 0 and by_account["carol"]["first_seen"] is None
    assert by_account["alice"]["isps"] == [{"asn": None, "as_org": None, "hits": 2}]
    assert report["unmatched_accounts"][0]["account"] == "mallory" and report["unmatched_accounts"][0]["hits"] == 1


# -- the import on its own: the command line against a database file --------------------------------

def imported(csv_file, case, db) -> str:
    return seized("subjects", "import", str(csv_file), "--case", case, "--db", db).stdout.strip()


def listed(db, case=None) -> dict[tuple[str, str], dict]:
    """`seized subjects list`: (case, account) -> attributes."""
    out = seized("subjects", "list", *(["--case", case] if case else []), "--db", db).stdout
    rows = {}
    for line in out.splitlines():
        head, _, attributes = line.partition(" hits  ")
        case_ref, account = head.split()[:2]
        rows[(case_ref, account)] = json.loads(attributes)
    return rows


def test_a_reimport_counts_what_it_added_and_changed(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    first = tmp_path / "first.csv"
    first.write_text("account,email,plan\nalice,alice@example.org,gold\nbob,bob@example.org,basic\ncarol,carol@example.org,basic\n")
    assert imported(first, "CASE-7", db) == "3 records for case CASE-7: 3 added, 0 changed, 0 unchanged"
    # The panel's later export: its columns in another order; alice's e-mail and carol's plan changed,
    # bob's record the same (only the column order differs), dave new.
    second = tmp_path / "second.csv"
    second.write_text("plan,Account,email\ngold,alice,alice@new.example\nbasic,bob,bob@example.org\n"
                      "gold,carol,carol@example.org\nbasic,dave,dave@example.org\n")
    assert imported(second, "CASE-7", db) == "4 records for case CASE-7: 1 added, 2 changed, 1 unchanged"
    assert listed(db, "CASE-7") == {
        ("CASE-7", "alice"): {"email": "alice@new.example", "plan": "gold"},
        ("CASE-7", "bob"): {"email": "bob@example.org", "plan": "basic"},
        ("CASE-7", "carol"): {"email": "carol@example.org", "plan": "gold"},
        ("CASE-7", "dave"): {"email": "dave@example.org", "plan": "basic"},
    }
    assert imported(second, "CASE-7", db) == "4 records for case CASE-7: 0 added, 0 changed, 4 unchanged"
    # Records belong to a case: the same accounts under another case are new records, and leave CASE-7's alone.
    assert imported(first, "CASE-8", db) == "3 records for case CASE-8: 3 added, 0 changed, 0 unchanged"
    assert listed(db)[("CASE-7", "alice")] == {"email": "alice@new.example", "plan": "gold"}
    assert listed(db)[("CASE-8", "alice")] == {"email": "alice@example.org", "plan": "gold"}


def test_a_file_with_an_empty_or_repeated_account_is_refused_whole(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    empty = tmp_path / "empty.csv"
    # alice's note spans lines 2-3, so the record without an account starts on line 4
    empty.write_text('account,email,note\nalice,alice@example.org,"two\nlines"\n,nobody@example.org,x\nbob,bob@example.org,y\n')
    assert "line 4: empty account" in fails("subjects", "import", str(empty), "--case", "C", "--db", db, exit_code=2)
    blank = tmp_path / "blank.csv"
    blank.write_text("account,email\nalice,alice@example.org\n   ,nobody@example.org\n")
    assert "line 3: empty account" in fails("subjects", "import", str(blank), "--case", "C", "--db", db, exit_code=2)
    twice = tmp_path / "twice.csv"  # the same MAC address, written in two cases
    twice.write_text("account,email\n00:1a:79:aa:bb:cc,first@example.org\nalice,a@example.org\n00:1A:79:AA:BB:CC,second@example.org\n")
    assert "line 4: account '00:1A:79:AA:BB:CC' is also on line 2" in fails("subjects", "import", str(twice), "--case", "C",
                                                                           "--db", db, exit_code=2)
    assert listed(db) == {}  # none of their other records was imported


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    first = tmp_path / "account-first.csv"  # as a spreadsheet saves "CSV UTF-8": a BOM, CRLF line ends
    first.write_bytes("\ufeffAccount,e-mail\r\nalice,alice@example.org\r\n".encode("utf-8"))
    assert imported(first, "BOM", db) == "1 records for case BOM: 1 added, 0 changed, 0 unchanged"
    last = tmp_path / "account-last.csv"
    last.write_bytes("\ufeffemail,account\r\nbob@example.org,bob\r\n".encode("utf-8"))
    assert imported(last, "BOM", db) == "1 records for case BOM: 1 added, 0 changed, 0 unchanged"
    assert listed(db) == {("BOM", "alice"): {"e-mail": "alice@example.org"}, ("BOM", "bob"): {"email": "bob@example.org"}}
