"""The management API through a real server: roles, audit, filters, pages, exports, stats, domains."""

import csv
import io
import json
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from commands import fails, seized
from helpers import request

ROLES = ("admin", "investigator", "auditor")


def marker() -> str:
    return os.urandom(5).hex()


def hit(server, path: str, ip: str | None = None, port: int | None = None, host="seized-iptv.example",
        method="GET", ua="TestAgent/1.0"):
    headers = [("User-Agent", ua)]
    if ip:
        headers.append(("X-Forwarded-For", ip))
    if port:
        headers.append(("X-Real-Port", str(port)))
    return request(server.public_port, method, path, host=host, headers=headers)


def wait_stored(server, path_prefix: str, count: int):
    rows = server.wait_rows("substr(path, 1, ?) = ?", (len(path_prefix), path_prefix), count=count)
    assert len(rows) == count
    return rows


# -- access ----------------------------------------------------------------------------------

ENDPOINTS = [  # method, path, body, the role allowed
    ("GET", "/api/v1/hits", None, "investigator"),
    ("GET", "/api/v1/hits/1", None, "investigator"),
    ("GET", "/api/v1/hits/export?format=ndjson&path_prefix=/nothing-here", None, "investigator"),
    ("GET", "/api/v1/stats?group=day", None, "investigator"),
    ("GET", "/api/v1/domains", None, "admin"),
    ("GET", "/api/v1/domains/seized-iptv.example", None, "admin"),
    ("PATCH", "/api/v1/domains/plain200.example", {"notes": "touched"}, "admin"),
    ("GET", "/api/v1/tokens", None, "admin"),
    ("GET", "/api/v1/settings", None, "admin"),
    ("GET", "/api/v1/audit", None, "auditor"),
]


@pytest.mark.parametrize("method, path, body, allowed", ENDPOINTS)
def test_role_matrix_and_an_audit_row_for_every_call(api_server, method, path, body, allowed):
    hit(api_server, "/matrix-seed")
    assert api_server.wait_rows("id = 1")  # so /hits/1 exists
    tag = marker()
    path = path + ("&" if "?" in path else "?") + f"marker={tag}"
    expected = {}
    for role in ROLES:
        response = api_server.api(method, path, api_server.tokens[role], json=body)
        expected[role] = response.status_code
        if role == allowed:
            assert response.status_code in (200, 201, 204), response.text
        else:
            assert response.status_code == 403, response.text
    missing = api_server.api(method, path, json=body)
    wrong = api_server.api(method, path, "sz_000000000000_" + "A" * 43, json=body)
    garbage = api_server.api(method, path, json=body, headers={"Authorization": "Basic YTpi"})
    for response in (missing, wrong, garbage):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    audit = api_server.api("GET", "/api/v1/audit?limit=1000", api_server.tokens["auditor"]).json()["items"]
    mine = [row for row in audit if row["filters"].get("marker") == tag]
    # an export is also audited before its first byte: a "started" row, then the one with the count
    started = [row for row in mine if row["filters"].get("_audit") == "started"]
    assert [row["role"] for row in started] == (["investigator"] if "/export" in path else [])
    mine = [row for row in mine if row not in started]
    assert len(mine) == 6
    by_token = {row["role"]: row for row in mine if row["role"]}
    for role in ROLES:
        row = by_token[role]
        assert (row["method"], row["endpoint"], row["status"]) == (method, path.split("?")[0], expected[role])
        assert row["client_ip"] == "127.0.0.1"
        assert row["token_name"]
    anonymous = [row for row in mine if row["token_name"] is None]
    assert sorted(row["status"] for row in anonymous) == [401, 401, 401]


