"""The OpenAPI document as an integrator uses it: a Python client generated from the served
/openapi.json by openapi-python-client calls every operation of a real server, exports included
(CSV read as CSV, NDJSON line by line, the evidence ZIP opened with zipfile). Every answer's status
must be one the document declares for that operation (the client raises on any other) and its
Content-Type one the document gives for that status; and every path and method of the document
must have been called, so an endpoint added without a call below fails here.

Adding an endpoint: write a function taking `Calls` that calls it through the generated client
(`calls.op("operation_id").sync(client=calls.client("role"), ...)`) and checks the answer, and add
it to CALLS at the end of this file."""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from helpers import request

PACKAGE = "seized_client"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# openapi-python-client reads JSON, text/* and application/octet-stream answers; a ZIP is bytes to it.
GENERATOR_CONFIG = {"content_type_overrides": {"application/zip": "application/octet-stream"}}
# What the generator may warn about, and nothing else: it cannot send a text/csv or text/plain body
# (the subjects import takes JSON too, the domains import bytes: the generated client sends those).
EXPECTED_WARNINGS = {("POST /api/v1/subjects/import", "Unsupported content type text/csv"),
                     ("POST /api/v1/domains/import", "Unsupported content type text/plain"),
                     ("POST /api/v1/domains/import", "Unsupported content type text/csv")}
CASE = "CASE-42"  # seized-iptv.example's case in conftest.DOMAINS: imported records match its hits


@pytest.fixture(scope="module")
def generated(api_server, tmp_path_factory):
    """The client package, generated from the server's /openapi.json and imported."""
    where = tmp_path_factory.mktemp("client")
    config = where / "generator.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff
    result = subprocess.run([
        str(Path(sys.executable).with_name("openapi-python-client")), "generate", "--url", api_server.admin_url("/openapi.json"),
        "--meta", "none", "--output-path", str(where / PACKAGE), "--config", str(config),
    ], capture_output=True, text=True, timeout=300, cwd=where, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    warnings = set(re.findall(r"^WARNING parsing (\S+ \S+) within \S+.*\n+(.+)$", output, re.MULTILINE))
    assert warnings == EXPECTED_WARNINGS, output[-5000:]
    assert "ERROR" not in output, output[-5000:]
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]  # the next backend's server generates and imports its own


class Calls:
    """What the calls share: the generated package, the served document, a client per role (each
    answer checked against the document as it arrives), the hits seeded for them."""

    def __init__(self, package, server, seed: dict):
        self.package, self.server = package, server
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.document = httpx.get(server.admin_url("/openapi.json"), timeout=10).json()
        self.tags = {op["operationId"]: op["tags"][0] for item in self.document["paths"].values()
                     for method, op in item.items() if method in METHODS}
        # Literal paths before templated ones: /hits/export is not /hits/{hit_id}.
        self.templates = sorted(self.document["paths"], key=lambda path: path.count("{"))
        self.answered: set[tuple[str, str]] = set()  # (method, documented path) answered with a 2xx
        self.mismatches: list[str] = []
        self.__dict__.update(seed)

    def op(self, operation_id: str):
        """The generated module of an operation (sync, sync_detailed, asyncio...)."""
        tag = re.sub(r"\W+", "_", self.tags[operation_id].lower())
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")

    def client(self, role: str | None = None, token: str | None = None):
        """A client with the role's token (none: no token at all). An undeclared status raises."""
        options = {"base_url": self.server.admin_url(""), "raise_on_unexpected_status": True, "timeout": httpx.Timeout(120),
                   "httpx_args": {"event_hooks": {"response": [self._check]}}}
        token = token or (self.server.tokens[role] if role else None)
        if token is None:
            return self.package.Client(**options)
        return self.package.AuthenticatedClient(token=token, **options)

    def _check(self, response: httpx.Response) -> None:
        """The answer's Content-Type is one the document declares for its operation and status."""
        method, path = response.request.method, response.request.url.path
        template = next((t for t in self.templates if re.fullmatch(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(t)), path)), None)
        operation = self.document["paths"].get(template, {}).get(method.lower())
        if operation is None:
            self.mismatches.append(f"{method} {path}: not in the document")
            return
        declared = operation["responses"].get(str(response.status_code))
        if declared is None:
            return  # the generated client raises on it (raise_on_unexpected_status)
        media = response.headers.get("content-type", "").split(";")[0].strip()
        types = set(declared.get("content", {}))
        if (media or types) and media not in types:
            self.mismatches.append(f"{method} {path} {response.status_code}: {media or 'no Content-Type'}, declared {sorted(types)}")
        if 200 <= response.status_code < 300:
            self.answered.add((method, template))


