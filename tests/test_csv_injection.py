"""CSV formula injection (issue 12, OWASP): a visitor chooses the path, the Host and the User-Agent
that end up in the CSVs seized writes. A cell beginning with =, +, -, @, tab or CR is written as a
single quote before the text, quoted, in the API's and the CLI's export and in a package's hits.csv;
the package still checks (seized evidence check and its verify.js) and NDJSON keeps the values as
they are. Through a real server, on both stores (SQLite builds the CSV lines in SQL)."""

import csv
import io
import json
import subprocess
import zipfile

import pytest

from commands import seized
from helpers import raw_request, request

FORMULA = "=cmd|'/c calc'!A1"
STARTS = ("=", "+", "-", "@", "\t", "\r")


def cells_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_neutralised(rows: list[list[str]]) -> None:
    """No cell a spreadsheet would evaluate: a text cell beginning so has its single quote (a
    negative number is no text; no field of these rows is one)."""
    bad = [cell for row in rows for cell in row if cell.startswith(STARTS)]
    assert not bad, f"cells left as formulas: {bad}"


@pytest.fixture
def hostile(tmp_path, fresh_server):
    key_file = tmp_path / "signing.pem"
    public_key = seized("evidence", "keygen", "--out", str(key_file)).stdout.strip()
    server = fresh_server(signing_key_file=str(key_file), checkpoint_every_hits=2).start()
    sent = [
        request(server.public_port, target="/csv-a", headers=[("User-Agent", FORMULA)]),
        request(server.public_port, target="/csv-b?-2+3", host="@SUM(1+1)", headers=[("User-Agent", "+1")]),
        request(server.public_port, method="-X", target="/csv-c", headers=[("User-Agent", "-1")]),
        raw_request(server.public_port, f"GET {FORMULA} HTTP/1.1\r\nHost: seized-iptv.example\r\nUser-Agent: @x\r\n"
                                        "Connection: close\r\n\r\n".encode()),
    ]
    assert all(response.status for response in sent)
    server.wait_rows(count=4)
    return server, public_key


def test_exports_and_packages_neutralise_formulas(tmp_path, hostile):
    server, public_key = hostile
    stored = server.rows()
    assert {row["user_agent"] for row in stored} >= {FORMULA, "+1", "-1", "@x"}
    formula_path = next(row["path"] for row in stored if row["user_agent"] == "@x")
    token = server.new_token("investigator")

    # the API's export (SQLite: lines built in SQL; PostgreSQL: the Python writer)
    response = server.api("GET", "/api/v1/hits/export?format=csv", token)
    assert response.status_code == 200, response.text
    rows = cells_of(response.text)
    assert_neutralised(rows)
    header = rows[0]
    by_ua = {row[header.index("user_agent")]: dict(zip(header, row)) for row in rows[1:]}
    assert set(by_ua) >= {"'" + FORMULA, "'+1", "'-1", "'@x"}
    assert by_ua["'+1"]["host"] == "'@SUM(1+1)" and by_ua["'+1"]["query"] == "'-2+3"
    assert by_ua["'-1"]["method"] == "'-X"
    assert by_ua["'@x"]["path"] == ("'" + formula_path if formula_path.startswith(STARTS) else formula_path)
    assert f'"\'{FORMULA}"' in response.text  # neutralised cells are quoted too
    assert by_ua["'+1"]["client_port"].isdigit()  # numbers as they are

    # NDJSON carries the values as they are
    ndjson = server.api("GET", "/api/v1/hits/export?format=ndjson", token).text
    assert {json.loads(line)["user_agent"] for line in ndjson.splitlines()} >= {FORMULA, "+1", "-1", "@x"}

    # the CLI's export, straight from the database, and the page of `hits query`
    exported = seized("hits", "export", "--config", str(server.config_path), "--format", "csv").stdout
    assert cells_of(exported) == rows
    queried = seized("hits", "query", "--config", str(server.config_path), "--format", "csv").stdout
    assert_neutralised(cells_of(queried))

    # a package's hits.csv, still checked by both checkers
    package = server.api("GET", "/api/v1/evidence/package?since=1970-01-01T00:00:00Z", token)
    assert package.status_code == 200, package.text
    zipped = tmp_path / "package.zip"
    zipped.write_bytes(package.content)
    with zipfile.ZipFile(zipped) as archive:
        hits_csv = archive.read("hits.csv").decode()
        archive.extractall(tmp_path / "unzipped")
    package_rows = cells_of(hits_csv)
    assert_neutralised(package_rows)
    user_agents = {row[package_rows[0].index("user_agent")] for row in package_rows[1:]}
    assert user_agents >= {"'" + FORMULA, "'+1", "'-1", "'@x"}
    assert seized("evidence", "check", str(zipped), "--public-key", public_key).returncode == 0
    checked = subprocess.run(["node", str(tmp_path / "unzipped" / "verify.js"), "package", str(tmp_path / "unzipped"),
                              "--public-key", public_key], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout.strip().endswith("OK"), checked.stdout + checked.stderr