def test_expired_and_revoked_tokens_are_refused(api_server):
    short = api_server.new_token("investigator", expires_days=3 / 86400)  # three seconds
    made = time.monotonic()
    assert api_server.api("GET", "/api/v1/hits?limit=1", short).status_code == 200  # it works until it expires
    assert time.monotonic() - made < 2, "too slow to see the token work before it expires"
    revoked_name = f"revoked-{marker()}"
    revoked = api_server.new_token("investigator", name=revoked_name)
    assert api_server.api("GET", "/api/v1/hits?limit=1", revoked).status_code == 200
    assert api_server.api("DELETE", f"/api/v1/tokens/{revoked_name}", api_server.tokens["admin"]).status_code == 204
    assert api_server.api("GET", "/api/v1/hits?limit=1", revoked).status_code == 401
    time.sleep(max(0.0, made + 3.5 - time.monotonic()))
    assert api_server.api("GET", "/api/v1/hits?limit=1", short).status_code == 401
    listed = api_server.api("GET", "/api/v1/tokens", api_server.tokens["admin"]).json()
    assert all("token" not in row and "secret_sha256" not in row for row in listed)
    assert next(row for row in listed if row["name"] == revoked_name)["revoked_at"]


def test_only_hashes_of_tokens_are_stored(api_server):
    stored = json.dumps(api_server.sql("SELECT * FROM tokens"))
    for token in api_server.tokens.values():
        assert token not in stored
        assert token.split("_", 2)[2] not in stored