@pytest.fixture(scope="module")
def calls(generated, api_server):
    """Hits of our own (found by path prefix), one with an IPTV account, for the calls to find."""
    marker = os.urandom(4).hex()
    base, account = f"/openapi-client-{marker}", f"acct-{marker}"
    ips = ["203.0.113.41", "198.51.100.42", "2001:db8::43"]
    for i, ip in enumerate(ips):
        request(api_server.public_port, "GET", f"{base}/{i}", headers=[("X-Forwarded-For", ip)])
    request(api_server.public_port, "GET", f"/get.php?username={account}&password=p", headers=[("X-Forwarded-For", "192.0.2.44")])
    assert len(api_server.wait_rows("substr(path, 1, ?) = ?", (len(base), base), count=len(ips))) == len(ips)
    assert len(api_server.wait_rows("account = ?", (account,))) == 1
    return Calls(generated, api_server, {"marker": marker, "base": base, "account": account, "ips": ips,
                                         "paths": [f"{base}/{i}" for i in range(len(ips))]})


# -- the calls, one function per group of operations ----------------------------------------------

def probes(c: Calls):
    health = c.op("get_health").sync(client=c.client())
    assert isinstance(health, c.models.Health) and health.status == "ok"
    ready = c.op("get_readiness").sync(client=c.client())
    assert isinstance(ready, c.models.Readiness) and ready.ready and ready.problems == []


def hits(c: Calls):
    investigator = c.client("investigator")
    page = c.op("list_hits").sync(client=investigator, path_prefix=c.base, limit=1000)
    assert isinstance(page, c.models.HitPage), page
    assert [item.path for item in page.items] == c.paths[::-1]  # newest first
    assert [item.client_ip for item in page.items] == c.ips[::-1]
    one = c.op("get_hit").sync(page.items[0].id, client=investigator)
    assert isinstance(one, c.models.HitRecord) and one.id == page.items[0].id and one.path == c.paths[-1]
    stats = c.op("hit_stats").sync(client=investigator, path_prefix=c.base, group=c.models.HitStatsGroup.CLIENT_IP)
    assert isinstance(stats, c.models.Stats)
    assert sorted((row.key, row.hits, row.distinct_ips) for row in stats.rows) == sorted((ip, 1, 1) for ip in c.ips)


def exports(c: Calls):
    investigator, export = c.client("investigator"), c.op("export_hits")
    text = export.sync(client=investigator, path_prefix=c.base, format_=c.models.ExportHitsFormat.CSV)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["path"] for row in rows] == c.paths and [row["client_ip"] for row in rows] == c.ips  # oldest first
    answer = export.sync_detailed(client=investigator, path_prefix=c.base, format_=c.models.ExportHitsFormat.NDJSON)
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = answer.parsed.splitlines()
    assert [json.loads(line)["path"] for line in lines] == c.paths


