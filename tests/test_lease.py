"""app/lease.py: one live deployment per node id, on one shared database; nodes with their own ids
log side by side and any node's API sees them all."""

import pytest

from helpers import wait_for


def test_a_second_deployment_claiming_a_live_node_id_is_refused(fresh_server):
    first = fresh_server(node="edge-1").start()
    second = fresh_server(node="edge-1", db_url=first.db_url)
    with pytest.raises(RuntimeError) as refused:
        second.start(timeout=60)
    assert "node id 'edge-1' is in use by another running seized" in str(refused.value)
    assert "--node or SEIZED_NODE" in str(refused.value)
    assert first.request(target="/still-up").status == 451  # the holder never noticed

    assert first.stop() == 0  # a clean stop releases the id at once
    second.start()
    second.request(target="/after-handover")
    assert [row["node"] for row in second.wait_rows("path = '/after-handover'")] == ["edge-1"]


def test_nodes_with_their_own_ids_share_one_database(fresh_server):
    one = fresh_server(node="edge-1").start()
    two = fresh_server(node="edge-2", db_url=one.db_url).start()
    for server, name in ((one, "one"), (two, "two")):
        for i in range(3):
            assert server.request(target=f"/shared-{name}-{i}").status == 451
    rows = one.wait_rows("path LIKE '/shared-%'", count=6)
    assert sorted((row["node"], row["path"]) for row in rows) == sorted(
        [("edge-1", f"/shared-one-{i}") for i in range(3)] + [("edge-2", f"/shared-two-{i}") for i in range(3)])
    token = one.new_token("investigator")  # made through node one, used on node two
    for server in (one, two):
        items = wait_for(lambda: (r := server.api("GET", "/api/v1/hits?path_prefix=/shared-", token)).status_code == 200
                         and len(r.json()["items"]) == 6 and r.json()["items"])
        assert {item["node"] for item in items} == {"edge-1", "edge-2"}
    for server in (one, two):
        report = server.api("GET", "/api/v1/evidence/verify", token).json()
        assert report["ok"] and {n["node"]: n["hits"] for n in report["nodes"]} == {"edge-1": 3, "edge-2": 3}
