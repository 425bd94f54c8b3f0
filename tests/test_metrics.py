"""/metrics on the management listener, against a real server: known traffic on the public plain
and TLS listeners and the management API moves each metric by exactly that much, read back through
prometheus-client's own parser of the text format."""

import json
import socket
import ssl
import time
from datetime import datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import Server, free_port, raw_request, request, wait_for

BROWSER = [("Accept", "text/html,application/xhtml+xml")]


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory, databases):
    tls_port = free_port()
    directory = tmp_path_factory.mktemp("metrics")
    started_at = time.time()
    srv = Server(directory, db_url=databases.url(directory),
                 settings={"tls": [f"127.0.0.1:{tls_port}"], "checkpoint_every_s": 0.5}).start()
    srv.tls_port, srv.started_at = tls_port, started_at
    try:
        yield srv
    finally:
        assert srv.stop() == 0


def scrape(server) -> dict:
    """Every sample as {(name, ((label, value), ...)): value}."""
    response = httpx.get(server.admin_url("/metrics"), timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")  # the Prometheus text format
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


def api_timed(samples: dict) -> bool:
    """Every API request counted (as its answer starts) is also timed (after its last byte)."""
    counted = sum(v for (name, _), v in samples.items() if name == "seized_api_requests_total")
    return counted == value(samples, "seized_request_duration_seconds_count", listener="management", kind="api")


def tls_get(port: int, path: str) -> bytes:
    """A request over TLS from a client that accepts our self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, \
            context.wrap_socket(raw, server_hostname="seized-iptv.example") as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: seized-iptv.example\r\nAccept: text/html\r\n"
                     "Connection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def tls_refused(port: int) -> None:
    """A client that checks the certificate, as most do: it refuses ours, and the handshake fails."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="seized-iptv.example")


def test_known_traffic_moves_each_metric_by_exactly_that_much(metrics_server):
    srv = metrics_server
    investigator = srv.new_token("investigator")  # (an admin API call, before the first scrape)
    def all_stored():
        now = scrape(srv)
        return now if api_timed(now) and value(now, "seized_hits_stored_total") == value(
            now, "seized_hits_received_total") else None

    before = wait_for(all_stored, message="the hits before the test were not all stored")

    browsers, players = 3, 2
    for i in range(browsers):
        assert request(srv.public_port, target=f"/metrics-browser-{i}", headers=BROWSER).status == 451
    for i in range(players):
        assert request(srv.public_port, target=f"/player_api.php?username=m{i}&password=p").status == 200
    assert b"451" in tls_get(srv.tls_port, "/metrics-tls").split(b"\r\n", 1)[0]
    tls_refused(srv.tls_port)
    assert raw_request(srv.tls_port, b"GET /plain-on-tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 451
    assert srv.api("GET", "/api/v1/hits", "sz_000000000000_wrong").status_code == 401
    assert srv.api("GET", "/api/v1/hits?limit=1", investigator).status_code == 200
    hits = browsers + players + 3  # + the TLS request, the refused handshake (a hit too), plain HTTP on the TLS port

    def settled():
        now = scrape(srv)
        return now if api_timed(now) and moved(before, now, "seized_hits_stored_total") >= hits and not value(
            now, "seized_chain_unchecked_hits") else None

    after = wait_for(settled, message="the hits were not stored and checkpointed")
    for name in ("seized_hits_received_total", "seized_hits_journaled_total", "seized_hits_stored_total"):
        assert moved(before, after, name) == hits, name
    assert moved(before, after, "seized_hits_lost_total") == 0
    assert moved(before, after, "seized_ingest_batch_hits_sum") == hits  # every stored hit in some batch
    assert moved(before, after, "seized_ingest_batch_hits_count") >= 1
    assert moved(before, after, "seized_ingest_commit_seconds_count") == moved(before, after, "seized_ingest_batch_hits_count")

    latency = "seized_request_duration_seconds_count"
    assert moved(before, after, latency, listener="public_http", kind="browser") == browsers
    assert moved(before, after, latency, listener="public_http", kind="xtream_api") == players
    assert moved(before, after, latency, listener="public_http", kind="other") == 1  # plain HTTP on the TLS port
    assert moved(before, after, latency, listener="public_tls", kind="browser") == 1
    assert moved(before, after, latency, listener="public_tls", kind="other") == 1  # the refused handshake
    public = [key for key in after if key[0] == latency and dict(key[1])["listener"] != "management"]
    assert sum(after[key] for key in public) == value(after, "seized_hits_received_total")  # every hit timed once
    # A histogram's +Inf bucket is its count; its buckets never fall.
    assert value(after, "seized_request_duration_seconds_bucket", listener="public_http", kind="browser", le="+Inf") == \
        value(after, latency, listener="public_http", kind="browser")
    assert moved(before, after, latency, listener="management", kind="api") == 2

    assert moved(before, after, "seized_tls_handshakes_total", outcome="ok") == 1
    assert moved(before, after, "seized_tls_handshakes_total", outcome="plain_http") == 1
    failed = sum(moved(before, after, "seized_tls_handshakes_total", outcome=o)
                 for o in ("malformed_hello", "no_certificate", "handshake_failed", "timeout", "client_closed"))
    assert failed == 1

    assert moved(before, after, "seized_api_requests_total", role="none", status="401") == 1
    assert moved(before, after, "seized_api_requests_total", role="investigator", status="200") == 1
    assert moved(before, after, "seized_api_auth_failures_total", reason="invalid_token") == 1
    assert moved(before, after, "seized_api_auth_failures_total", reason="locked_out") == 0

    # Backlog and checkpoint: present, and what they should be once everything is stored and checkpointed.
    assert value(after, "seized_ingest_backlog_hits") >= 0 and value(after, "seized_ingest_backlog_bytes") >= 0
    wait_for(lambda: value(scrape(srv), "seized_ingest_backlog_bytes") == 0, message="the backlog never emptied")
    assert moved(before, after, "seized_chain_checkpoints_total") >= 1
    age = value(after, "seized_chain_checkpoint_age_seconds")
    assert 0 <= age <= time.time() - srv.started_at  # made by this server, so not before it started
    assert value(after, "seized_chain_checkpoint_signed") == 0  # no signing_key_file here
    assert value(after, "seized_database_up") == 1
    assert value(after, "seized_process_up", process="worker-0") == 1
    assert value(after, "seized_process_up", process="ingest") == 1


def test_metrics_need_no_token_and_the_public_port_has_none(metrics_server):
    assert httpx.get(metrics_server.admin_url("/metrics"), timeout=30).status_code == 200
    answer = request(metrics_server.public_port, target="/metrics")
    assert answer.status == 451 and b"seized_hits_received_total" not in answer.body


def test_checkpoint_age_is_known_again_right_after_a_restart(metrics_server):
    """The newest checkpoint is taken from the witness file at start, before this run makes one."""
    srv = metrics_server
    request(srv.public_port, target="/metrics-before-restart")

    def checkpointed():
        now = scrape(srv)
        return not value(now, "seized_chain_unchecked_hits") and \
            value(now, "seized_hits_stored_total") == value(now, "seized_hits_received_total")

    wait_for(checkpointed, message="the hit was not stored and checkpointed")
    assert srv.stop() == 0
    newest = json.loads((srv.directory / "witness" / "checkpoints.jsonl").read_text().splitlines()[-1])
    at = datetime.fromisoformat(newest["at"].replace("Z", "+00:00")).timestamp()
    srv.start()
    asked = time.time()
    samples = scrape(srv)
    answered = time.time()
    assert value(samples, "seized_chain_checkpoints_total") == 0  # none made by this run (no new hits)
    assert asked - at - 0.001 <= value(samples, "seized_chain_checkpoint_age_seconds") <= answered - at + 0.001
    assert value(samples, "seized_chain_checkpoint_signed") == 0
