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
