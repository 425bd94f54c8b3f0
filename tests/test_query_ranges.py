"""Range filters take shortcuts on big tables (see SQLiteStore._range_page_ids): their pages must
still equal the plain answer, page after page, wherever in the table the range's hits lie. The
hits go in through the journal and ingest; the plain answer is worked out in Python from what was
seeded, never from what the app stored or with the SQL under test."""

import ipaddress
from datetime import datetime, timezone

import pytest

from helpers import Seeded, Server, seed_journal

ROWS = 120_000  # hits 0-65535 come from 10.0.0.0/16, the rest from 10.1.0.0/16 (seed_journal's layout)
# Pages of 1,000 read per case. The time windows hold fewer hits than these pages do, so both of
# their ends are compared, and more than SMALL_RANGE (app/store/sqlite.py): they take the shortcut.
PAGES = 6


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ranges"))
    try:
        server.start()
        server.seeded = seed_journal(server, ROWS)
        server.token = server.new_token("investigator")
        yield server
    finally:
        code = server.stop()
        assert code == 0


@pytest.fixture(scope="module")
def seeded_hits(big_server) -> list[tuple[str, object, str, datetime]]:
    """Every seeded hit as (uid, client address, method, received at), newest first: from the
    seeding's own description of each hit, not read back from the server."""
    seeded: Seeded = big_server.seeded
    return [(seeded.uid(i), ipaddress.ip_address(seeded.client_ip(i)), seeded.method(i), parse_stamp(seeded.received_at(i)))
            for i in reversed(range(seeded.count))]


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def expected_uids(hits, filters: dict) -> list[str]:
    """The answer worked out in Python (ipaddress, datetime, plain comparison), newest first."""
    network = ipaddress.ip_network(filters["cidr"]) if "cidr" in filters else None
    since = parse_stamp(filters["since"]) if "since" in filters else None
    until = parse_stamp(filters["until"]) if "until" in filters else None
    return [uid for uid, ip, method, at in hits
            if (network is None or (ip.version == network.version and ip in network))
            and ("method" not in filters or method == filters["method"])
            and (since is None or at >= since) and (until is None or at < until)]


@pytest.mark.parametrize("filters, matching", [
    ({"cidr": "10.1.0.0/16"}, ROWS - 65_536),                        # many hits, all recent
    ({"cidr": "10.0.0.0/16"}, 65_536),                               # many hits, all old
    ({"cidr": "10.0.3.0/24"}, 256),                                  # few hits
    ({"cidr": "10.0.0.0/8", "method": "POST"}, ROWS // 5),           # many hits, thinned by another filter
    ({"cidr": "10.0.200.0/22", "method": "POST"}, 1024 // 5 + 1),    # few hits, thinned
    ({"since": 60_000, "until": 65_500}, 5_500),                     # a time window in the middle
    ({"until": 30_000}, 30_000),                                     # old hits only
    ({"since": 114_500}, ROWS - 114_500),                            # recent hits only
])
def test_range_pages_equal_the_plain_answer(big_server, seeded_hits, filters, matching):
    # since/until: the time of the seeded hit with that index, as the API takes it
    query = {k: big_server.seeded.received_at(v) if k in ("since", "until") else v for k, v in filters.items()}
    expected = expected_uids(seeded_hits, query)
    assert len(expected) == matching, "the seeded layout is not what this test was written for"
    assert expected, "no hit matches: equal pages would prove nothing"
    got, cursor = [], None
    for _ in range(PAGES):
        params = {**query, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = big_server.api("GET", "/api/v1/hits", big_server.token, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        got += [item["uid"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(got) == min(len(expected), PAGES * 1000)
    assert got == expected[:len(got)]
