"""Edge values through a real server (issue 12): ids and cursors past 64 bits, times that leave the
calendar once converted to UTC. Each is a clear 422 (404 for an id no row can have), never a 500,
on every endpoint that takes them, on both stores."""

import pytest

from helpers import wait_for

HUGE = "99999999999999999999999"
TIMES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z")
FILTERED = ("/api/v1/hits", "/api/v1/stats", "/api/v1/hits/export", "/api/v1/evidence/plan", "/api/v1/evidence/package")


@pytest.fixture(scope="module")
def investigator(server):
    token = server.new_token("investigator")
    server.request(target="/edges-seed")
    wait_for(lambda: server.rows("path = '/edges-seed'"), message="the seed hit was not stored")
    return token


@pytest.mark.parametrize("hit_id", [HUGE, str(2**63), "-" + HUGE, "0"])
def test_an_id_no_row_can_have_is_404(server, investigator, hit_id):
    response = server.api("GET", f"/api/v1/hits/{hit_id}", investigator)
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == f"no hit {int(hit_id)}"


def test_the_largest_id_is_looked_up(server, investigator):
    assert server.api("GET", f"/api/v1/hits/{2**63 - 1}", investigator).status_code == 404


@pytest.mark.parametrize("cursor", [HUGE, str(2**63), "²", "1" * 5000])
def test_a_cursor_past_64_bits_is_422(server, investigator, cursor):
    response = server.api("GET", "/api/v1/hits", investigator, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "invalid cursor" in response.text
    auditor = server.new_token("auditor")
    assert server.api("GET", "/api/v1/audit", auditor, params={"cursor": cursor}).status_code == 422


def test_the_largest_cursor_reads_from_the_newest(server, investigator):
    page = server.api("GET", "/api/v1/hits", investigator, params={"cursor": str(2**63 - 1), "limit": 1})
    assert page.status_code == 200 and len(page.json()["items"]) == 1


@pytest.mark.parametrize("moment", TIMES)
@pytest.mark.parametrize("name", ("since", "until"))
@pytest.mark.parametrize("endpoint", FILTERED)
def test_a_time_outside_the_calendar_in_utc_is_422(server, investigator, endpoint, name, moment):
    response = server.api("GET", endpoint, investigator, params={name: moment})
    assert response.status_code == 422, response.text
    assert "out of range" in response.text


@pytest.mark.parametrize("moment", TIMES)
def test_the_audit_log_refuses_them_too(server, moment):
    auditor = server.new_token("auditor")
    for name in ("since", "until"):
        response = server.api("GET", "/api/v1/audit", auditor, params={name: moment})
        assert response.status_code == 422, response.text


@pytest.mark.parametrize("endpoint", FILTERED)
def test_the_calendars_ends_in_utc_are_answered(server, investigator, endpoint):
    """The range's own ends still work: everything is at or after 1970, and before 9999's last second."""
    params = {"since": "1970-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}
    if endpoint == "/api/v1/evidence/package":
        params["path_prefix"] = "/edges-seed"
    response = server.api("GET", endpoint, investigator, params=params)
    assert response.status_code in (200, 409), response.text  # 409: a package whose chain is not checkpointed
    if endpoint == "/api/v1/hits":
        assert response.json()["items"]
