"""`seized domains import` and POST /api/v1/domains/import: plain lists and CSV, every invalid line
named, nothing written while any is invalid (unless asked to skip them), existing domains kept by a
list and updated by a CSV row."""

from __future__ import annotations

import json

from commands import fails, seized

LIST = """# seized on 2026-11-30
first.example
Second.Example.   # trailing dot and case: as DNS has it
bücher.example
first.example
"""


def listed(db: str) -> dict:
    return {row["name"]: row for row in json.loads(seized("domains", "list", "--format", "json", "--db", db).stdout)}


def test_a_plain_list_with_an_invalid_line_imports_nothing_and_names_the_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'seized.db'}"
    source = tmp_path / "domains.txt"
    source.write_text(LIST + "not a domain\nhttp://x.example/\ntv\n" + "a" * 64 + ".example\n", encoding="utf-8")
    said = fails("domains", "import", str(source), "--db", db, exit_code=1)
    assert f"{source}:6: 'not a domain': not a DNS name" in said
    assert f"{source}:7: 'http://x.example/': not a DNS name" in said
    assert f"{source}:8: 'tv': a single label" in said
    assert f"{source}:9: '{'a' * 64}.example': not a DNS name" in said
    assert "4 invalid line(s): nothing imported" in said
    assert listed(db) == {}

    out = seized("domains", "import", str(source), "--db", db, "--skip-invalid")
    assert "3 added, 0 updated, 0 unchanged, 4 invalid" in out.stdout
    assert f"{source}:5: first.example again (first on line 2): ignored" in out.stderr
    assert sorted(listed(db)) == ["first.example", "second.example", "xn--bcher-kva.example"]


def test_dry_run_changes_nothing_and_existing_domains_are_kept_by_a_list(tmp_path):
    db = f"sqlite:///{tmp_path / 'seized.db'}"
    seized("domains", "add", "first.example", "--agency", "Kept Agency", "--db", db)
    seized("domains", "add", "off.example", "--db", db)
    seized("domains", "remove", "off.example", "--db", db)
    source = tmp_path / "domains.txt"
    source.write_text(LIST, encoding="utf-8")
    assert "2 would be added, 0 would be updated, 1 unchanged, 0 invalid (dry run" in \
        seized("domains", "import", str(source), "--dry-run", "--db", db).stdout
    assert list(listed(db)) == ["first.example"]
    seized("domains", "import", str(source), "--db", db)
    after = listed(db)
    assert sorted(after) == ["first.example", "second.example", "xn--bcher-kva.example"]
    assert after["first.example"]["agency"] == "Kept Agency"


def test_csv_rows_carry_notice_fields_and_update_existing_domains(tmp_path):
    db = f"sqlite:///{tmp_path / 'seized.db'}"
    seized("domains", "add", "first.example", "--agency", "Old Agency", "--case-ref", "OLD-1", "--db", db)
    source = tmp_path / "domains.csv"
    source.write_text("\ufeffDomain,Agency,legal_basis,status,notes,active,addresses\r\n"
                      "first.example,New Agency,Art. 1,410,\"two\nlines\",true,192.0.2.1\r\n"
                      "second.example,,,,,no,\r\n", encoding="utf-8")
    out = seized("domains", "import", str(source), "--db", db).stdout
    assert "1 added, 1 updated, 0 unchanged, 0 invalid" in out
    rows = listed(db)
    first = rows["first.example"]
    assert (first["agency"], first["case_ref"], first["legal_basis"], first["status"], first["notes"], first["active"]) == \
        ("New Agency", "OLD-1", "Art. 1", 410, "two\nlines", True)  # case_ref: not a column, so kept
    assert rows["second.example"]["active"] is False and rows["second.example"]["agency"] is None
    assert "0 added, 0 updated, 2 unchanged" in seized("domains", "import", str(source), "--db", db).stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("domain,status,active\r\nok.example,999,true\r\nalso.example,200,maybe\r\n", encoding="utf-8")
    said = fails("domains", "import", str(bad), "--db", db, exit_code=1)
    assert f"{bad}:2: 'ok.example': status: Input should be less than or equal to 599" in said
    assert f"{bad}:3: 'also.example': active must be true or false, not 'maybe'" in said
    headless = tmp_path / "headless.csv"
    headless.write_text("a.example,b\r\n", encoding="utf-8")
    assert "names no domain column" in fails("domains", "import", str(headless), "--db", db, exit_code=2)
    assert "No such file or directory" in fails("domains", "import", str(tmp_path / "none.txt"), "--db", db, exit_code=2)


def test_the_api_imports_a_list_or_csv_and_refuses_invalid_lines_with_a_report(server):
    admin = server.admin_token
    names = ["api-import-one.example", "api-import-two.example"]
    try:
        refused = server.api("POST", "/api/v1/domains/import", admin, content=f"{names[0]}\nbad name\n",
                             headers={"Content-Type": "text/plain"})
        assert refused.status_code == 422
        assert refused.json()["invalid"] == [{"line": 2, "text": "bad name", "reason": refused.json()["invalid"][0]["reason"]}]
        assert server.api("GET", f"/api/v1/domains/{names[0]}", admin).status_code == 404

        dry = server.api("POST", "/api/v1/domains/import", admin, params={"skip_invalid": "true", "dry_run": "true"},
                         content=f"{names[0]}\nbad name\n", headers={"Content-Type": "text/plain"})
        assert dry.status_code == 200 and dry.json()["added"] == [names[0]] and dry.json()["dry_run"] is True
        assert server.api("GET", f"/api/v1/domains/{names[0]}", admin).status_code == 404

        done = server.api("POST", "/api/v1/domains/import", admin, content=f"domain,agency\n{names[0]},A1\n{names[1]},A2\n",
                          headers={"Content-Type": "text/csv; charset=utf-8"})
        assert done.status_code == 200, done.text
        assert done.json() == {"dry_run": False, "added": names, "updated": [], "unchanged": [], "invalid": [],
                               "duplicates": []}
        assert server.api("GET", f"/api/v1/domains/{names[1]}", admin).json()["agency"] == "A2"

        binary = server.api("POST", "/api/v1/domains/import", admin, content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
        assert binary.status_code == 422 and binary.json()["detail"] == "the body is not UTF-8 text"
        investigator = server.new_token("investigator")
        assert server.api("POST", "/api/v1/domains/import", investigator, content=names[0]).status_code == 403
    finally:
        for name in names:
            server.api("DELETE", f"/api/v1/domains/{name}", admin)
