import resource

import pytest

from helpers import Databases, Server, wait_for

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


BACKENDS = ("sqlite", "postgres")


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", choices=BACKENDS,
                     help="run the server tests on this store only (repeatable; default: both)")


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the test runs on these stores only (it reads one's files or "
                                       "breaks one's server on purpose)")


def pytest_generate_tests(metafunc):
    """Every test that starts a server runs once per store: `backend` is a session-wide parameter
    that the server fixtures (through `databases`) depend on."""
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or list(BACKENDS)
        marker = metafunc.definition.get_closest_marker("backends")
        metafunc.parametrize("backend", [b for b in chosen if marker is None or b in marker.args], scope="session")


@pytest.fixture(scope="session")
def databases(backend):
    """A database per server on the session's store; PostgreSQL's are dropped at the end."""
    made = Databases(backend)
    try:
        yield made
    finally:
        made.drop_all()


def started(directory, databases, **kwargs) -> Server:
    return Server(directory, db_url=databases.url(directory), **kwargs).start()


@pytest.fixture(scope="session")
def server(tmp_path_factory, databases):
    """One real server shared by tests that only read; each test finds its own hits by source port."""
    srv = started(tmp_path_factory.mktemp("main"), databases, settings={"body_cap": 4096}, domains=DOMAINS)
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="session")
def proxied_server(tmp_path_factory, databases):
    """A server behind a trusted proxy on 127.0.0.0/8 that passes the client port in X-Real-Port."""
    srv = started(tmp_path_factory.mktemp("proxied"), databases, domains=DOMAINS,
                  settings={"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"], "client_port_header": "X-Real-Port"})
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture
def postgres_database():
    """`postgres_database(directory)`: a new PostgreSQL database's URL, whatever the session's
    backend (for tests that move between stores, or test the PostgreSQL store alone); dropped after."""
    made = Databases("postgres")
    try:
        yield made.url
    finally:
        made.drop_all()


@pytest.fixture
def fresh_server(tmp_path, databases):
    """Servers of the test's own, for tests that stop, lock or flood them: `fresh_server(**settings)`
    (and `domains=`, DOMAINS by default; `db_url=` another server's database to share it) makes one, not yet started. Whatever the test did, every one
    still running afterwards is stopped, and must stop cleanly (exit 0); a test that stops one itself
    asserts its exit code."""
    servers = []

    def make(domains=DOMAINS, db_url=None, **settings) -> Server:
        directory = tmp_path / f"s{len(servers)}"
        srv = Server(directory, settings=settings, domains=domains, db_url=db_url or databases.url(directory))
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
def api_server(tmp_path_factory, databases):
    """A server behind a trusted proxy (so tests can give hits any client IP via X-Forwarded-For),
    with the failed-login limit raised so the role matrix's 401s do not trip it."""
    srv = started(tmp_path_factory.mktemp("api"), databases, domains=DOMAINS,
                  settings={"trusted_proxies": ["127.0.0.0/8"], "auth_failure_limit": 100_000})
    try:
        srv.tokens = {role: srv.new_token(role) for role in ("investigator", "auditor")}
        srv.tokens["admin"] = srv.admin_token
        yield srv
    finally:
        assert srv.stop() == 0


MATCH_KEY = "test-match-key-0123456789"


@pytest.fixture(scope="session")
def iptv_server(tmp_path_factory, databases):
    """A server with a match_key, so password HMACs are kept; its notice videos rendered before the
    first test (rendering takes both cores for seconds, which other tests' requests would wait on)."""
    srv = started(tmp_path_factory.mktemp("iptv"), databases, domains=DOMAINS, settings={"match_key": MATCH_KEY, "prerender_videos": True})
    try:
        wait_for(lambda: "notice videos pre-rendered" in srv.log_path.read_text(), timeout=300,
                 message="the notice videos were not pre-rendered")
        srv.tokens = {"investigator": srv.new_token("investigator")}
        yield srv
    finally:
        assert srv.stop() == 0