def evidence(c: Calls):
    auditor, investigator = c.client("auditor"), c.client("investigator")
    heads = c.op("list_chain_heads").sync(client=auditor)
    assert any(isinstance(head, c.models.Head) and head.node == "test-node" and head.count >= 4 for head in heads), heads
    report = c.op("verify_chains").sync(client=auditor, node="test-node")
    assert isinstance(report, c.models.Report) and report.ok and report.nodes[0].node == "test-node"
    plan = c.op("plan_requests").sync(client=investigator, path_prefix=c.base)
    assert sum(row.hits for row in plan) == len(c.ips) and sum(row.distinct_ips for row in plan) == len(c.ips)
    package = c.op("export_package").sync(client=investigator, path_prefix=c.base)
    with zipfile.ZipFile(package.payload) as archive:
        assert {"hits.csv", "records.jsonl", "manifest.json", "verify.js"} <= set(archive.namelist())
        assert [row["path"] for row in csv.DictReader(io.StringIO(archive.read("hits.csv").decode(), newline=""))] == c.paths
        assert [json.loads(line)["path"] for line in archive.read("records.jsonl").decode().splitlines()] == c.paths
        assert json.loads(archive.read("manifest.json"))["rows"] == len(c.ips)


def subjects(c: Calls):
    investigator, models = c.client("investigator"), c.models
    record = models.ImportSubjectsJsonBodyItem.from_dict({"account": c.account, "email": f"{c.marker}@example.org"})
    imported = c.op("import_subjects").sync(client=investigator, case=CASE, body=[record])
    assert isinstance(imported, models.Imported) and (imported.records, imported.added) == (1, 1)
    listed = c.op("list_subjects").sync(client=investigator, case=CASE)
    ours = [subject for subject in listed if subject.account == c.account]
    assert len(ours) == 1 and ours[0].hits == 1 and ours[0].attributes["email"] == f"{c.marker}@example.org"
    report = c.op("get_case_report").sync(client=investigator, case=CASE)
    assert isinstance(report, models.CaseReport) and c.account in [subject["account"] for subject in report.subjects]
    matched = c.op("get_subject_hits").sync(c.account, client=investigator, case=CASE)
    assert isinstance(matched, models.AccountHits) and matched.hits == 1 and matched.tuples[0].client_ip == "192.0.2.44"


def domains(c: Calls):
    admin, models, name = c.client("admin"), c.models, f"client-{c.marker}.example"
    created = c.op("create_domain").sync(client=admin, body=models.DomainIn(
        name=name, agency="Client Test Unit", case_ref=f"CLIENT-{c.marker}", status=451))
    assert isinstance(created, models.DomainOut) and created.name == name and created.active
    assert name in [domain.name for domain in c.op("list_domains").sync(client=admin)]
    assert c.op("get_domain").sync(name.upper(), client=admin).agency == "Client Test Unit"
    patched = c.op("update_domain").sync(name, client=admin, body=models.DomainPatch(notes="patched", active=False))
    assert (patched.notes, patched.active, patched.agency) == ("patched", False, "Client Test Unit")
    assert c.op("delete_domain").sync_detailed(name, client=admin).status_code == 204
    gone = c.op("get_domain").sync(name, client=admin)
    assert isinstance(gone, models.Problem) and name in gone.detail


def resolver_lists(c: Calls):
    """The lists ISPs load, read as text, and a domain list imported (the body is plain text)."""
    admin, name = c.client("admin"), f"import-{c.marker}.example"
    rpz = c.op("export_resolver_list").sync(client=admin, format_=c.models.ExportResolverListFormat.RPZ,
                                            address=["192.0.2.10", "2001:db8::10"])
    assert isinstance(rpz, str) and "SOA" in rpz and "\nseized-iptv.example IN A 192.0.2.10\n" in rpz and "*.seized-iptv.example IN AAAA 2001:db8::10" in rpz
    listed = c.op("export_resolver_list").sync(client=admin, format_=c.models.ExportResolverListFormat.CSV,
                                               address=["192.0.2.10"])
    assert "seized-iptv.example" in [row["domain"] for row in csv.DictReader(io.StringIO(listed))]
    body = c.package.types.File(payload=io.BytesIO(f"{name}\n# a comment\n".encode()), file_name="domains.txt")
    report = c.op("import_domains").sync(client=admin, body=body, format_=c.models.ImportDomainsFormatType0.LIST, dry_run=True)
    assert isinstance(report, c.models.ImportReport) and report.added == [name] and report.dry_run


