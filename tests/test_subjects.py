"""Matching hits against a seized panel's own subscriber records."""

import json
import os

from commands import fails, seized
from helpers import request


PANELS = [{"name": "panel-one.example", "case_ref": "CASE-1"}, {"name": "panel-two.example", "case_ref": "CASE-2"},
          {"name": "no-case.example"}]


def test_import_match_and_report(tmp_path, fresh_server):
    server = fresh_server(domains=PANELS, trusted_proxies=["127.0.0.0/8"]).start()
    shapes = [("alice", "203.0.113.5", 40001), ("alice", "203.0.113.6", 40002), ("bob", "198.51.100.7", 40003),
              ("mallory", "192.0.2.9", 40004)]
    for account, ip, port in shapes:
        request(server.public_port, "GET", f"/player_api.php?username={account}&password=x", host="panel-one.example",
                headers=[("X-Forwarded-For", ip), ("X-Real-Port", str(port))])
    request(server.public_port, "GET", "/portal.php?type=stb&action=get_profile", host="panel-one.example",
            headers=[("Cookie", "mac=00:1a:79:aa:bb:cc")])
    server.wait_rows(count=5)
    csv_file = tmp_path / "panel.csv"
    csv_file.write_text("Account,email,payment_ref\nalice,alice@example.org,PAY-1\nbob,\"bob, jr@example.org\",PAY-2\n"
                        "00:1A:79:AA:BB:CC,mag@example.org,PAY-3\ncarol,carol@example.org,PAY-4\n")
    db = server.db_url
    assert "4 added, 0 changed" in seized("subjects", "import", str(csv_file), "--case", "CASE-1", "--db", db).stdout
    assert "0 added, 0 changed, 4 unchanged" in seized("subjects", "import", str(csv_file), "--case", "CASE-1", "--db", db).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("user,email\nx,y\n")
    assert "the CSV needs an 'account' column" in fails("subjects", "import", str(bad), "--case", "CASE-1", "--db", db, exit_code=2)

    token = server.new_token("investigator")
    listed = server.api("GET", "/api/v1/subjects?case=CASE-1", token).json()
    assert {(s["account"], s["hits"]) for s in listed} == {("alice", 2), ("bob", 1), ("00:1A:79:AA:BB:CC", 1), ("carol", 0)}
    assert next(s for s in listed if s["account"] == "bob")["attributes"] == {"email": "bob, jr@example.org", "payment_ref": "PAY-2"}
    alice = server.api("GET", "/api/v1/subjects/alice/hits", token).json()
    assert alice["hits"] == 2 and alice["distinct_ips"] == 2
    assert [(t["client_ip"], t["client_port"]) for t in alice["tuples"]] == [("203.0.113.5", 40001), ("203.0.113.6", 40002)]
    assert all(t["timestamp_utc"].endswith("Z") and len(t["timestamp_utc"]) == 27 for t in alice["tuples"])
    assert alice["records"] == [{"case_ref": "CASE-1", "attributes": {"email": "alice@example.org", "payment_ref": "PAY-1"}}]
    assert server.api("GET", "/api/v1/subjects/00:1a:79:aa:bb:cc/hits", token).json()["hits"] == 1
    assert server.api("GET", "/api/v1/subjects/mallory/hits", token).status_code == 404
    assert server.api("GET", "/api/v1/subjects", server.new_token("auditor")).status_code == 403
    report = server.api("GET", "/api/v1/subjects/report?case=CASE-1", token).json()
    assert [u["account"] for u in report["unmatched_accounts"]] == ["mallory"]
    assert report["domains"] == ["panel-one.example"] and report["note"] is None
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
    assert "line 4: account '00:1A:79:AA:BB:CC' is also on line 2, with other values; nothing imported" in fails("subjects", "import", str(twice), "--case", "C",
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


# -- MAC addresses in any notation, and only the case's own domains ---------------------------------

def stalker(server, mac: str, host: str, ip: str):
    request(server.public_port, "GET", "/portal.php?type=stb&action=get_profile", host=host,
            headers=[("Cookie", f"mac={mac}"), ("X-Forwarded-For", ip)])


def xtream(server, username: str, host: str, ip: str):
    request(server.public_port, "GET", f"/player_api.php?username={username}&password=x", host=host,
            headers=[("X-Forwarded-For", ip)])


def test_the_report_matches_mac_notations_and_counts_only_the_cases_domains(tmp_path, fresh_server):
    server = fresh_server(domains=PANELS, trusted_proxies=["127.0.0.0/8"]).start()
    # One box, its MAC written four ways by the clients; hits on CASE-1's panel...
    for mac, ip in [("00-1a-79-01-c3-0f", "203.0.113.1"), ("001A7901C30F", "203.0.113.2"), ("001a.7901.c30f", "203.0.113.3"),
                    ("00:1a:79:01:c3:0f", "203.0.113.4")]:
        stalker(server, mac, "panel-one.example", ip)
    xtream(server, "alice", "panel-one.example", "198.51.100.1")
    xtream(server, "eve", "panel-one.example", "198.51.100.2")
    # ...and on CASE-2's panel and a domain of no case: none of them may count for CASE-1.
    stalker(server, "00:1A:79:01:C3:0F", "panel-two.example", "192.0.2.1")
    xtream(server, "alice", "panel-two.example", "192.0.2.2")
    xtream(server, "alice", "no-case.example", "192.0.2.3")
    xtream(server, "mallory", "panel-two.example", "192.0.2.4")
    server.wait_rows(count=10)
    records = tmp_path / "panel.csv"  # the panel's own export writes the MAC its way
    records.write_text("account,email\n00-1A-79-01-C3-0F,box@example.org\nalice,alice@example.org\ncarol,carol@example.org\n")
    db = server.db_url
    assert imported(records, "CASE-1", db) == "3 records for case CASE-1: 3 added, 0 changed, 0 unchanged"
    assert imported(records, "CASE-9", db) == "3 records for case CASE-9: 3 added, 0 changed, 0 unchanged"
    token = server.new_token("investigator")
    report = server.api("GET", "/api/v1/subjects/report?case=CASE-1", token).json()
    by_account = {s["account"]: s for s in report["subjects"]}
    assert set(by_account) == {"00:1A:79:01:C3:0F", "alice", "carol"}
    box = by_account["00:1A:79:01:C3:0F"]
    assert box["hits"] == 4 and box["distinct_ips"] == 4
    assert sorted(t["client_ip"] for t in box["tuples"]) == ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
    assert (by_account["alice"]["hits"], by_account["alice"]["tuples"][0]["client_ip"]) == (1, "198.51.100.1")
    assert by_account["carol"]["hits"] == 0
    assert [(u["account"], u["hits"]) for u in report["unmatched_accounts"]] == [("eve", 1)]  # not CASE-2's mallory
    assert report["domains"] == ["panel-one.example"] and report["note"] is None
    # A case whose reference no domain carries: nothing can match, and the report says so.
    empty = server.api("GET", "/api/v1/subjects/report?case=CASE-9", token).json()
    assert empty["domains"] == [] and "case 'CASE-9' has no domains" in empty["note"]
    assert [s["hits"] for s in empty["subjects"]] == [0, 0, 0] and empty["unmatched_accounts"] == []
    out = tmp_path / "report.json"
    assert "3 subjects, 0 unmatched" in seized("evidence", "subjects-report", "--case", "CASE-9", "--out", str(out), "--db", db).stdout
    assert "has no domains" in json.loads(out.read_text())["note"]
    seized("evidence", "subjects-report", "--case", "CASE-2", "--out", str(out), "--db", db)
    # CASE-2 has no records: its panel's accounts are all unmatched, and only its panel's
    assert {u["account"]: u["hits"] for u in json.loads(out.read_text())["unmatched_accounts"]} == {
        "00:1A:79:01:C3:0F": 1, "alice": 1, "mallory": 1}


# -- what a file holds is imported whole or refused whole, saying why --------------------------------

def refused(path, db) -> str:
    """An import that must fail with exit code 2 and one line on stderr, no traceback; that line."""
    result = seized("subjects", "import", str(path), "--case", "C", "--db", db, check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: ")
    return result.stderr.strip().removeprefix(f"error: {path}: ")


def test_short_rows_extra_values_and_repeated_accounts_are_listed_not_lost(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    ragged = tmp_path / "ragged.csv"  # an unquoted comma moved bob's values; carol's line was cut in two
    ragged.write_text("account,email,plan\nalice,a@example.org,gold\nbob,Bob, Jr <b@example.org>,basic\n"
                      "carol,c@example\n.org,basic\ndave,d@example.org,basic\n")
    assert refused(ragged, db) == ("2 short rows (fewer values than the header's 3) on line 4 (2 values), 5 (2 values); "
                                   "1 row with more values than the header's 3 on line 3 (4 values); nothing imported")
    conflicting = tmp_path / "conflicting.csv"
    conflicting.write_text("account,email\nalice,a@example.org\nbob,b@example.org\nalice,other@example.org\n"
                           "001a7901c30f,box@example.org\n00-1A-79-01-C3-0F,box2@example.org\n")
    assert refused(conflicting, db) == ("2 accounts repeated with other values: line 4 ('alice', also on line 2), "
                                        "line 6 ('00:1A:79:01:C3:0F', also on line 5); nothing imported")
    assert listed(db) == {}
    repeated = tmp_path / "repeated.csv"  # the same row twice (an export's page boundary): imported once, and said
    repeated.write_text("account,email\nalice,a@example.org\nbob,b@example.org\nalice,a@example.org\n"
                        "001a.7901.c30f,box@example.org\n00:1a:79:01:c3:0f,box@example.org\n")
    assert imported(repeated, "C", db).splitlines() == [
        "3 records for case C: 3 added, 0 changed, 0 unchanged",
        "2 rows repeat an earlier row exactly, imported once: line 4 (= line 2), 6 (= line 5)"]
    assert set(listed(db)) == {("C", "alice"), ("C", "bob"), ("C", "00:1A:79:01:C3:0F")}


def test_a_bad_file_gets_exit_code_2_and_one_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    cases = {
        "empty.csv": (b"", "the file is empty"),
        "header-only.csv": (b"account,email\r\n", "no records in the CSV file"),
        "no-account.csv": (b"user,email\nx,y\n", "the CSV needs an 'account' column"),
        "picture.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "the file is binary (a NUL byte at offset 8), not CSV or JSON text"),
        "utf16.csv": ("account\nalice\n".encode("utf-16"), "the file is UTF-16 text; save it as UTF-8 (CSV UTF-8 or JSON)"),
        "latin1.csv": ("account,name\nalice,Zoë\n".encode("latin-1"), "line 2: not UTF-8 (byte 0xeb); save the file as UTF-8"),
        "huge.csv": (b"account,note\nalice," + b"x" * 1_000_000 + b"\n",
                     "line 2: a value over 131,072 characters long (at most 65,536); is this the right file?"),
        "quoted-huge.csv": (b'account,note\nalice,"' + b"x" * 100_000 + b'"\n',
                            "line 2: the value of 'note' is 100,000 characters long (at most 65,536); is this the right file?"),
        "unclosed.csv": (b'account,note\nalice,"never closed\nbob,x\n', "line 2: not readable as CSV (unexpected end of data)"),
        "object.json": (b'{"account": "alice"}', 'line 1: a JSON import is an array of objects ([{"account": ...}, ...])'),
        "broken.json": (b'[{"account": "alice"},\n {"account": ', "line 2: not valid JSON (Expecting value)"),
        "no-account.json": (b'[{"account": "alice"},\n {"user": "bob"}]', "line 2: an object without an 'account'"),
        "huge.json": (b'[{"account": "alice", "note": "' + b"x" * 1_000_000 + b'"}]',
                      "line 1: the value of 'note' is 1,000,000 characters long (at most 65,536); is this the right file?"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert refused(tmp_path / name, db) == message, name
    assert listed(db) == {}


def test_json_records_import_like_csv_ones(tmp_path):
    db = f"sqlite:///{tmp_path / 'subjects.db'}"
    records = tmp_path / "panel.json"
    records.write_text('[{"account": "alice", "email": "a@example.org", "plan": null},\n'
                       ' {"Account": 12345, "paid": 12.5, "tags": ["x", "y"], "vip": true},\n'
                       ' {"account": "00-1a-79-01-c3-0f", "email": "box@example.org"}]')
    assert imported(records, "J", db) == "3 records for case J: 3 added, 0 changed, 0 unchanged"
    assert listed(db) == {("J", "alice"): {"email": "a@example.org", "plan": None},
                          ("J", "12345"): {"paid": "12.5", "tags": '["x", "y"]', "vip": "true"},
                          ("J", "00:1A:79:01:C3:0F"): {"email": "box@example.org"}}
    # the same records as CSV are the same records: nothing changes
    same = tmp_path / "panel.csv"
    same.write_text("account,email,plan\nalice,a@example.org,\n")
    assert imported(same, "J", db) == "1 records for case J: 0 added, 1 changed, 0 unchanged"  # CSV has no null: plan is ""
    untyped = tmp_path / "panel-export"  # no suffix: read as JSON because it starts with '['
    untyped.write_text('[{"account": "bob"}]')
    assert imported(untyped, "J", db) == "1 records for case J: 1 added, 0 changed, 0 unchanged"


# -- the import through the management API: the same parser and rules, errors as 422 -----------------

def api_import(server, token, body, case="CASE-1", media="text/csv"):
    data = body if isinstance(body, bytes) else body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
    return server.api("POST", f"/api/v1/subjects/import?case={case}", token, content=data,
                      headers={"Content-Type": media} if media else {})


def api_listed(server, token, case=None) -> dict[tuple[str, str], dict]:
    """GET /api/v1/subjects: (case, account) -> (hits, attributes)."""
    rows = server.api("GET", "/api/v1/subjects" + (f"?case={case}" if case else ""), token).json()
    return {(row["case_ref"], row["account"]): (row["hits"], row["attributes"]) for row in rows}


def test_the_api_imports_csv_and_json_as_the_command_line_does(fresh_server):
    server = fresh_server(domains=PANELS, trusted_proxies=["127.0.0.0/8"]).start()
    token = server.new_token("investigator")
    csv_body = ("\ufeffAccount,email,plan\r\nalice,a@example.org,gold\r\n00-1A-79-01-C3-0F,box@example.org,basic\r\n"
                "alice,a@example.org,gold\r\n")
    first = api_import(server, token, csv_body)
    assert first.status_code == 200, first.text
    assert first.json() == {"case": "CASE-1", "format": "csv", "records": 2, "added": 2, "changed": 0, "unchanged": 0,
                            "repeated_rows": [{"line": 4, "same_as_line": 2}]}
    again = api_import(server, token, csv_body).json()
    assert (again["added"], again["changed"], again["unchanged"]) == (0, 0, 2)
    records = [{"account": "alice", "email": "a@example.org", "plan": "platinum"}, {"Account": 12345, "paid": 12.5, "tags": ["x"]},
               {"account": "001a.7901.c30f", "email": "box@example.org", "plan": "basic"}]
    second = api_import(server, token, records, media="application/json; charset=utf-8")
    assert second.status_code == 200, second.text
    assert second.json() == {"case": "CASE-1", "format": "json", "records": 3, "added": 1, "changed": 1, "unchanged": 1,
                             "repeated_rows": []}
    assert {key: attributes for key, (_, attributes) in api_listed(server, token, "CASE-1").items()} == {
        ("CASE-1", "alice"): {"email": "a@example.org", "plan": "platinum"},
        ("CASE-1", "12345"): {"paid": "12.5", "tags": '["x"]'},
        ("CASE-1", "00:1A:79:01:C3:0F"): {"email": "box@example.org", "plan": "basic"}}
    # the same records through the command line: nothing to change
    (server.directory / "records.json").write_text(json.dumps(records))
    assert imported(server.directory / "records.json", "CASE-1", server.db_url) == \
        "3 records for case CASE-1: 0 added, 0 changed, 3 unchanged"
    # investigators only (as the other subjects endpoints), every attempt audited
    for role in ("admin", "auditor"):
        assert api_import(server, server.admin_token if role == "admin" else server.new_token(role), csv_body).status_code == 403
    assert api_import(server, None, csv_body).status_code == 401
    audited = server.sql("SELECT role, method, endpoint, filters, rows, status FROM audit WHERE endpoint = '/api/v1/subjects/import' "
                         "ORDER BY id")
    assert [(a["role"], a["rows"], a["status"]) for a in audited] == [
        ("investigator", 2, 200), ("investigator", 2, 200), ("investigator", 3, 200), ("admin", None, 403), ("auditor", None, 403),
        (None, None, 401)]
    assert json.loads(audited[0]["filters"]) == {"case": "CASE-1"}
    # the request body is in the OpenAPI document, with both media types
    operation = server.api("GET", "/openapi.json").json()["paths"]["/api/v1/subjects/import"]["post"]
    assert operation["operationId"] == "import_subjects"
    assert set(operation["requestBody"]["content"]) == {"text/csv", "application/json"} and operation["requestBody"]["required"]
    assert {"200", "413", "415", "422"} <= set(operation["responses"])


def test_a_file_the_api_cannot_import_gets_422_and_one_clear_line(fresh_server):
    server = fresh_server(domains=PANELS).start()
    token = server.new_token("investigator")
    refusals = {
        "short and long rows": ("account,email,plan\nalice,a@example.org,gold\nbob,Bob, Jr <b@example.org>,basic\ncarol,c@example\n",
                                "text/csv", "1 short row (fewer values than the header's 3) on line 4 (2 values); "
                                            "1 row with more values than the header's 3 on line 3 (4 values); nothing imported"),
        "an account twice": ("account,email\n001a7901c30f,box@example.org\nalice,a@example.org\n00-1A-79-01-C3-0F,other@example.org\n",
                             "text/csv", "line 4: account '00:1A:79:01:C3:0F' is also on line 2, with other values; nothing imported"),
        "a 1 MB field": (b"account,note\nalice," + b"x" * 1_000_000 + b"\n", "text/csv",
                         "line 2: a value over 131,072 characters long (at most 65,536); is this the right file?"),
        "a 1 MB JSON value": (b'[{"account": "alice", "note": "' + b"x" * 1_000_000 + b'"}]', "application/json",
                              "line 1: the value of 'note' is 1,000,000 characters long (at most 65,536); is this the right file?"),
        "empty": (b"", "text/csv", "the file is empty"),
        "no account column": ("user,email\nx,y\n", "text/csv", "the CSV needs an 'account' column"),
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/csv", "the file is binary (a NUL byte at offset 8), not CSV or JSON text"),
        "UTF-16": ("account\nalice\n".encode("utf-16"), "text/csv", "the file is UTF-16 text; save it as UTF-8 (CSV UTF-8 or JSON)"),
        "Latin-1": ("account,name\nalice,Zoë\n".encode("latin-1"), "text/csv", "line 2: not UTF-8 (byte 0xeb); save the file as UTF-8"),
        "unclosed quote": (b'account,note\nalice,"never closed\nbob,x\n', "text/csv", "line 2: not readable as CSV (unexpected end of data)"),
        "JSON sent as CSV's type": ('[{"account": "alice"}]', "text/csv", "the CSV needs an 'account' column"),
        "CSV sent as JSON": ("account\nalice\n", "application/json",
                             'line 1: a JSON import is an array of objects ([{"account": ...}, ...])'),
        "broken JSON": (b'[{"account": "alice"},\n {"account": ', "application/json", "line 2: not valid JSON (Expecting value)"),
        "an object without account": (b'[{"account": "alice"},\n {"user": "bob"}]', "application/json",
                                      "line 2: an object without an 'account'"),
        "a NUL in an account": (b'[{"account": "al\\u0000ice"}]', "application/json",
                                "line 1: a NUL character (\\u0000) in the account, which is not text"),
        "a lone surrogate": (b'[{"account": "alice", "note": "\\ud800"}]', "application/json",
                             "line 1: a lone UTF-16 surrogate (\\ud800) in the value of 'note', which is not text"),
        "a number of 5000 digits": (b'[{"account": 1' + b"0" * 5000 + b"}]", "application/json",
                                    "line 1: not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
    }
    for name, (body, media, detail) in refusals.items():
        response = api_import(server, token, body, media=media)
        assert (response.status_code, response.json()) == (422, {"detail": detail}), name
    # a case that no domain carries: its records could match nothing
    response = api_import(server, token, "account\nalice\n", case="CASE-404")
    assert response.status_code == 422 and response.json()["detail"].startswith("case 'CASE-404' has no domains")
    assert api_import(server, token, "account\nalice\n", case="").status_code == 422
    missing = server.api("POST", "/api/v1/subjects/import", token, content=b"account\nalice\n", headers={"Content-Type": "text/csv"})
    assert missing.status_code == 422
    # neither CSV nor JSON by its type: 415
    for media in ("text/plain", None, "text/csv; charset=latin-1"):
        response = api_import(server, token, "account\nalice\n", media=media)
        assert response.status_code == 415 and "detail" in response.json(), media
    assert api_listed(server, token) == {}  # nothing of any of them was imported
    assert all(row["status"] < 500 for row in server.sql("SELECT status FROM audit"))


# -- the API's record list and an account's hits match as the report does ---------------------------

def test_the_api_lists_and_account_hits_match_mac_notations_and_the_cases_domains(fresh_server):
    server = fresh_server(domains=PANELS, trusted_proxies=["127.0.0.0/8"]).start()
    for mac, ip in [("00-1a-79-01-c3-0f", "203.0.113.1"), ("001A7901C30F", "203.0.113.2"), ("001a.7901.c30f", "203.0.113.3")]:
        stalker(server, mac, "panel-one.example", ip)
    xtream(server, "alice", "panel-one.example", "198.51.100.1")
    # the same box and user on another case's panel and on a domain of no case: not CASE-1's
    stalker(server, "00:1A:79:01:C3:0F", "panel-two.example", "192.0.2.1")
    xtream(server, "alice", "panel-two.example", "192.0.2.2")
    xtream(server, "alice", "no-case.example", "192.0.2.3")
    server.wait_rows(count=7)
    token = server.new_token("investigator")
    assert api_import(server, token, "account,email\n00:1a:79:01:c3:0f,box@example.org\nalice,a@example.org\n").status_code == 200
    assert api_import(server, token, "account,email\nalice,alice2@example.org\n", case="CASE-2").status_code == 200
    assert {key: hits for key, (hits, _) in api_listed(server, token).items()} == {
        ("CASE-1", "00:1A:79:01:C3:0F"): 3, ("CASE-1", "alice"): 1, ("CASE-2", "alice"): 1}
    listed_rows = server.api("GET", "/api/v1/subjects?case=CASE-1", token).json()
    box_row = next(row for row in listed_rows if row["account"] == "00:1A:79:01:C3:0F")
    assert box_row["first_seen"].endswith("Z") and box_row["first_seen"] <= box_row["last_seen"]
    # the account in any notation finds the record, and only CASE-1's panel's hits
    for written in ("00-1A-79-01-C3-0F", "001a7901c30f", "001A.7901.C30F", "00:1a:79:01:c3:0f"):
        box = server.api("GET", f"/api/v1/subjects/{written}/hits", token).json()
        assert (box["account"], box["hits"], box["domains"]) == ("00:1A:79:01:C3:0F", 3, ["panel-one.example"]), written
        assert sorted(t["client_ip"] for t in box["tuples"]) == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    # alice has a record in both cases: the hits of both cases' panels, not the domain of no case; or one case's
    alice = server.api("GET", "/api/v1/subjects/alice/hits", token).json()
    assert (alice["hits"], alice["domains"]) == (2, ["panel-one.example", "panel-two.example"])
    assert [r["case_ref"] for r in alice["records"]] == ["CASE-1", "CASE-2"]
    only = server.api("GET", "/api/v1/subjects/alice/hits?case=CASE-2", token).json()
    assert (only["hits"], [t["client_ip"] for t in only["tuples"]], only["records"]) == (
        1, ["192.0.2.2"], [{"case_ref": "CASE-2", "attributes": {"email": "alice2@example.org"}}])
    assert server.api("GET", "/api/v1/subjects/001a7901c30f/hits?case=CASE-2", token).status_code == 404
    # the command line's list counts alike
    out = seized("subjects", "list", "--case", "CASE-1", "--db", server.db_url).stdout
    assert {line.split()[1]: int(line.split()[2]) for line in out.splitlines()} == {"00:1A:79:01:C3:0F": 3, "alice": 1}


# -- rows outside the hash chain are never counted -------------------------------------------------

def forge(server, hit: dict, new_id: int, client_ip: str) -> None:
    """A copy of `hit` (a hit_rows row) under another id, uid and client IP, inserted past the app
    as whoever can write the database can: no hash chain makes such a row."""
    row = {**hit, "id": new_id, "uid": os.urandom(16), "client_ip": client_ip}
    if "client_inet" in row:
        row["client_inet"] = client_ip
    columns = ", ".join(row)
    server.sql(f"INSERT INTO hit_rows ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


def test_rows_with_an_id_below_one_are_not_counted(tmp_path, fresh_server):
    server = fresh_server(domains=PANELS, trusted_proxies=["127.0.0.0/8"]).start()
    xtream(server, "alice", "panel-one.example", "198.51.100.1")
    stalker(server, "00:1a:79:01:c3:0f", "panel-one.example", "198.51.100.2")
    xtream(server, "eve", "panel-one.example", "198.51.100.3")
    server.wait_rows(count=3)
    token = server.new_token("investigator")
    assert api_import(server, token, "account\nalice\n001a7901c30f\n").status_code == 200
    by_ip = {row["client_ip"]: row for row in server.sql("SELECT * FROM hit_rows WHERE id > 0")}
    forge(server, by_ip["198.51.100.1"], 0, "192.0.2.66")  # alice's
    forge(server, by_ip["198.51.100.2"], -5, "192.0.2.67")  # the box's
    forge(server, by_ip["198.51.100.3"], -6, "192.0.2.68")  # eve's (no record: would be unmatched)
    assert len(server.sql("SELECT id FROM hit_rows WHERE id < 1")) == 3
    report = server.api("GET", "/api/v1/subjects/report?case=CASE-1", token).json()
    counted = {s["account"]: (s["hits"], [t["client_ip"] for t in s["tuples"]]) for s in report["subjects"]}
    assert counted == {"alice": (1, ["198.51.100.1"]), "00:1A:79:01:C3:0F": (1, ["198.51.100.2"])}
    assert [(u["account"], u["hits"]) for u in report["unmatched_accounts"]] == [("eve", 1)]
    assert report["outside_chain"] == 3
    assert {key: hits for key, (hits, _) in api_listed(server, token).items()} == {
        ("CASE-1", "alice"): 1, ("CASE-1", "00:1A:79:01:C3:0F"): 1}
    alice = server.api("GET", "/api/v1/subjects/alice/hits", token).json()
    assert (alice["hits"], alice["distinct_ips"], [t["client_ip"] for t in alice["tuples"]], alice["outside_chain"]) == (
        1, 1, ["198.51.100.1"], 3)
    assert server.api("GET", "/api/v1/subjects/001A.7901.C30F/hits", token).json()["hits"] == 1
    out = tmp_path / "report.json"
    seized("evidence", "subjects-report", "--case", "CASE-1", "--out", str(out), "--db", server.db_url)
    written = json.loads(out.read_text())
    assert {s["account"]: s["hits"] for s in written["subjects"]} == {"alice": 1, "00:1A:79:01:C3:0F": 1}
    assert written["outside_chain"] == 3 and "192.0.2.6" not in out.read_text()
