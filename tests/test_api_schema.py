"""Schemathesis against the management API's own /openapi.json: generated requests never get a
500, and every response matches the documented schema. Run with an investigator token (the
issue's case) and an admin token (which reaches the domain and token endpoints). Through its
command line, as its pytest plugin does not yet run under pytest 9."""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers import Server

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance"]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    """A server of its own: an admin token fuzzing POST /domains must not change other tests' domains.
    Schemathesis sends requests without or with broken credentials: the failed-login limit is raised
    so that one run's 401s do not lock the next run (in any order) out, and the tokens are made first."""
    server = Server(tmp_path_factory.mktemp("fuzzed"), domains=[{"name": "seized-iptv.example"}],
                    settings={"auth_failure_limit": 100_000}).start()
    try:
        server.tokens = {"admin": server.admin_token, "investigator": server.new_token("investigator")}
        for i in range(20):
            server.request(target=f"/get.php?username=u{i}&password=p")
        assert len(server.wait_rows(count=20)) == 20
        yield server
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("role", ["investigator", "admin"])
def test_api_conforms_to_its_schema(fuzzed_server, tmp_path, role):
    token = fuzzed_server.tokens[role]
    result = subprocess.run([
        str(Path(sys.executable).with_name("schemathesis")), "run", fuzzed_server.admin_url("/openapi.json"),
        "--header", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS), "--max-examples", "25", "--seed", "1",
        "--report", "junit", "--report-dir", str(tmp_path),
    ], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # Every documented operation was exercised (the count comes from the schema, not a number that
    # changes with the API or with schemathesis; its summary format is pinned in pyproject.toml).
    schema = httpx.get(fuzzed_server.admin_url("/openapi.json"), timeout=10).json()
    operations = sum(1 for item in schema["paths"].values() for method in item if method in METHODS)
    assert operations >= 20, f"the schema lists only {operations} operations"
    assert re.search(rf"Tested: {operations}\b", result.stdout), result.stdout[-3000:]
