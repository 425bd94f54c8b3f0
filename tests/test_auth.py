"""Management API authentication (app/api/auth.py) and what /settings shows."""

import time

MATCH_KEY = "settings-test-match-key-0123456789"


def test_a_throttled_address_is_let_in_again_once_its_window_has_passed(fresh_server):
    server = fresh_server(auth_failure_limit=2, auth_failure_window_s=2.0).start()
    token = server.admin_token
    assert [server.api("GET", "/api/v1/hits", "sz_000000000000_wrong").status_code for _ in range(2)] == [401, 401]
    throttled = server.api("GET", "/api/v1/hits", "sz_000000000000_wrong")
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["retry-after"]) <= 3
    time.sleep(2.2)
    assert server.api("GET", "/api/v1/tokens", token).status_code == 200  # an admin call
    assert server.stop() == 0


def test_settings_never_show_the_match_key(fresh_server):
    server = fresh_server(match_key=MATCH_KEY).start()
    response = server.api("GET", "/api/v1/settings", server.admin_token)
    assert response.status_code == 200
    assert MATCH_KEY not in response.text
    assert response.json()["match_key"] in ("**********", None)
    assert server.stop() == 0


def test_a_burst_of_wrong_tokens_is_throttled_at_the_limit_and_known_tokens_still_work(fresh_server):
    """300 wrong tokens at once from one address: no more than the limit are checked (the others
    429 before any check), and an investigator whose token authenticated lately keeps working from
    that address during the lockout; a token not seen lately waits like the attacker."""
    import asyncio

    import httpx

    server = fresh_server(auth_failure_limit=10, auth_failure_window_s=60.0).start()
    token = server.admin_token
    other = server.new_token("investigator")  # made, never used: not known to the limiter
    assert server.api("GET", "/api/v1/tokens", token).status_code == 200  # seen authenticating

    async def burst():
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=server.admin_url(""), limits=limits, timeout=120) as client:
            return await asyncio.gather(*(client.get("/api/v1/hits", headers={"Authorization": f"Bearer sz_{i:012x}_wrong"})
                                          for i in range(300)))

    statuses = [r.status_code for r in asyncio.run(burst())]
    assert statuses.count(401) <= 10 and statuses.count(401) + statuses.count(429) == 300, statuses
    assert server.api("GET", "/api/v1/tokens", token).status_code == 200  # known lately: let through
    assert server.api("GET", "/api/v1/hits", other).status_code == 429  # not seen lately: locked out too
    assert server.api("GET", "/api/v1/hits", "sz_000000000000_wrong").status_code == 429
    assert server.stop() == 0
