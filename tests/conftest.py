import resource

import pytest

from helpers import Server, wait_for

# The 2,000-connection test (test_durability.py) needs a descriptor per connection, in this process
# (the client) and in the servers it starts (which inherit the limit): raise the soft limit as far as
# the hard one allows. That test skips, saying why, if this is still too low.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _hard == resource.RLIM_INFINITY or _soft < _hard:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_hard if _hard != resource.RLIM_INFINITY else max(_soft, 65536), _hard))
    except (ValueError, OSError):
        pass

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
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="session")
def proxied_server(tmp_path_factory):
    """A server behind a trusted proxy on 127.0.0.0/8 that passes the client port in X-Real-Port."""
    srv = Server(tmp_path_factory.mktemp("proxied"), domains=DOMAINS,
                 settings={"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"], "client_port_header": "X-Real-Port"}).start()
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture
def fresh_server(tmp_path):
    """Servers of the test's own, for tests that stop, lock or flood them: `fresh_server(**settings)`
    (and `domains=`, DOMAINS by default) makes one, not yet started. Whatever the test did, every one
    still running afterwards is stopped, and must stop cleanly (exit 0); a test that stops one itself
    asserts its exit code."""
    servers = []

    def make(domains=DOMAINS, **settings) -> Server:
        srv = Server(tmp_path / f"s{len(servers)}", settings=settings, domains=domains)
        servers.append(srv)
        return srv

    yield make
    running = [srv for srv in servers if srv.process is not None and srv.process.poll() is None]
    codes = {}
    for srv in running:  # every one, before any assertion
        try:
            codes[srv.directory.name] = srv.stop()
        except Exception as error:  # stop() kills it on a timeout
            codes[srv.directory.name] = repr(error)
    assert all(code == 0 for code in codes.values()), f"servers left running did not stop cleanly: {codes}"


@pytest.fixture(scope="session")
def api_server(tmp_path_factory):
    """A server behind a trusted proxy (so tests can give hits any client IP via X-Forwarded-For),
    with the failed-login limit raised so the role matrix's 401s do not trip it."""
    srv = Server(tmp_path_factory.mktemp("api"), domains=DOMAINS,
                 settings={"trusted_proxies": ["127.0.0.0/8"], "auth_failure_limit": 100_000}).start()
    try:
        srv.tokens = {role: srv.new_token(role) for role in ("investigator", "auditor")}
        srv.tokens["admin"] = srv.admin_token
        yield srv
    finally:
        assert srv.stop() == 0


MATCH_KEY = "test-match-key-0123456789"


@pytest.fixture(scope="session")
def iptv_server(tmp_path_factory):
    """A server with a match_key, so password HMACs are kept; its notice videos rendered before the
    first test (rendering takes both cores for seconds, which other tests' requests would wait on)."""
    srv = Server(tmp_path_factory.mktemp("iptv"), domains=DOMAINS, settings={"match_key": MATCH_KEY, "prerender_videos": True}).start()
    try:
        wait_for(lambda: "notice videos pre-rendered" in srv.log_path.read_text(), timeout=300,
                 message="the notice videos were not pre-rendered")
        srv.tokens = {"investigator": srv.new_token("investigator")}
        yield srv
    finally:
        assert srv.stop() == 0
