"""Nothing outside the chain (issue 11): rows that `seized verify` does not account for (ids below 1,
which seized never gives; a row without a hash inside a node's chain) never show in what the CLI
and the API read out of the hit log, and the readers say when they left rows with ids below 1 out.
Rows forged as an attacker with the database would, past the app (tests/helpers.tamper)."""

import csv
import io
import json

import pytest

from commands import seized
from helpers import Server, sql, tamper

HEADER = "X-Seized-Outside-Chain"
UNHASHED, LEGACY = 10**9, 10**9 + 1  # ids after the chain's start; LEGACY's node is recorded in legacy_unhashed
INSIDE = [f"/inside/{i}" for i in range(5)]
FORGED = {"/forged/zero", "/forged/negative", "/forged/unhashed"}
WARNING = "warning: 2 rows outside the chain"


def forge(url: str, backend: str, source_id: int, new_id: int, path: str, *, hashed: bool = True,
          node: str | None = None) -> tuple[str, tuple]:
    """An INSERT copying hit `source_id` into hit_rows as `new_id` with `path` (and a new uid), its
    hashes kept or (not `hashed`) cleared, on `node` or the source's own."""
    stored = sql(url, "SELECT * FROM hit_rows ORDER BY id LIMIT 1")[0]  # hit_rows' columns, whichever store
    columns = [c for c in stored if c not in ("id", "uid", "path", "node", "prev_hash", "hash")]
    uid = "randomblob(16)" if backend == "sqlite" else "decode(md5(random()::text), 'hex')"
    hashes = "prev_hash, hash" if hashed else "NULL, NULL"
    return (f"INSERT INTO hit_rows (id, uid, path, node, {', '.join(columns)}, prev_hash, hash) "
            f"SELECT ?, {uid}, ?, COALESCE(?, node), {', '.join(columns)}, {hashes} FROM hit_rows WHERE id = ?",
            (new_id, path, node, source_id))


@pytest.fixture(scope="module")
def forged(tmp_path_factory, databases, backend):
    """A running server with five real hits, and beside them, forged: id 0, id -5, one without its
    hashes after the chain started (all three outside the chain), and one without hashes on a node
    recorded in legacy_unhashed as stored before its chain (accounted for: it shows)."""
    directory = tmp_path_factory.mktemp("outside")
    server = Server(directory, db_url=databases.url(directory), domains=[{"name": "seized-iptv.example"}]).start()
    try:
        for path in INSIDE:
            server.request(target=path)
        rows = server.wait_rows(count=len(INSIDE))
        assert [r["path"] for r in rows] == INSIDE and all(r["hash"] for r in rows)
        url = server.db_url
        tamper(url,
               forge(url, backend, 1, 0, "/forged/zero"),
               forge(url, backend, 2, -5, "/forged/negative"),
               forge(url, backend, 3, UNHASHED, "/forged/unhashed", hashed=False),
               forge(url, backend, 4, LEGACY, "/legacy/0", hashed=False, node="legacy-node"),
               ("INSERT INTO legacy_unhashed (node, last_id) VALUES (?, ?)", ("legacy-node", LEGACY)))
        assert len(server.rows()) == len(INSIDE) + 4
        server.token = server.new_token("investigator")
        yield server
    finally:
        assert server.stop() == 0


def shown(paths) -> list[str]:
    return sorted(paths)


EXPECTED = sorted(INSIDE + ["/legacy/0"])


# -- the command line ----------------------------------------------------------------------------

def test_cli_query_and_list_leave_them_out_and_warn(forged):
    db = forged.db_url
    for command in (["hits", "list", "--limit", "100"], ["hits", "query"], ["hits", "query", "--domain", "seized-iptv.example"],
                    ["hits", "query", "--since", "2000-01-01T00:00:00Z"], ["hits", "query", "--cidr", "0.0.0.0/0"]):
        result = seized(*command, "--db", db, "--format", "ndjson")
        items = [json.loads(line) for line in result.stdout.splitlines()]
        assert shown(i["path"] for i in items) == EXPECTED, command
        assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
        assert WARNING in result.stderr, command
    # The table too; and a query no forged row matches says nothing.
    table = seized("hits", "query", "--db", db)
    assert "/forged" not in table.stdout and WARNING in table.stderr
    clean = seized("hits", "query", "--db", db, "--path-prefix", "/inside/", "--format", "ndjson")
    assert len(clean.stdout.splitlines()) == len(INSIDE) and "outside the chain" not in clean.stderr
    only = seized("hits", "query", "--db", db, "--path-prefix", "/forged/", "--format", "ndjson")
    assert only.stdout == "" and WARNING in only.stderr


