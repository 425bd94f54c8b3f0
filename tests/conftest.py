import pytest

from helpers import Server

DOMAINS = [
    {"name": "seized-iptv.example", "agency": "Test Police Cyber Unit", "case_ref": "CASE-42",
     "legal_basis": "Order 7/2026 of the Test Court", "language": "en"},
    {"name": "iptv-pirata.example", "agency": "Guardia di Test", "case_ref": "PROC-9", "language": "it"},
    {"name": "plain200.example", "status": 200},
]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real server shared by tests that only read; each test finds its own hits by source port."""
    srv = Server(tmp_path_factory.mktemp("main"), settings={"body_cap": 4096}, domains=DOMAINS).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="session")
def proxied_server(tmp_path_factory):
    """A server behind a trusted proxy on 127.0.0.0/8 that passes the client port in X-Real-Port."""
    srv = Server(tmp_path_factory.mktemp("proxied"), domains=DOMAINS,
                 settings={"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"], "client_port_header": "X-Real-Port"}).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, for tests that stop, lock or flood it."""
    servers = []

    def make(**settings) -> Server:
        srv = Server(tmp_path / f"s{len(servers)}", settings=settings, domains=DOMAINS)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory):
    """A server behind a trusted proxy (so tests can give hits any client IP via X-Forwarded-For),
    with the failed-login limit raised so the role matrix's 401s do not trip it."""
    srv = Server(tmp_path_factory.mktemp("api"), domains=DOMAINS,
                 settings={"trusted_proxies": ["127.0.0.0/8"], "auth_failure_limit": 100_000}).start()
    srv.tokens = {role: srv.new_token(role) for role in ("investigator", "auditor")}
    srv.tokens["admin"] = srv.admin_token
    yield srv
    assert srv.stop() == 0


MATCH_KEY = "test-match-key-0123456789"


@pytest.fixture(scope="session")
def iptv_server(tmp_path_factory):
    """A server with a match_key, so password HMACs are kept."""
    srv = Server(tmp_path_factory.mktemp("iptv"), domains=DOMAINS, settings={"match_key": MATCH_KEY, "prerender_videos": True}).start()
    srv.tokens = {"investigator": srv.new_token("investigator")}
    yield srv
    assert srv.stop() == 0
