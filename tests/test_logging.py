"""`seized serve --log-format json`, as a real server: every line it writes is one JSON object, each
event is written once, listeners say they started once each, and requests the lenient parser
handles as designed (the hostile corpus, an oversized head, TLS garbage, a refused handshake, a bad
API token, a head too slow, an unknown method with raw bytes, a client gone mid-head) log no WARNING."""

import json
import logging
import re
import signal
import socket
import ssl
import subprocess
import sys

import httpx
import pytest

from helpers import RUNNING, Server, free_port, raw_request, wait_for
from test_hostile_corpus import CORPUS, exchange

from app.process import JsonFormatter

UTC_MICROSECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def start_with_json_logs(server: Server) -> subprocess.Popen:
    """`seized serve --log-format json`, stdout and stderr kept apart, until it is ready."""
    with open(server.directory / "stdout", "wb") as out, open(server.directory / "stderr", "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--config", str(server.config_path),
                                    "--log-format", "json"], cwd=server.directory, stdout=out, stderr=err)
    RUNNING.add(process)

    def ready():
        assert process.poll() is None, (server.directory / "stderr").read_text()
        health = httpx.get(server.admin_url("/readyz"), timeout=2).json()
        return health["workers"] and all(w["alive"] and w["pid"] for w in health["workers"]) and health["ingest"]["pid"]

    wait_for(ready, timeout=60, ignoring=(httpx.HTTPError, ValueError, KeyError), message="the server did not start")
    return process


def tls_refused(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with pytest.raises(ssl.SSLError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="seized-iptv.example")


def test_json_log_one_line_per_event_and_no_warning_for_handled_requests(tmp_path, databases):
    tls_port = free_port()
    server = Server(tmp_path / "s", db_url=databases.url(tmp_path / "s"),
                    settings={"tls": [f"127.0.0.1:{tls_port}"], "header_timeout_s": 1})
    process = start_with_json_logs(server)
    try:
        for data in CORPUS.values():
            exchange(server.public_port, data)
        assert raw_request(server.public_port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n").status == 431
        assert raw_request(server.public_port, b"GET /slow HTTP/1.1\r\nHost: x\r\n").status == 408  # head never ends
        assert raw_request(server.public_port, b"BREW /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 451
        with socket.create_connection(("127.0.0.1", server.public_port)) as leaving:
            leaving.sendall(b"GET /left HTTP/1.1\r\nHost: x\r\n")  # and gone mid-head
        exchange(tls_port, b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello")
        tls_refused(tls_port)
        assert httpx.get(server.admin_url("/api/v1/hits"), headers={"Authorization": "Bearer nope"}).status_code == 401
        expected = len(CORPUS) + 6

        def stored():
            health = httpx.get(server.admin_url("/readyz"), timeout=5).json()
            return health["journal"]["received"] >= expected and health["ingest"]["ingested"] == health["journal"]["received"]

        wait_for(stored, message="the hits were not all stored")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        RUNNING.discard(process)
    assert code == 0

    records = []
    for stream in ("stdout", "stderr"):
        for line in (server.directory / stream).read_text().splitlines():
            record = json.loads(line)  # every line is JSON: no banner, no stray print
            assert set(record) >= {"time", "level", "process", "logger", "message"}, record
            assert UTC_MICROSECONDS.match(record["time"]), record
            records.append((line, record))
    assert records
    lines = [line for line, _ in records]
    assert len(lines) == len(set(lines)), [line for line in lines if lines.count(line) > 1]
    assert [r for _, r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")] == []
    assert not any(r["logger"] == "uvicorn.error" for _, r in records)

    def count(process_name: str, pattern: str) -> int:
        return sum(1 for _, r in records if r["process"] == process_name and re.search(pattern, r["message"]))

    # Each listener says once that it started, and once that it stopped.
    assert count("management", rf"^Uvicorn running on http://127\.0\.0\.1:{server.admin_port}\b") == 1
    assert count("worker-0", rf"listening on http://127\.0\.0\.1:{server.public_port}, https://127\.0\.0\.1:{tls_port} ") == 1
    assert count("worker-0", r"^worker 0 stopped") == 1
    assert count("ingest", r"^ingest stopped") == 1
    assert count("main", r"^seized stopped") == 1
    assert count("main", r"no admin token existed") == 1  # the first token: a JSON line too
    assert {r["process"] for _, r in records} == {"main", "worker-0", "ingest", "management"}


def test_the_json_formatter_keeps_an_exception_on_its_one_line():
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        record = logging.getLogger("seized.test").makeRecord("seized.test", logging.ERROR, __file__, 1,
                                                             "failed: %s", ("x",), sys.exc_info())
    line = JsonFormatter("worker-3").format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["process"] == "worker-3" and entry["message"] == "failed: x"
    assert entry["exception"].startswith("Traceback") and "ValueError: broken\nacross lines" in entry["exception"]
    assert UTC_MICROSECONDS.match(entry["time"])


def test_an_unknown_log_format_is_refused_clearly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--data-dir", str(tmp_path), "--log-format", "xml"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "xml" in result.stderr and "json" in result.stderr