def test_repeated_failures_are_slowed_and_counted(fresh_server):
    server = fresh_server(domains=[], auth_failure_limit=3, auth_failure_window_s=30).start()
    good = server.admin_token
    statuses = [server.api("GET", "/api/v1/tokens", "sz_bad").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    throttled = server.api("GET", "/api/v1/tokens", "sz_bad")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 31
    assert server.api("GET", "/api/v1/tokens", good).status_code == 429  # the address is slowed, whoever it is
    statuses = [row["status"] for row in server.sql("SELECT status FROM audit ORDER BY id")]
    assert statuses == [401, 401, 401, 429, 429]
    ready = server.api("GET", "/readyz").json()
    assert (ready["auth_failures"], ready["auth_throttled"]) == (3, 2)


def test_the_audit_log_cannot_be_changed(api_server):
    auditor = api_server.tokens["auditor"]
    assert api_server.api("DELETE", "/api/v1/audit", auditor).status_code == 405
    assert api_server.api("PATCH", "/api/v1/audit", auditor, json={}).status_code == 405
    for statement in ("DELETE FROM audit", "UPDATE audit SET status = 200"):
        with pytest.raises(Exception, match="append-only"):
            api_server.sql(statement)


def test_docs_and_probes(api_server):
    assert api_server.api("GET", "/openapi.json").json()["info"]["title"] == "seized management API"
    assert "swagger" in api_server.api("GET", "/docs").text.lower()
    assert api_server.api("GET", "/healthz").json()["status"] == "ok"
    ready = api_server.api("GET", "/readyz").json()
    assert ready["ready"] and ready["database"] and ready["problems"] == []
    assert ready["ingest"]["alive"] and ready["ingest"]["database_ok"]
    assert all(worker["alive"] for worker in ready["workers"])
    assert {"received", "journaled", "held", "lost"} <= set(ready["journal"])
    assert ready["journal"]["lost"] == 0


# -- hits ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded(api_server):
    """Hits with known client IPs (v4 and v6), ports, methods, agents, hosts."""
    base = f"/filters-{marker()}"
    shapes = [
        ("203.0.113.5", 40001, "seized-iptv.example", "GET", "IPTVSmartersPro"),
        ("203.0.113.77", 40002, "seized-iptv.example", "POST", "VLC/3.0.20 LibVLC/3.0.20"),
        ("198.51.100.9", 40003, "iptv-pirata.example", "GET", "okhttp/4.9"),
        ("2001:db8::5", 40004, "www.seized-iptv.example", "GET", "Kodi/20.2"),
        ("2001:db8:ffff::1", 40005, "plain200.example", "HEAD", "TiviMate/4.7"),
        ("2a00:1450::1", 40006, "unknown.example", "GET", "Mozilla/5.0"),
    ]
    responses = [hit(api_server, f"{base}/{i}", ip, port, host, method, ua)
                 for i, (ip, port, host, method, ua) in enumerate(shapes)]
    rows = wait_stored(api_server, base, len(shapes))
    return base, rows, responses


def ids(api_server, query: str) -> list[int]:
    response = api_server.api("GET", f"/api/v1/hits?limit=1000&{query}", api_server.tokens["investigator"])
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize("query, expected", [
    ("ip=203.0.113.5", [0]),
    ("cidr=203.0.113.0/24", [0, 1]),
    ("cidr=203.0.113.64/26", [1]),
    ("cidr=2001:db8::/32", [3, 4]),
    ("cidr=2001:db8::/48", [3]),
    ("cidr=0.0.0.0/0", [0, 1, 2]),
    ("ip=2001:DB8:0::5", [3]),
    ("port=40003", [2]),
    ("domain=seized-iptv.example", [0, 1, 3]),
    ("domain=Iptv-Pirata.Example", [2]),
    ("method=POST", [1]),
    ("ua=libvlc", [1]),
    ("status=200", [4]),
    ("status=451&method=GET", [0, 2, 3, 5]),
    ("node=test-node", [0, 1, 2, 3, 4, 5]),
    ("node=other", []),
])
def test_filters(api_server, seeded, query, expected):
    base, rows, _ = seeded
    found = ids(api_server, f"path_prefix={base}/&{query}")
    assert found == sorted((rows[i]["id"] for i in expected), reverse=True)


def test_time_filters(api_server, seeded):
    base, rows, _ = seeded
    middle = rows[3]["received_at"]
    assert ids(api_server, f"path_prefix={base}/&since={middle}") == [r["id"] for r in reversed(rows[3:])]
    assert ids(api_server, f"path_prefix={base}/&until={middle}") == [r["id"] for r in reversed(rows[:3])]
    # Any RFC 3339 offset names the same instant.
    moment = datetime.strptime(middle, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    shifted = quote(moment.astimezone(timezone(timedelta(hours=2))).isoformat())
    assert ids(api_server, f"path_prefix={base}/&since={shifted}") == [r["id"] for r in reversed(rows[3:])]


@pytest.mark.parametrize("query", ["cidr=300.1.1.0/24", "ip=not-an-ip", "since=yesterday", "port=70000",
                                   "limit=1001", "limit=0", "cursor=abc", "status=99"])
def test_invalid_filters_are_clear_errors(api_server, query):
    response = api_server.api("GET", f"/api/v1/hits?{query}", api_server.tokens["investigator"])
    assert response.status_code == 422
    assert response.json()["detail"]


def test_one_hit_with_every_field(api_server, seeded):
    _, rows, responses = seeded
    item = api_server.api("GET", f"/api/v1/hits/{rows[1]['id']}", api_server.tokens["investigator"]).json()
    assert item["client_ip"] == "203.0.113.77" and item["client_port"] == 40002
    assert item["peer_port"] == responses[1].local_port
    assert ["x-forwarded-for", "203.0.113.77"] in item["headers"]
    assert set(item) >= {"uid", "received_at", "host", "domain", "query", "body_sha256", "duration_ms", "error"}
    assert "client_ip_key" not in item
    missing = api_server.api("GET", "/api/v1/hits/999999999", api_server.tokens["investigator"])
    assert missing.status_code == 404


def test_stats(api_server, seeded):
    base, rows, _ = seeded
    token = api_server.tokens["investigator"]
    by_domain = api_server.api("GET", f"/api/v1/stats?group=domain&path_prefix={base}/", token).json()
    assert by_domain["group"] == "domain"
    counts = {row["key"]: (row["hits"], row["distinct_ips"]) for row in by_domain["rows"]}
    assert counts == {"seized-iptv.example": (3, 3), "iptv-pirata.example": (1, 1), "plain200.example": (1, 1), None: (1, 1)}
    by_ip = api_server.api("GET", f"/api/v1/stats?group=client_ip&path_prefix={base}/&cidr=2001:db8::/32", token).json()
    assert {row["key"] for row in by_ip["rows"]} == {"2001:db8::5", "2001:db8:ffff::1"}
    by_day = api_server.api("GET", f"/api/v1/stats?group=day&path_prefix={base}/", token).json()["rows"]
    assert sum(row["hits"] for row in by_day) == 6 and re.match(r"^\d{4}-\d\d-\d\d$", by_day[0]["key"])
    by_hour = api_server.api("GET", f"/api/v1/stats?group=hour&path_prefix={base}/", token).json()["rows"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:00Z$", by_hour[0]["key"])
    assert api_server.api("GET", "/api/v1/stats?group=weekday", token).status_code == 422


def test_export_csv_follows_rfc_4180(api_server, seeded):
    base, rows, _ = seeded
    response = api_server.api("GET", f"/api/v1/hits/export?format=csv&path_prefix={base}/", api_server.tokens["investigator"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.count("\r\n") == len(rows) + 1
    parsed = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [int(r["id"]) for r in parsed] == [r["id"] for r in rows]  # oldest first
    for exported, stored in zip(parsed, rows, strict=True):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", exported["received_at"])
        assert exported["received_at"] == stored["received_at"]  # to the microsecond, as stored
        assert json.loads(exported["headers"]) == json.loads(stored["headers"])  # commas and quotes survive
        assert exported["client_port"] == str(stored["client_port"])


def test_export_ndjson(api_server, seeded):
    base, rows, _ = seeded
    response = api_server.api("GET", f"/api/v1/hits/export?format=ndjson&path_prefix={base}/&cidr=2001:db8::/32",
                              api_server.tokens["investigator"])
    assert response.headers["content-type"].startswith("application/x-ndjson")
    items = [json.loads(line) for line in response.text.splitlines()]
    assert [item["client_ip"] for item in items] == ["2001:db8::5", "2001:db8:ffff::1"]


def test_pages_stay_exact_while_hits_arrive(api_server):
    base = f"/paging-{marker()}"
    for i in range(300):
        hit(api_server, f"{base}/old/{i}")
    existing = {r["id"] for r in wait_stored(api_server, base, 300)}
    stop = threading.Event()

    def keep_inserting():
        n = 0
        while not stop.is_set() and n < 2000:
            hit(api_server, f"{base}/new/{n}")
            n += 1

    def newest_stored() -> int:
        return max(r["id"] for r in api_server.rows("substr(path, 1, ?) = ?", (len(base), base)))

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        seen, cursor, pages, newest_before_page = [], None, 0, []
        while True:
            newest_before_page.append(newest_stored())
            query = f"/api/v1/hits?path_prefix={base}/&limit=23" + (f"&cursor={cursor}" if cursor else "")
            page = api_server.api("GET", query, api_server.tokens["investigator"]).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            pages += 1
            time.sleep(0.02)  # let new hits land between pages
            if not cursor:
                break
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)), "a hit was repeated"
    assert seen == sorted(seen, reverse=True)
    assert existing <= set(seen), "a hit that existed before paging began was skipped"
    assert pages >= 300 // 23
    # Hits did arrive while paging: stored after the first page was read and before the last one was.
    newest_at_start = seen[0]
    assert newest_before_page[-1] > newest_at_start, "no hit arrived while paging: the test proved nothing"
    # ...and the pages are exactly the hits there were when the first page was read: none of the
    # later ones, every earlier one (those stored while the writer ran included).
    stored = {r["id"] for r in api_server.rows("substr(path, 1, ?) = ? AND id <= ?", (len(base) + 1, f"{base}/", newest_at_start))}
    assert set(seen) == stored


def test_api_and_cli_share_the_query_layer(api_server, seeded):
    base, rows, _ = seeded
    db = api_server.db_url
    url = api_server.admin_url("")
    token = api_server.tokens["investigator"]

    def run(*args):
        # Bytes: CSV's CRLF line ends must arrive as sent.
        return seized("hits", *args, text=False).stdout.decode()

    direct = run("query", "--db", db, "--path-prefix", f"{base}/", "--cidr", "203.0.113.0/24", "--format", "ndjson")
    remote = run("query", "--url", url, "--token", token, "--path-prefix", f"{base}/", "--cidr", "203.0.113.0/24",
                 "--format", "ndjson")
    assert direct == remote
    assert [json.loads(line)["client_ip"] for line in direct.splitlines()] == ["203.0.113.77", "203.0.113.5"]
    export_direct = run("export", "--db", db, "--path-prefix", f"{base}/", "--format", "csv")
    export_remote = run("export", "--url", url, "--token", token, "--path-prefix", f"{base}/", "--format", "csv")
    api = api_server.api("GET", f"/api/v1/hits/export?format=csv&path_prefix={base}/", token).text
    assert export_direct == export_remote == api
    assert "not a network: 'nonsense'" in fails("hits", "query", "--db", db, "--cidr", "nonsense")


# -- domains ---------------------------------------------------------------------------------

def test_domain_changes_reach_the_public_listener_without_restart(api_server):
    admin = api_server.tokens["admin"]
    name = f"live-{marker()}.example"

    def public_until(predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            response = api_server.request(host=f"www.{name}")
            if predicate(response) or time.monotonic() > deadline:
                return response
            time.sleep(0.1)

    assert api_server.request(host=f"www.{name}").status == 451
    created = api_server.api("POST", "/api/v1/domains", admin, json={
        "name": name.upper(), "agency": "API Agency", "case_ref": "API-7", "status": 200, "language": "it"})
    assert created.status_code == 201 and created.json()["name"] == name
    assert api_server.api("POST", "/api/v1/domains", admin, json={"name": name}).status_code == 409
    response = public_until(lambda r: r.status == 200)
    assert response.status == 200 and "API Agency" in response.text and "API-7" in response.text
    assert response.header("content-language") == "it"

    patched = api_server.api("PATCH", f"/api/v1/domains/{name}", admin, json={"agency": "Patched Agency", "status": 451})
    assert patched.json()["agency"] == "Patched Agency" and patched.json()["case_ref"] == "API-7"
    response = public_until(lambda r: "Patched Agency" in r.text)
    assert response.status == 451 and "Patched Agency" in response.text

    assert api_server.api("PATCH", f"/api/v1/domains/{name}", admin, json={"active": False}).json()["active"] is False
    response = public_until(lambda r: "Patched Agency" not in r.text)
    assert "Patched Agency" not in response.text
    assert api_server.row_for_port(response.local_port)["domain"] is None

    assert api_server.api("DELETE", f"/api/v1/domains/{name}", admin).status_code == 204
    assert api_server.api("GET", f"/api/v1/domains/{name}", admin).status_code == 404
    assert api_server.api("DELETE", f"/api/v1/domains/{name}", admin).status_code == 404
    assert api_server.api("POST", "/api/v1/domains", admin, json={"name": "bad/name"}).status_code == 422


def test_a_domain_is_found_by_any_spelling_of_its_name(api_server):
    """GET, PATCH and DELETE /api/v1/domains/{name} spell the name as POST and `seized domains
    remove` do: upper case and a trailing dot name the same domain."""
    admin = api_server.tokens["admin"]
    name = f"dot-{marker()}.example"
    assert api_server.api("POST", "/api/v1/domains", admin, json={"name": name}).status_code == 201
    spelled = f"{name.upper()}."

    got = api_server.api("GET", f"/api/v1/domains/{spelled}", admin)
    assert got.status_code == 200 and got.json()["name"] == name
    patched = api_server.api("PATCH", f"/api/v1/domains/{spelled}", admin, json={"agency": "Dotted Agency"})
    assert patched.status_code == 200 and patched.json()["name"] == name and patched.json()["agency"] == "Dotted Agency"
    assert api_server.api("GET", f"/api/v1/domains/{name}", admin).json()["agency"] == "Dotted Agency"
    assert api_server.api("DELETE", f"/api/v1/domains/{spelled}", admin).status_code == 204
    assert api_server.api("GET", f"/api/v1/domains/{name}", admin).status_code == 404
