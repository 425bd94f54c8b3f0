"""The whole pipeline in one run, one table: seized against nginx serving the same bytes, loopback only.

Rows
  1  HTML notice, requests/s: wrk -t1 -c64 against seized and against nginx (1 worker, JSON
     access_log to a file) serving the bytes seized sent, with status 451 (`return 451` +
     `error_page`) and seized's own response headers.
  2  Stream URL (/live/U/P/ID.ts, the notice video): the same, nginx serving the same file.
  3  p50/p99 latency at a fixed rate of half seized's maximum (row 1), from an open-loop generator
     (below), against seized and against nginx at that same rate (the generator's own floor).
  4  seized --workers 1 vs --workers 2 on the HTML notice (when `seized serve` has --workers).
  5  Hits received vs logged: the responses the clients counted (2xx+4xx) for each load phase,
     then the rows that reach the `hits` table (waited for while the server runs, recounted after
     a clean stop); for nginx, its access-log lines.
  6  SIGKILL under load: 32 keep-alive connections, a unique path per request; the server's
     process group is SIGKILLed mid-load, restarted on the same data dir, and every response the
     client fully received is looked up in the log: missing and duplicated.
  7  Bytes per stored hit and 1M-hit CSV export time, from bench/storage.py and bench/export.py
     when they exist. Contract: each accepts --quick and prints as its last line
     `RESULT {json}`, storage.py with "bytes_per_hit", export.py with "rows" and "seconds".
  5b Ingest hits/s on SQLite, from row 1's load: the hits received over the load plus the time
     after it until the last one was a row (ingest runs during the load too).
  7c, 8, 9  PostgreSQL (bench/postgres.py): bytes per hit; 1 node and 2 nodes on one database
     under row 1's load: req/s, ingest hits/s, hits lost. --no-postgres skips them; they are
     skipped, with the reason, when --pg-url is not reachable.

The open-loop generator: N processes (uvloop when available), each with a fixed pool of
keep-alive connections; request i is due at t0 + i/rate whatever happened before it, waits in a
queue when every connection is busy, and its latency is counted from when it was due (not from
when it was sent), so a stalled server cannot hide its stalls (no coordinated omission). Its
timers have 1 ms resolution: a request may leave up to ~1 ms after it was due, and that delay is in
its latency (nginx at the same rate shows this floor). It reports its own CPU use: it shares the two
cores with the server, as wrk does.

`python bench/pipeline.py [--seconds 10] [--quick]`; `make bench` runs it. Every server here
listens on 127.0.0.1 only, and every load is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import http.client
import json
import math
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
HOST = "seized-iptv.example"
ACCEPT_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
STARTED = time.monotonic()
# bench/postgres.py imports this file as `pipeline`: run as a script, it is that module too.
sys.modules.setdefault("pipeline", sys.modules[__name__])


def say(message: str) -> None:
    """Progress, on stderr; the table is the only thing on stdout."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def get(port: int, path: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


# -- seized ----------------------------------------------------------------------------------------

SEIZED_CMD: list[str] = []  # --seized-cmd


def seized_command() -> list[str]:
    if SEIZED_CMD:
        return SEIZED_CMD
    script = Path(sys.executable).parent / "seized"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


def serve_options() -> set[str]:
    """The options today's `seized serve --help` lists (--data-dir and --workers are new)."""
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run([*seized_command(), "serve", "--help"], capture_output=True, text=True, env=env, cwd=PROJECT, timeout=60)
    return set(re.findall(r"--[a-z][a-z-]+", out.stdout + out.stderr))


def toml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else json.dumps(value)


