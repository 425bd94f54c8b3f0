"""Range filters take shortcuts on big tables (see SQLiteStore._range_page_ids): their pages must
still equal the plain answer, page after page, wherever in the table the range's hits lie."""

import sqlite3

import pytest

from app.query import HitFilter
from helpers import Server, seed_hits

ROWS = 120_000  # ids 1-65536 come from 10.0.0.0/16, the rest from 10.1.0.0/16 (seed_hits' layout)


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ranges")).start()
    seed_hits(server.db_path, ROWS)
    server.token = server.new_token("investigator")
    yield server
    assert server.stop() == 0


def plain_ids(server, where: HitFilter) -> list[int]:
    sql, params = where.where()
    with sqlite3.connect(server.db_path) as db:
        return [i for (i,) in db.execute(f"SELECT id FROM hit_rows NOT INDEXED WHERE {sql} ORDER BY id DESC", params)]


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
def test_range_pages_equal_the_plain_answer(big_server, filters):
    query = {k: stamp(big_server, v) if k in ("since", "until") else v for k, v in filters.items()}
    expected = plain_ids(big_server, HitFilter(**query))
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