def test_a_page_short_of_rows_outside_the_chain_is_filled_from_further_down(forged):
    """A range filter's page is read by id from its index, where a missing hash does not show: the
    row left out for it is made up from older hits, so a page is still full."""
    for command in (["--since", "2000-01-01T00:00:00Z"], ["--cidr", "0.0.0.0/0"], []):
        result = seized("hits", "query", "--db", forged.db_url, *command, "--limit", "2", "--format", "ndjson")
        assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == ["/legacy/0", INSIDE[-1]], command


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_cli_export_leaves_them_out_and_warns(forged, fmt):
    result = seized("hits", "export", "--db", forged.db_url, "--format", fmt)
    if fmt == "csv":
        paths = [row["path"] for row in csv.DictReader(io.StringIO(result.stdout))]
    else:
        paths = [json.loads(line)["path"] for line in result.stdout.splitlines()]
    assert shown(paths) == EXPECTED and WARNING in result.stderr
    filtered = seized("hits", "export", "--db", forged.db_url, "--format", fmt, "--since", "2000-01-01T00:00:00Z")
    assert "/forged" not in filtered.stdout and WARNING in filtered.stderr


def test_cli_through_the_api_warns_too(forged):
    remote = ("--url", forged.admin_url("/"), "--token", forged.token)
    query = seized("hits", "query", *remote, "--format", "ndjson")
    assert shown(json.loads(line)["path"] for line in query.stdout.splitlines()) == EXPECTED
    assert WARNING in query.stderr
    export = seized("hits", "export", *remote, "--format", "ndjson")
    assert shown(json.loads(line)["path"] for line in export.stdout.splitlines()) == EXPECTED
    assert WARNING in export.stderr


# -- the API ---------------------------------------------------------------------------------------

def test_api_list_leaves_them_out_and_says_how_many(forged):
    api = lambda query="": forged.api("GET", f"/api/v1/hits{query}", forged.token)  # noqa: E731
    for query in ("", "?domain=seized-iptv.example", "?since=2000-01-01T00:00:00Z", "?cidr=0.0.0.0/0"):
        response = api(query)
        assert response.status_code == 200, response.text
        assert shown(i["path"] for i in response.json()["items"]) == EXPECTED, query
        assert response.headers[HEADER] == "2"
    # Page by page, still none of them, and every page says so.
    paths, cursor = [], None
    while True:
        response = api("?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert response.headers[HEADER] == "2"
        paths += [i["path"] for i in response.json()["items"]]
        if not (cursor := response.json()["next_cursor"]):
            break
    assert shown(paths) == EXPECTED
    clean = api("?path_prefix=/inside/")
    assert len(clean.json()["items"]) == len(INSIDE) and HEADER not in clean.headers


def test_api_single_hit_outside_the_chain_is_not_found(forged):
    for hit_id in (0, -5, UNHASHED):
        response = forged.api("GET", f"/api/v1/hits/{hit_id}", forged.token)
        assert response.status_code == 404, (hit_id, response.text)
    assert forged.api("GET", "/api/v1/hits/1", forged.token).json()["path"] == INSIDE[0]
    assert forged.api("GET", f"/api/v1/hits/{LEGACY}", forged.token).json()["path"] == "/legacy/0"


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_api_export_leaves_them_out_and_says_how_many(forged, fmt):
    for query in ("", "&since=2000-01-01T00:00:00Z", "&domain=seized-iptv.example"):
        response = forged.api("GET", f"/api/v1/hits/export?format={fmt}{query}", forged.token)
        assert response.status_code == 200 and response.headers[HEADER] == "2"
        if fmt == "csv":
            paths = [row["path"] for row in csv.DictReader(io.StringIO(response.text))]
        else:
            paths = [json.loads(line)["path"] for line in response.text.splitlines()]
        assert shown(paths) == EXPECTED, query
    clean = forged.api("GET", f"/api/v1/hits/export?format={fmt}&path_prefix=/inside/", forged.token)
    assert clean.status_code == 200 and HEADER not in clean.headers


def test_api_stats_count_none_of_them(forged):
    for group in ("domain", "day", "client_ip"):
        response = forged.api("GET", f"/api/v1/stats?group={group}", forged.token)
        assert response.status_code == 200 and response.headers[HEADER] == "2"
        assert sum(row["hits"] for row in response.json()["rows"]) == len(EXPECTED), group
    by_path = forged.api("GET", "/api/v1/stats?group=domain&path_prefix=/forged/", forged.token)
    assert by_path.json()["rows"] == [] and by_path.headers[HEADER] == "2"


def test_the_asn_plan_counts_none_of_them(forged):
    response = forged.api("GET", "/api/v1/evidence/plan", forged.token)
    assert response.status_code == 200, response.text
    assert sum(row["hits"] for row in response.json()) == len(EXPECTED)
    lines = seized("evidence", "plan", "--db", forged.db_url).stdout.splitlines()[1:]
    assert sum(int(line.split()[1]) for line in lines) == len(EXPECTED)