class Seized:
    """One `seized serve` in its own process group, with its own config and data dir."""

    def __init__(self, directory: Path, options: set[str], workers: int | None = None, db: str | None = None,
                 node: str = "bench"):
        self.dir = directory
        self.db = db  # a postgresql:// URL (bench/postgres.py), else SQLite under the data dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.workers = workers
        self.public_port, self.admin_port = free_port(), free_port()
        self.config = self.dir / "seized.toml"
        self.log = self.dir / "server.log"
        self.process: subprocess.Popen | None = None
        settings = {"node": node, "public": f"127.0.0.1:{self.public_port}", "admin": f"127.0.0.1:{self.admin_port}",
                    "prerender_videos": True}
        if "--data-dir" not in options:  # today's code: say where everything goes
            settings.update(db=f"sqlite:///{self.dir / 'seized.db'}", spool_dir=str(self.dir / "spool"),
                            video_dir=str(self.dir / "video"))
        if db:
            settings["db"] = db
        lines = [f"{k} = {toml(v)}" for k, v in settings.items()]
        lines += ["[notice]", 'agency = "Bench Police"', 'blocked_by = "https://police.example/seized"']
        lines += ["[[domains]]", f"name = {toml(HOST)}", 'case_ref = "BENCH-1"',
                  'legal_basis = "Seizure order of the Court of Example, 2026-11-01"']
        self.config.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        command = [*seized_command(), "serve", "--config", str(self.config)]
        if "--data-dir" in self.options:
            command += ["--data-dir", str(self.dir)]
        if self.workers is not None and "--workers" in self.options:
            command += ["--workers", str(self.workers)]
        return command

    def start(self, timeout: float = 60) -> "Seized":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"seized exited at start ({self.process.returncode}): {self.log_tail()}")
            if time.monotonic() - started > 10 and "Traceback" in self.log.read_text(errors="replace"):
                self.kill()  # a failed start that left the process (or its children) hanging
                raise RuntimeError(f"seized failed at start and did not exit: {self.log_tail()}")
            try:
                if get(self.admin_port, "/healthz", timeout=1)[0] == 200 and wait_port(self.public_port, 1):
                    # healthz answers from the supervisor; wait for a listener worker to answer too
                    get(self.public_port, "/bench/ready", timeout=max(1.0, deadline - time.monotonic()))
                    return self
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"seized did not come up in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 6) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 90) -> int | None:
        """SIGTERM to the whole group (a clean stop drains the writer), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"seized did not stop within {timeout:.0f} s of SIGTERM: SIGKILL")
            self.kill()
            return None

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(30)

    def readyz(self) -> dict | None:
        try:
            return json.loads(get(self.admin_port, "/readyz", timeout=2)[2])
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def db_path(self) -> Path | None:
        """<dir>/seized.db, else the SQLite file under the data dir that has a `hits` table."""
        if (self.dir / "seized.db").exists():
            return self.dir / "seized.db"
        for path in sorted(self.dir.rglob("*.db")) + sorted(self.dir.rglob("*.sqlite*")):
            if path.suffix in (".db", ".sqlite", ".sqlite3") and has_hits(path):
                return path
        return None

    def count(self, where: str, params: tuple = ()) -> int:
        if self.db:
            return self.query(f"SELECT COUNT(*) FROM hit_rows WHERE {where}", params)[0][0]
        path = self.db_path()
        if path is None:
            return 0
        try:
            with sqlite3.connect(path, timeout=30) as db:
                return db.execute(f"SELECT COUNT(*) FROM hits WHERE {where}", params).fetchone()[0]
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return 0
            raise

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.db:  # PostgreSQL: the same SQL with psycopg's placeholders
            import psycopg

            with psycopg.connect(self.db, connect_timeout=10) as db:
                if params:
                    sql = sql.replace("%", "%%").replace("?", "%s")
                return db.execute(sql, params or None).fetchall()
        path = self.db_path()
        if path is None:
            return []
        with sqlite3.connect(path, timeout=30) as db:
            return db.execute(sql, params).fetchall()


def wait_idle(server: Seized, timeout: float = 60, below: float = 0.1) -> float:
    """Wait until the server's processes use less than `below` cores over half a second (after its
    start it renders the notice videos, for a few seconds after the first one is served), so that
    no measured load shares the CPU with that. Returns the seconds waited."""
    from tuned import cpu_seconds, group_pids

    def used() -> float:
        return sum(c or 0.0 for c in (cpu_seconds(pid) for pid in group_pids(server.process.pid)))

    started = time.monotonic()
    last = used()
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = used()
        if now - last < below * 0.5:
            break
        last = now
    return time.monotonic() - started


def has_hits(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='hits'").fetchone() is not None
    except sqlite3.Error:
        return False


class Phase:
    """One load run at one unique path: what the client counted, what reached the log."""

    def __init__(self, name: str, where: str, params: tuple, received: int):
        self.name, self.where, self.params, self.received = name, where, params, received
        self.logged_running: int | None = None
        self.logged_final: int | None = None
        self.ingest_s: float | None = None
        self.at_end: int | None = None  # rows when the load ended (the first count)
        self.drained_s: float | None = None  # seconds after the load until every received hit was a row


def ingest_rate(phase: Phase, load_s: float) -> dict | None:
    """Hits/s from the journal into the database for one load of `load_s` seconds: every hit the
    client received over the load plus the drain after it (ingest runs during the load too), and
    the drain alone (the backlog left at the load's end over the time it took to go)."""
    if phase.drained_s is None:
        return None
    backlog = phase.received - (phase.at_end or 0)
    return {"rate": phase.received / (load_s + phase.drained_s), "backlog": backlog, "drain_s": phase.drained_s,
            "drain_rate": backlog / phase.drained_s if phase.drained_s > 0.05 and backlog > 0 else None}


def wait_ingest(server: Seized, phase: Phase, timeout: float, settle: float = 5.0) -> None:
    """Poll the `hits` table until the phase's rows reach what the client received (then one more
    second for stragglers), or stop changing for `settle` seconds, or `timeout`."""
    started = time.monotonic()
    last, last_change = -1, started
    while True:
        now = time.monotonic()
        count = server.count(phase.where, phase.params)
        if phase.at_end is None:
            phase.at_end = count
        if count != last:
            last, last_change = count, now
        if count >= phase.received:
            phase.drained_s = time.monotonic() - started
            time.sleep(1.0)
            count = server.count(phase.where, phase.params)
            break
        if now - last_change >= settle or now - started >= timeout:
            break
        time.sleep(0.2)
    phase.logged_running, phase.ingest_s = count, time.monotonic() - started
    say(f"  {phase.name}: received {phase.received:,}, logged {count:,} after {phase.ingest_s:.1f} s")


# -- nginx -----------------------------------------------------------------------------------------

NGINX_SETS = {"date", "server", "content-length", "connection", "keep-alive", "transfer-encoding", "content-type",
              "last-modified", "etag"}


def nginx_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_headers(headers: list[tuple[str, str]], skip: set[str]) -> str:
    out = []
    for name, value in headers:
        if name.lower() in NGINX_SETS | skip:
            continue
        if "$" in value:  # would be a variable in nginx; none of seized's headers has one today
            continue
        out.append(f"add_header {name} {nginx_quote(value)} always;")
    return " ".join(out)


class Nginx:
    """nginx, 1 worker, JSON access log to a file, answering like seized: the captured notice page
    with status 451 for every path, the captured video for /live/."""

    def __init__(self, root: Path, page: bytes, page_status: int, page_headers, video: bytes | None, video_headers):
        self.root = root
        (root / "html").mkdir(parents=True, exist_ok=True)
        (root / "html" / "_notice.html").write_bytes(page)
        if video is not None:
            (root / "html" / "notice.ts").write_bytes(video)
        self.port = free_port()
        self.access_log = root / "access.log"
        page_type = dict((k.lower(), v) for k, v in page_headers).get("content-type", "text/html; charset=utf-8")
        video_type = dict((k.lower(), v) for k, v in video_headers or []).get("content-type", "video/mp2t")
        if page_status >= 400:
            html = (f"error_page {page_status} /_notice.html; location = /_notice.html {{ internal; types {{ }} "
                    f"default_type {nginx_quote(page_type)}; {add_headers(page_headers, set())} }} "
                    f"location / {{ return {page_status}; }}")
        else:
            html = (f"location / {{ types {{ }} default_type {nginx_quote(page_type)}; "
                    f"{add_headers(page_headers, set())} try_files /_notice.html =404; }}")
        live = (f"location /live/ {{ types {{ }} default_type {nginx_quote(video_type)}; "
                f"{add_headers(video_headers or [], {'accept-ranges'})} try_files /notice.ts =404; }}")
        fields = ", ".join(f'"{k}":"${v}"' for k, v in [
            ("time", "time_iso8601"), ("msec", "msec"), ("remote_addr", "remote_addr"), ("remote_port", "remote_port"),
            ("host", "http_host"), ("method", "request_method"), ("uri", "request_uri"), ("protocol", "server_protocol"),
            ("status", "status"), ("bytes", "body_bytes_sent"), ("user_agent", "http_user_agent"),
            ("accept", "http_accept"), ("accept_language", "http_accept_language"), ("request_time", "request_time")])
        (root / "nginx.conf").write_text(f"""
worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format hitjson escape=json '{{{fields}}}';
  access_log {self.access_log} hitjson;
  client_body_temp_path {root}; proxy_temp_path {root}; fastcgi_temp_path {root}; uwsgi_temp_path {root}; scgi_temp_path {root};
  server_tokens off; etag off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{self.port}; root {root}/html; {live} {html} }}
}}
""")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        self.process = subprocess.Popen(["nginx", "-c", str(self.root / "nginx.conf"), "-p", str(self.root)],
                                        stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"),
                                        start_new_session=True)
        if not wait_port(self.port, 10):
            self.stop()
            raise RuntimeError(f"nginx did not start: {(self.root / 'stderr.log').read_text()}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finish, flush, exit
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def logged(self, path: str) -> int:
        needle = f'"uri":"{path}"'
        try:
            with open(self.access_log, encoding="utf-8", errors="replace") as log:
                return sum(1 for line in log if needle in line)
        except FileNotFoundError:
            return 0


# -- wrk -------------------------------------------------------------------------------------------

STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  local k = tostring(math.floor(status / 100)) .. "xx"
  counts[k] = (counts[k] or 0) + 1
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do io.write(string.format("STATUS %s %d\\n", k, v)) end
  end
end
"""
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(port: int, path: str, seconds: float, connections: int, count_statuses: bool, work: Path,
        headers: dict | None = None) -> dict:
    """wrk -t1. `count_statuses` adds a Lua response() that counts status classes: free for a small
    page, but it makes wrk buffer every body, so for the video the 2xx/3xx count is taken as
    requests minus wrk's own 'Non-2xx or 3xx' count instead."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s",
               "-H", f"Host: {HOST}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if count_statuses:
        script = work / "status.lua"
        script.write_text(STATUS_LUA)
        command += ["-s", str(script)]
    out = subprocess.run([*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout

    def latency(pct: str) -> float | None:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(match.group(1)) * UNIT_MS[match.group(2)] if match else None

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx3xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    statuses = {k: int(v) for k, v in re.findall(r"^STATUS (\dxx) (\d+)$", out, re.M)}
    if not statuses:
        bad = int(non2xx3xx.group(1)) if non2xx3xx else 0
        statuses = {"2xx/3xx": requests - bad, "other": bad}
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"), "p99_ms": latency("99"),
        "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
        "statuses": statuses,
        "answered": statuses.get("2xx", 0) + statuses.get("4xx", 0) + statuses.get("2xx/3xx", 0),
    }


# -- open-loop generator ---------------------------------------------------------------------------

class _LoadConnection(asyncio.Protocol):
    """One keep-alive connection of the open-loop generator: one request at a time (no pipelining),
    the next one as soon as the answer is complete, from the shared backlog of due requests."""

    def __init__(self, generator: "_Generator"):
        self.g = generator
        self.transport = None
        self.buffer = bytearray()
        self.due: float | None = None
        self.need = -1  # bytes of the whole response, once its head is in

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.g.connected(self)

    def send(self, due: float) -> None:
        self.due = due
        self.transport.write(self.g.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.due is not None:
            if self.need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                at = head.find(b"content-length:")
                length = int(head[at + 15:head.index(b"\r\n", at) if b"\r\n" in head[at:] else None]) if at >= 0 else 0
                self.need = end + 4 + length
                self.status = self.buffer[9:10]
            if len(self.buffer) < self.need:
                return
            del self.buffer[:self.need]
            self.need = -1
            due, self.due = self.due, None
            self.g.completed(self, due, self.status)

    def connection_lost(self, exc) -> None:
        self.g.lost(self)


class _Generator:
    def __init__(self, request: bytes):
        self.request = request
        self.idle: list[_LoadConnection] = []
        self.backlog: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors = 0
        self.open = 0

    def connected(self, conn: _LoadConnection) -> None:
        self.open += 1
        self.idle.append(conn)

    def dispatch(self, due: float) -> None:
        if self.idle:
            self.idle.pop().send(due)
        else:
            self.backlog.append(due)  # waits for a free connection; its latency still counts from `due`

    def completed(self, conn: _LoadConnection, due: float, status: bytes) -> None:
        self.latencies.append(time.monotonic() - due)
        self.statuses[status.decode() + "xx"] += 1
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: _LoadConnection) -> None:
        self.open -= 1
        if conn.due is not None:
            self.errors += 1
        if conn in self.idle:
            self.idle.remove(conn)


def _openloop_process(port: int, path: str, rate: float, seconds: float, connections: int, start_at: float,
                      offset: float, drain_s: float) -> dict:
    """One generator process: request i is due at start_at + offset + i/rate; latency from when due."""
    async def run() -> dict:
        loop = asyncio.get_running_loop()
        g = _Generator(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: {ACCEPT_HTML}\r\n\r\n".encode())
        for _ in range(connections):
            await loop.create_connection(lambda: _LoadConnection(g), "127.0.0.1", port)
        count = int(rate * seconds)
        t0 = start_at + offset
        interval = 1.0 / rate
        lag_max = 0.0
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        i = 0
        while i < count:
            now = time.monotonic()
            while i < count and t0 + i * interval <= now:
                g.dispatch(t0 + i * interval)
                i += 1
            lag_max = max(lag_max, now - (t0 + (i - 1) * interval))
            if i < count:
                # uvloop's timers have millisecond resolution: a shorter sleep would spin. Requests
                # sent up to ~1 ms late still count their latency from when they were due.
                await asyncio.sleep(max(0.001, t0 + i * interval - time.monotonic()))
        deadline = time.monotonic() + drain_s
        while len(g.latencies) + g.errors < count and g.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        end = time.monotonic()
        for conn in list(g.idle):
            conn.transport.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"scheduled": count, "latencies": g.latencies, "statuses": dict(g.statuses), "errors": g.errors,
                "end": end, "t0": t0, "lag_max": lag_max, "cpu_s": usage.ru_utime + usage.ru_stime}

    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run())


def open_loop(port: int, path: str, rate: float, seconds: float, connections: int = 64, procs: int = 2) -> dict:
    procs = max(1, procs)
    start_at = time.monotonic() + 1.5  # every process connects its pool before this
    args = [(port, path, rate / procs, seconds, max(1, connections // procs), start_at, k / rate, 10.0)
            for k in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.starmap(_openloop_process, args)
    latencies = sorted(x for part in parts for x in part["latencies"])
    statuses: Counter = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    scheduled = sum(part["scheduled"] for part in parts)
    completed = len(latencies)
    t0 = min(part["t0"] for part in parts)

    def pct(p: float) -> float | None:
        return latencies[min(completed - 1, max(0, math.ceil(p * completed) - 1))] * 1000 if completed else None

    # Achieved: completed responses per second of the schedule (a server that falls behind
    # finishes later; its rate is then counted over the longer time it took).
    span = max(seconds, max(t0 + seconds, max(part["end"] for part in parts)) - t0) if completed else seconds
    return {"target": rate, "scheduled": scheduled, "completed": completed,
            "achieved": completed / span if completed else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "errors": sum(part["errors"] for part in parts), "unanswered": scheduled - completed,
            "statuses": dict(statuses), "answered": statuses.get("2xx", 0) + statuses.get("4xx", 0),
            "lag_max_ms": max(part["lag_max"] for part in parts) * 1000,
            "cpu_cores": sum(part["cpu_s"] for part in parts) / span}


# -- SIGKILL under load ----------------------------------------------------------------------------

def kill_under_load(server: Seized, run_before_kill: float, connections: int = 32) -> dict:
    """Unique path per request on `connections` keep-alive connections; SIGKILL the server's group
    after `run_before_kill` seconds. Returns the paths whose response arrived complete."""
    received: set[str] = set()
    sent = 0
    killed_at: list[float] = []

    async def run() -> None:
        nonlocal sent
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def kill() -> None:
            os.killpg(server.process.pid, signal.SIGKILL)
            killed_at.append(time.monotonic())
            stop.set()

        async def client(c: int) -> None:
            nonlocal sent
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.public_port)
            except OSError:
                return
            seq = 0
            try:
                while True:
                    path = f"/kill/{c}-{seq}"
                    seq += 1
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: {ACCEPT_HTML}\r\n\r\n".encode())
                    sent += 1
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    await reader.readexactly(int(length.group(1)) if length else 0)
                    received.add(path)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

        loop.call_later(run_before_kill, kill)
        tasks = [asyncio.create_task(client(c)) for c in range(connections)]
        await stop.wait()
        done, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()

    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run())
    server.process.wait(30)
    return {"received": received, "sent": sent}


# -- bench/storage.py, bench/export.py -------------------------------------------------------------

def run_result_script(name: str, quick: bool, timeout: float) -> tuple[dict | None, str]:
    """Run bench/<name> (in its own process group, killed whole past `timeout`) and read its final
    `RESULT {json}` line. --quick is passed only when the script's --help lists it; in a quick run
    a script without --quick is skipped (a full-size run would not be a smoke test)."""
    path = BENCH / name
    if not path.exists():
        return None, f"n/a: bench/{name} does not exist yet"
    command = [sys.executable, str(path)]
    if quick:
        help_text = subprocess.run([*command, "--help"], cwd=PROJECT, capture_output=True, text=True, timeout=60).stdout
        if "--quick" not in help_text:
            return None, f"n/a: skipped in --quick (bench/{name} has no --quick)"
        command.append("--quick")
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, f"n/a: bench/{name} ran past {timeout:.0f} s (killed)"
    took = time.monotonic() - started
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if lines:
        try:
            return json.loads(lines[-1][len("RESULT "):]), f"bench/{name} ({took:.0f} s)"
        except ValueError:
            return None, f"n/a: bench/{name}'s RESULT line is not JSON"
    last = (stdout.strip().splitlines() or [""])[-1] if process.returncode == 0 else \
        ((stderr or stdout).strip().splitlines() or [""])[-1]
    return None, f"n/a: bench/{name} exit {process.returncode} in {took:.0f} s, no RESULT line; its last line: {last[:160]}"


# -- the run ---------------------------------------------------------------------------------------

class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(self, number: str, measure: str, seized: str, nginx: str = "n/a", ratio: str = "", note: str = "") -> None:
        self.rows.append((number, measure, seized, nginx, ratio, note))

    def print(self, header: str) -> None:
        titles = ("#", "measure", "seized", "nginx", "ratio", "note")
        widths = [max(len(r[i]) for r in [titles, *self.rows]) for i in range(5)]
        print(header)
        line = lambda r: "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), *(c.rjust(w) for c, w in zip(r[2:5], widths[2:5])), r[5]]).rstrip()
        print(line(titles))
        print("  ".join("-" * w for w in widths) + "  " + "-" * 4)
        for r in self.rows:
            print(line(r))


def ratio(a, b, digits: int = 2) -> str:
    return f"{a / b:.{digits}f}x" if a is not None and b else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of each measured load run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up before each measured wrk run (default 2)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--gen-procs", type=int, default=2, help="open-loop generator processes")
    parser.add_argument("--kill-after", type=float, default=3, help="seconds of load before the SIGKILL (row 6)")
    parser.add_argument("--ingest-timeout", type=float, default=90, help="longest wait for hits to reach the table")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s loads, 1 s warm-ups")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    parser.add_argument("--script-timeout", type=float, default=120,
                        help="longest run of bench/storage.py and of bench/export.py (default 120 s)")
    parser.add_argument("--seized-cmd", help="command that runs seized (default: the venv's `seized`)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows (7c, 8, 9)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL database to connect to for creating (and dropping) the bench's own "
                             "databases; when not reachable, the PostgreSQL rows are skipped, with the reason")
    args = parser.parse_args()
    if args.seized_cmd:
        SEIZED_CMD[:] = shlex.split(args.seized_cmd)
    if args.quick:
        args.seconds, args.warmup, args.kill_after, args.ingest_timeout = 2, 1, 1.5, 30
        args.script_timeout = min(args.script_timeout, 60)
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx-light")

    options = serve_options()
    has_workers, has_data_dir = "--workers" in options, "--data-dir" in options
    say(f"seized serve: --data-dir {'yes' if has_data_dir else 'no (db/spool_dir/video_dir in the config)'}, "
        f"--workers {'yes' if has_workers else 'no'}")
    table = Table()
    tmp = tempfile.mkdtemp(prefix="seized-bench-")
    os.chmod(tmp, 0o755)  # nginx's worker runs as an unprivileged user and reads the page from here
    work = Path(tmp)
    seconds, warm, conns = args.seconds, args.warmup, args.connections
    results: dict = {}
    try:
        # ---- seized, 1 worker: HTML, stream, open-loop ------------------------------------------
        a = Seized(work / "seized-a", options, workers=1 if has_workers else None)
        phases_a: list[Phase] = []
        say(f"starting seized: {' '.join(a.command())}")
        a.start()
        try:
            status, page_headers, page = get(a.public_port, "/", {"Accept": ACCEPT_HTML})
            results["page"] = (status, page_headers, page)
            say(f"notice page: status {status}, {len(page):,} bytes")
            video_status, video_headers, video = get(a.public_port, "/live/user/pass/1.ts", timeout=180)
            if not video_headers or dict((k.lower(), v) for k, v in video_headers).get("content-type") != "video/mp2t":
                say(f"stream URL answered {video_status} {dict(video_headers).get('content-type')}: not a video")
            results["video"] = (video_status, video_headers, video)
            say(f"notice video: status {video_status}, {len(video):,} bytes; idle after {wait_idle(a):.1f} s")

            def seized_wrk(name: str, path: str, server: Seized, phases: list) -> dict:
                """Warm-up and measured wrk run on the HTML notice, each waited for in the log, so
                that the writer's backlog from one run does not run during the next."""
                say(f"seized {name}: warm-up {warm:.0f} s + wrk {seconds:.0f} s")
                w = wrk(server.public_port, f"{path}/warm", warm, conns, True, work, {"Accept": ACCEPT_HTML})
                wait_ingest(server, Phase(f"{name} warm-up", "path = ?", (f"{path}/warm",), w["answered"]), args.ingest_timeout)
                from postgres import CpuByKind  # CPU by process kind, as the PostgreSQL rows show it
                cpu = CpuByKind([server])
                r = wrk(server.public_port, path, seconds, conns, True, work, {"Accept": ACCEPT_HTML})
                r["cpu_load"] = cpu.mark()
                r["phase"] = Phase(name, "path = ?", (path,), r["answered"])
                wait_ingest(server, r["phase"], args.ingest_timeout)
                r["cpu_drain"] = cpu.mark(r["phase"].drained_s)
                r["ingest"] = ingest_rate(r["phase"], r["requests"] / r["rps"] if r["rps"] else seconds)
                phases.append(r["phase"])
                return r

            results["s_html"] = seized_wrk("html", "/bench/html", a, phases_a)
            results["s_html_ingest"] = results["s_html"]["ingest"]
            # Stream paths are stored with the password segment redacted: match on the stream id.
            say(f"seized stream: warm-up {warm:.0f} s + wrk {seconds:.0f} s")
            w = wrk(a.public_port, "/live/user/pass/990001.ts", warm, conns, False, work)
            wait_ingest(a, Phase("stream warm-up", "path LIKE ?", ("/live/%/990001.ts",), w["answered"]), args.ingest_timeout)
            r = wrk(a.public_port, "/live/user/pass/990002.ts", seconds, conns, False, work)
            r["phase"] = Phase("stream", "path LIKE ?", ("/live/%/990002.ts",), r["answered"])
            wait_ingest(a, r["phase"], args.ingest_timeout)
            phases_a.append(r["phase"])
            results["s_stream"] = r

            rate = results["s_html"]["rps"] / 2
            results["rate"] = rate
            say(f"seized open-loop: {rate:,.0f} req/s for {seconds:.0f} s, {args.gen_procs} processes, {conns} connections")
            o = open_loop(a.public_port, "/bench/openloop", rate, seconds, conns, args.gen_procs)
            o["phase"] = Phase("open-loop", "path = ?", ("/bench/openloop",), o["answered"])
            wait_ingest(a, o["phase"], args.ingest_timeout)
            phases_a.append(o["phase"])
            results["s_open"] = o
        finally:
            say("stopping seized (SIGTERM), then recounting the log")
            code = a.stop()
            results["a_exit"] = code
            for phase in phases_a:
                phase.logged_final = a.count(phase.where, phase.params)

        # ---- nginx: the same bytes ------------------------------------------------------------
        status, page_headers, page = results["page"]
        video_status, video_headers, video = results["video"]
        ng = Nginx(work / "nginx", page, status, page_headers, video, video_headers).start()
        try:
            n_status, n_headers, n_page = get(ng.port, "/", {"Accept": ACCEPT_HTML})
            nv_status, nv_headers, n_video = get(ng.port, "/live/user/pass/1.ts")
            results["n_check"] = (n_status, n_headers, n_page, nv_status, nv_headers, n_video)
            say(f"nginx answers: page {n_status} {len(n_page):,} bytes, stream {nv_status} {len(n_video):,} bytes")
            say(f"nginx html: warm-up {warm:.0f} s + wrk {seconds:.0f} s")
            wrk(ng.port, "/bench/html/warm", warm, conns, True, work, {"Accept": ACCEPT_HTML})
            results["n_html"] = wrk(ng.port, "/bench/html", seconds, conns, True, work, {"Accept": ACCEPT_HTML})
            say(f"nginx stream: warm-up {warm:.0f} s + wrk {seconds:.0f} s")
            wrk(ng.port, "/live/user/pass/990001.ts", warm, conns, False, work)
            results["n_stream"] = wrk(ng.port, "/live/user/pass/990002.ts", seconds, conns, False, work)
            say(f"nginx open-loop: {rate:,.0f} req/s for {seconds:.0f} s")
            results["n_open"] = open_loop(ng.port, "/bench/openloop", rate, seconds, conns, args.gen_procs)
        finally:
            ng.stop()
        results["n_logged"] = {p: ng.logged(p) for p in ("/bench/html", "/live/user/pass/990002.ts", "/bench/openloop")}

        # ---- seized --workers 2 ----------------------------------------------------------------
        if has_workers:
            b = Seized(work / "seized-b", options, workers=2)
            say(f"starting seized: {' '.join(b.command())}")
            b.start()
            get(b.public_port, "/live/user/pass/1.ts", timeout=180)
            say(f"  notice video made, idle after {wait_idle(b):.1f} s")
            phases_b: list[Phase] = []
            try:
                results["s_w2"] = seized_wrk("html --workers 2", "/bench/html-w2", b, phases_b)
            finally:
                results["b_exit"] = b.stop()
                for phase in phases_b:
                    phase.logged_final = b.count(phase.where, phase.params)
            phases_a += phases_b

        # ---- SIGKILL under load --------------------------------------------------------------
        c = Seized(work / "seized-c", options, workers=1 if has_workers else None)
        say(f"SIGKILL run: 32 connections, unique paths, kill -9 of the group after {args.kill_after:.1f} s")
        c.start()
        k = kill_under_load(c, args.kill_after)
        say(f"  client: {k['sent']:,} sent, {len(k['received']):,} fully received; restarting seized on the same data dir")
        c.start()
        try:
            phase = Phase("after SIGKILL", "path LIKE ?", ("/kill/%",), len(k["received"]))
            wait_ingest(c, phase, args.ingest_timeout)
            logged_rows = [row[0] for row in c.query("SELECT path FROM hits WHERE path LIKE '/kill/%'")]
            ready = c.readyz()
        finally:
            c.stop()
        logged_set = set(logged_rows)
        results["kill"] = {
            "received": len(k["received"]), "sent": k["sent"], "logged": len(logged_rows),
            "missing": len(k["received"] - logged_set), "duplicates": len(logged_rows) - len(logged_set),
            "unanswered_logged": len(logged_set - k["received"]), "ingest_s": phase.ingest_s,
            "readyz": {k: v for k, v in {**((ready or {}).get("journal") or {}), **((ready or {}).get("ingest") or {}),
                                         **((ready or {}).get("counters") or {})}.items()
                       if k in ("lost", "duplicates", "gaps", "gap_bytes", "received", "stored", "spooled", "replayed")},
        }

        # ---- storage and export (other scripts) ----------------------------------------------
        say("bench/storage.py and bench/export.py")
        results["storage"] = run_result_script("storage.py", args.quick, args.script_timeout)
        results["export"] = run_result_script("export.py", args.quick, args.script_timeout)

        # ---- PostgreSQL: 1 node, 2 nodes, bytes per hit (bench/postgres.py) --------------------
        import postgres
        results["pg"] = postgres.run(args, work, options, has_workers)
    except Exception:
        say("the run stopped early:\n" + traceback.format_exc())
        results["error"] = traceback.format_exc().strip().splitlines()[-1]
    finally:
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    build_table(table, results, args, has_workers)
    mode = "quick" if args.quick else "full"
    table.print(f"\nseized pipeline bench ({mode}): loopback, 2 cores shared by server and client; wrk -t1 -c{conns}, "
                f"{seconds:.0f} s per run after {warm:.0f} s warm-up; nginx 1 worker, JSON access_log")
    if "error" in results:
        print(f"run stopped early: {results['error']}")


def header_names(headers) -> set[str]:
    return {k.lower() for k, _ in headers or []}


def build_table(table: Table, r: dict, args, has_workers: bool) -> None:
    # 1. HTML notice
    s, n = r.get("s_html"), r.get("n_html")
    if s:
        page = r["page"]
        note = f"body {len(page[2]):,} B seized"
        if "n_check" in r:
            nc = r["n_check"]
            note += f" / {len(nc[2]):,} B nginx ({'same bytes' if nc[2] == page[2] else 'DIFFERENT bytes'})"
            note += f", status {page[0]}/{nc[0]}"
            only_s = sorted(header_names(page[1]) - header_names(nc[1]))
            only_n = sorted(header_names(nc[1]) - header_names(page[1]))
            note += f", headers only seized: {','.join(only_s) or '-'}, only nginx: {','.join(only_n) or '-'}"
        note += f"; p99 {fmt(s['p99_ms'], 1)} / {fmt(n['p99_ms'] if n else None, 1)} ms"
        errs = s["socket_errors"] + (n["socket_errors"] if n else 0)
        if errs:
            note += f"; socket errors {s['socket_errors']}/{n['socket_errors'] if n else 'n/a'}"
        table.add("1", "HTML notice, req/s", fmt(s["rps"]), fmt(n["rps"] if n else None), ratio(s["rps"], n["rps"] if n else None), note)
    else:
        table.add("1", "HTML notice, req/s", "n/a", "n/a", "", "not measured")

    # 2. stream
    s, n = r.get("s_stream"), r.get("n_stream")
    if s:
        video = r["video"]
        note = f"body {len(video[2]):,} B seized"
        if "n_check" in r:
            nc = r["n_check"]
            note += f" / {len(nc[5]):,} B nginx ({'same bytes' if nc[5] == video[2] else 'DIFFERENT bytes'}), status {video[0]}/{nc[3]}"
        note += f"; {fmt(s['rps'] * len(video[2]) / 1e6)} MB/s seized; p99 {fmt(s['p99_ms'], 1)} / {fmt(n['p99_ms'] if n else None, 1)} ms"
        if s["statuses"].get("other"):
            note += f"; seized non-2xx/3xx {s['statuses']['other']}"
        table.add("2", "stream URL (.ts), req/s", fmt(s["rps"]), fmt(n["rps"] if n else None), ratio(s["rps"], n["rps"] if n else None), note)
    else:
        table.add("2", "stream URL (.ts), req/s", "n/a", "n/a", "", "not measured")

    # 3. open-loop
    s, n = r.get("s_open"), r.get("n_open")
    if s:
        note = (f"target {fmt(s['target'])} req/s (half of row 1); achieved {fmt(s['achieved'])} / {fmt(n['achieved'] if n else None)}; "
                f"p50 {fmt(s['p50_ms'], 2)} / {fmt(n['p50_ms'] if n else None, 2)} ms; max {fmt(s['max_ms'], 1)} / "
                f"{fmt(n['max_ms'] if n else None, 1)} ms; unanswered {s['unanswered']}/{n['unanswered'] if n else 'n/a'}; "
                f"generator: send lag max {fmt(s['lag_max_ms'], 1)} / {fmt(n['lag_max_ms'] if n else None, 1)} ms, "
                f"CPU {s['cpu_cores']:.2f} / {n['cpu_cores'] if n else 0:.2f} cores")
        table.add("3", "p99 ms at fixed ½-max rate", fmt(s["p99_ms"], 2), fmt(n["p99_ms"] if n else None, 2),
                  ratio(s["p99_ms"], n["p99_ms"] if n else None, 1), note)
    else:
        table.add("3", "p99 ms at fixed ½-max rate", "n/a", "n/a", "", "not measured")

    # 4. workers
    w1, w2 = r.get("s_html"), r.get("s_w2")
    if not has_workers:
        table.add("4", "req/s --workers 1 / 2", "n/a", "n/a", "", "`seized serve` has no --workers option yet")
    elif w1 and w2:
        table.add("4", "req/s --workers 1 / 2", f"{fmt(w1['rps'])} / {fmt(w2['rps'])}", "n/a", ratio(w2["rps"], w1["rps"]),
                  f"workers 1 is row 1's run; ratio = 2 workers / 1; p99 {fmt(w1['p99_ms'], 1)} / {fmt(w2['p99_ms'], 1)} ms")
    else:
        table.add("4", "req/s --workers 1 / 2", "n/a", "n/a", "", "not measured")

    # 5. received vs logged
    phases = [x["phase"] for x in (r.get("s_html"), r.get("s_stream"), r.get("s_open"), r.get("s_w2")) if x]
    if phases:
        received = sum(p.received for p in phases)
        running = sum(p.logged_running or 0 for p in phases)
        final = sum(p.logged_final if p.logged_final is not None else (p.logged_running or 0) for p in phases)
        lost = sum(max(0, p.received - (p.logged_final if p.logged_final is not None else p.logged_running or 0)) for p in phases)
        n_received = sum(x["answered"] for x in (r.get("n_html"), r.get("n_stream"), r.get("n_open")) if x)
        n_logged = sum((r.get("n_logged") or {}).values())
        per = "; ".join(f"{p.name} {p.received:,}->{p.logged_running:,} in {p.ingest_s:.1f}s"
                        + (f" (+{p.logged_final - p.logged_running:,} at stop)" if p.logged_final and p.logged_final != p.logged_running else "")
                        for p in phases)
        table.add("5", "hits lost (received - logged)", f"{lost:,} of {received:,}",
                  f"{max(0, n_received - n_logged):,} of {n_received:,}" if n_received else "n/a", "",
                  f"logged {running:,} while running, {final:,} after clean stop (extra = in flight when the client stopped); {per}; "
                  f"nginx access.log lines {n_logged:,}")
    else:
        table.add("5", "hits lost (received - logged)", "n/a", "n/a", "", "not measured")
    from postgres import cores_text
    ing, s = r.get("s_html_ingest"), r.get("s_html")
    if ing:
        table.add("5b", "ingest hits/s (SQLite)", fmt(ing["rate"]), "n/a", "",
                  f"row 1's load: {s['phase'].received:,} hits over the {s['requests'] / s['rps']:.1f} s load + {ing['drain_s']:.1f} s "
                  f"until the last was a row; backlog at the load's end {ing['backlog']:,}, drained alone at "
                  f"{fmt(ing['drain_rate'])} hits/s; CPU cores during the load: {cores_text(s.get('cpu_load'))}; "
                  f"during the drain: {cores_text(s.get('cpu_drain'))}")
    else:
        table.add("5b", "ingest hits/s (SQLite)", "n/a", "n/a", "", "not measured (or not drained)")

    # 6. SIGKILL
    k = r.get("kill")
    if k:
        table.add("6", "SIGKILL: received, not logged", f"{k['missing']:,} of {k['received']:,}", "n/a", "",
                  f"duplicates {k['duplicates']}; {k['sent']:,} sent, {k['logged']:,} rows after restart "
                  f"({k['unanswered_logged']:,} logged but never answered) after {fmt(k['ingest_s'], 1)} s; "
                  f"/readyz after restart {json.dumps(k['readyz'], separators=(',', ':')) if k['readyz'] else 'n/a'}")
    else:
        table.add("6", "SIGKILL: received, not logged", "n/a", "n/a", "", "not measured")

    # 7. storage / export
    storage, source = r.get("storage") or (None, "n/a: not run")
    if storage and "bytes_per_hit" in storage:
        table.add("7a", "bytes per stored hit", fmt(storage["bytes_per_hit"]), "n/a", "",
                  f"{source}: " + json.dumps({k: v for k, v in storage.items() if k != 'bytes_per_hit'}, separators=(',', ':')))
    else:
        table.add("7a", "bytes per stored hit", "n/a", "n/a", "", source if not storage else f"{source}: {json.dumps(storage)}")
    export, source = r.get("export") or (None, "n/a: not run")
    if export and "seconds" in export:
        table.add("7b", f"CSV export of {fmt(export.get('rows'))} hits, s", fmt(export["seconds"], 1), "n/a", "",
                  f"{source}: " + json.dumps({k: v for k, v in export.items() if k not in ('seconds', 'rows')}, separators=(',', ':')))
    else:
        table.add("7b", "CSV export of 1M hits, s", "n/a", "n/a", "", source if not export else f"{source}: {json.dumps(export)}")

    # 7c, 8, 9. PostgreSQL
    import postgres
    postgres.storage_row(table, r)
    postgres.node_rows(table, r)


if __name__ == "__main__":
    main()
