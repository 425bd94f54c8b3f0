"""Range filters take shortcuts on big tables (see SQLiteStore._range_page_ids): their pages must
still equal the plain answer, page after page, wherever in the table the range's hits lie."""

import ipaddress
import sqlite3
from contextlib import closing
from datetime import datetime, timezone

import pytest

from helpers import Server, seed_hits

ROWS = 120_000  # ids 1-65536 come from 10.0.0.0/16, the rest from 10.1.0.0/16 (seed_hits' layout)


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ranges")).start()
    seed_hits(server.db_path, ROWS)
    server.token = server.new_token("investigator")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def table(big_server) -> list[tuple[int, object, str, datetime]]:
    """Every stored hit as (id, client address, method, received at), read once, newest first."""
    with closing(sqlite3.connect(big_server.db_path)) as db:
        rows = db.execute("SELECT id, client_ip, method, received_at FROM hits ORDER BY id DESC").fetchall()
    return [(i, ipaddress.ip_address(ip), method, parse_stamp(at)) for i, ip, method, at in rows]


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def expected_ids(table, filters: dict) -> list[int]:
    """The answer worked out in Python from the rows, not with the SQL under test."""
    network = ipaddress.ip_network(filters["cidr"]) if "cidr" in filters else None
    since = parse_stamp(filters["since"]) if "since" in filters else None
    until = parse_stamp(filters["until"]) if "until" in filters else None
    return [i for i, ip, method, at in table
            if (network is None or (ip.version == network.version and ip in network))
            and ("method" not in filters or method == filters["method"])
            and (since is None or at >= since) and (until is None or at < until)]


def stamp(server, hit_id: int) -> str:
    return server.rows("id = ?", (hit_id,))[0]["received_at"]


@pytest.mark.parametrize("filters", [
    {"cidr": "10.1.0.0/16"},                      # many hits, all recent
    {"cidr": "10.0.0.0/16"},                      # many hits, all old
    {"cidr": "10.0.3.0/24"},                      # few hits
    {"cidr": "10.0.0.0/8", "method": "POST"},     # many hits, thinned by another filter
    {"cidr": "10.0.200.0/22", "method": "POST"},  # few hits, thinned
    {"since": 60_000, "until": 70_000},           # a time window in the middle
    {"until": 30_000},                            # old hits only
    {"since": 110_000},                           # recent hits only
])
def test_range_pages_equal_the_plain_answer(big_server, table, filters):
    query = {k: stamp(big_server, v) if k in ("since", "until") else v for k, v in filters.items()}
    expected = expected_ids(table, query)
    assert expected, "no hit matches: equal pages would prove nothing"
    got, cursor = [], None
    for _ in range(6):
        params = {**query, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = big_server.api("GET", "/api/v1/hits", big_server.token, params=params).json()
        got += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == expected[:len(got)]
    assert len(got) == min(len(expected), 6000)