def tokens(c: Calls):
    admin, models, name = c.client("admin"), c.models, f"client-{c.marker}"
    new = c.op("create_token").sync(client=admin, body=models.TokenIn(name=name, role=models.TokenInRole.AUDITOR, expires_days=1))
    assert isinstance(new, models.NewToken) and new.token.startswith("sz_")
    assert isinstance(c.op("list_audit_entries").sync(client=c.client(token=new.token), limit=1), models.AuditPage)
    listed = {token.name: token for token in c.op("list_tokens").sync(client=admin)}
    assert listed[name].role == "auditor" and listed[name].revoked_at is None
    assert c.op("revoke_token").sync_detailed(name, client=admin).status_code == 204
    refused = c.op("list_audit_entries").sync_detailed(client=c.client(token=new.token))
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem)
    settings = c.op("get_settings").sync(client=admin)
    assert settings["node"] == "test-node" and "match_key" in settings.additional_properties


def audit(c: Calls):
    page = c.op("list_audit_entries").sync(client=c.client("auditor"), limit=1000)
    assert isinstance(page, c.models.AuditPage)
    ours = {(entry.endpoint, entry.status) for entry in page.items if entry.token_name and entry.role == "investigator"}
    assert {("/api/v1/hits/export", 200), ("/api/v1/evidence/package", 200), ("/api/v1/subjects/import", 200)} <= ours


def errors(c: Calls):
    """Refusals come back as the declared JSON models (an undeclared status would raise)."""
    models = c.models
    cases = [
        (c.op("list_hits").sync_detailed(client=c.client()), 401),
        (c.op("list_domains").sync_detailed(client=c.client("investigator")), 403),
        (c.op("get_hit").sync_detailed(2 ** 62, client=c.client("investigator")), 404),
        (c.op("list_hits").sync_detailed(client=c.client("investigator"), cursor="not-a-cursor"), 422),
        (c.op("export_hits").sync_detailed(client=c.client("investigator"), cidr="10.0.0.0/99"), 422),
        (c.op("create_domain").sync_detailed(client=c.client("admin"), body=models.DomainIn(name="bad/name")), 422),
    ]
    for answer, status in cases:
        assert answer.status_code == status, (answer.status_code, answer.content)
        assert isinstance(answer.parsed, (models.Problem, models.HTTPValidationError)) and answer.parsed.detail


# In order: the audit log is read after the calls it must show.
CALLS = [probes, hits, exports, evidence, subjects, domains, resolver_lists, tokens, errors, audit]


def test_every_operation_through_the_generated_client(calls):
    for call in CALLS:
        call(calls)
    assert calls.mismatches == []
    documented = {(method.upper(), path) for path, item in calls.document["paths"].items() for method in item if method in METHODS}
    missing = sorted(documented - calls.answered)
    assert not missing, f"operations no call exercises (add one to CALLS): {missing}"


def test_the_document_is_fit_for_generated_clients(calls):
    """Short, unique operation ids (the client's function names); every /api/ operation declares
    its refusals as JSON; answers that are not JSON are declared with their own media type only."""
    operations = [(method, path, op) for path, item in calls.document["paths"].items() for method, op in item.items() if method in METHODS]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids)), ids
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)+", op_id) and "api" not in op_id.split("_") for op_id in ids), ids
    for method, path, op in operations:
        if path.startswith("/api/"):
            for status in ("401", "403", "429", "503"):
                assert op["responses"][status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    media = {op["operationId"]: set(op["responses"]["200"].get("content", {})) for _, _, op in operations if "200" in op["responses"]}
    assert media["export_hits"] == {"text/csv", "application/x-ndjson"}
    assert media["export_package"] == {"application/zip"}
