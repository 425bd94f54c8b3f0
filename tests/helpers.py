"""Talking to a real `seized serve` process: start/stop it, raw HTTP over sockets, read its SQLite file."""

from __future__ import annotations

import atexit
import json
import marshal
from contextlib import closing
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port free *now*: something else may take it before the server binds it (Server.start retries)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float = 60, interval: float = 0.1, message: str = "condition not met in time",
             ignoring: tuple[type[BaseException], ...] = ()):
    """Poll `condition()` until it returns something truthy, and return that; fail after `timeout`
    seconds. Exceptions of the `ignoring` types count as "not yet" (a server restarting a process)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
        except ignoring as error:
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)" + (f"; last error: {last_error!r}" if last_error else ""))
        time.sleep(interval)


POSTGRES = os.environ.get("SEIZED_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def sql(url: str, query: str, params: tuple | list = ()) -> list[dict]:
    """Rows of `query` (qmark placeholders, SQL both backends speak) on the database at `url`:
    sqlite3 on an SQLite file, psycopg on PostgreSQL, never the app's own store."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///"):], timeout=10)) as db, db:  # committed
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(query, params)]
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        cursor = db.execute(query.replace("%", "%%").replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def tamper(url: str, *statements) -> None:
    """Change a database as whoever holds it outright can: past the append-only triggers (SQLite:
    dropped from the file; PostgreSQL: skipped for the session, as its owner may). A statement is
    SQL, or (SQL, parameters) with qmark placeholders."""
    statements = [(s, ()) if isinstance(s, str) else s for s in statements]
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///"):])) as db, db:
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%RAISE(ABORT%'").fetchall():
                db.execute(f'DROP TRIGGER "{name}"')
            for statement, params in statements:
                db.execute(statement, params)
        return
    import psycopg

    with psycopg.connect(url) as db:  # one transaction
        db.execute("SET LOCAL session_replication_role = replica")
        for statement, params in statements:
            db.execute(statement.replace("%", "%%").replace("?", "%s"), params)


class Databases:
    """Where the servers of a test session keep their data, on one backend: an SQLite file each,
    or a PostgreSQL database each, created on the test server and dropped when the session ends."""

    def __init__(self, backend: str):
        self.backend = backend
        self.created: list[str] = []

    def url(self, directory: Path) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{directory / 'seized.db'}"
        name = f"seized_test_{os.getpid()}_{len(self.created)}_{os.urandom(3).hex()}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return POSTGRES.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()

    @staticmethod
    def _admin(statement: str) -> None:
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as db:
            db.execute(statement)


ADDRESS_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
START_ATTEMPTS = 5

# Every server process started and not yet seen to exit: killed when pytest exits, whatever happened
# (a fixture that failed half-way, an interrupted run). Its children die with it (die_with_parent).
RUNNING: set[subprocess.Popen] = set()


@atexit.register
def kill_leftovers() -> None:
    for process in list(RUNNING):
        if process.poll() is None:
            process.kill()
            process.wait(10)
    RUNNING.clear()


class PortTaken(RuntimeError):
    """The server could not bind a port `free_port` picked: taken in the meantime."""


def toml_value(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    local_port: int

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


# Local port -> when its latest request was sent, in the stored form. Ports are reused over a
# session, so a hit is found by its port *and* by having been received after that.
SENT: dict[int, str] = {}


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> Response:
    """Send bytes as they are (no client-side validation) and read the response until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        local_port = conn.getsockname()[1]
        SENT[local_port] = utc_stamp()
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/") else 0
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return Response(status, headers, body, local_port)


def request(port: int, method: str = "GET", target: str = "/", host: str | bytes = "seized-iptv.example",
            headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Response:
    """A well-formed HTTP/1.1 request, assembled by hand so tests control every byte."""
    host = host.encode("utf-8") if isinstance(host, str) else host
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + host]
    lines += [f"{k}: {v}".encode("utf-8") for k, v in headers or []]
    if body:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return raw_request(port, b"\r\n".join(lines) + b"\r\n\r\n" + body)


@dataclass
class Server:
    """A real `seized serve` subprocess on 127.0.0.1 with its own config, data directory and database."""

    directory: Path
    settings: dict = field(default_factory=dict)
    domains: list[dict] = field(default_factory=list)
    db_url: str | None = None  # default: an SQLite file in `directory` (Databases makes either kind)
    process: subprocess.Popen | None = None

    def __post_init__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.public_port = free_port()
        self.admin_port = free_port()
        self.db_url = self.db_url or f"sqlite:///{self.directory / 'seized.db'}"
        self.backend = "postgres" if self.db_url.startswith("postgresql://") else "sqlite"
        # SQLite: the file (tests read, lock, copy and delete it); PostgreSQL: none
        self.db_path = Path(self.db_url[len("sqlite:///"):]) if self.backend == "sqlite" else None
        self.journal_dir = self.directory / "journal"
        self.log_path = self.directory / "server.log"
        self.config_path = self.directory / "seized.toml"
        self.write_config()

    def write_config(self) -> None:
        base = {"node": "test-node", "data_dir": str(self.directory), "db": self.db_url,
                "video_dir": str(self.directory / "video"), "prerender_videos": False,
                "public": f"127.0.0.1:{self.public_port}", "admin": f"127.0.0.1:{self.admin_port}"}
        base.update(self.settings)
        notice = base.pop("notice", {"agency": "Test Police", "blocked_by": "https://police.test/seized"})
        lines = [f"{k} = {toml_value(v)}" for k, v in base.items()]
        lines += ["[notice]"] + [f"{k} = {toml_value(v)}" for k, v in notice.items()]
        for domain in self.domains:
            lines += ["[[domains]]"] + [f"{k} = {toml_value(v)}" for k, v in domain.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 30) -> "Server":
        """Start the server and wait until it is ready. A port taken between `free_port` and the
        server's bind (by another test's server or client) is not a failure: new ports, another try."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once(timeout)
            except PortTaken as taken:
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(f"ports taken on every one of {START_ATTEMPTS} attempts:\n{taken}") from None
                self.public_port, self.admin_port = free_port(), free_port()
                self.write_config()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> "Server":
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--config", str(self.config_path)],
                                            cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        RUNNING.add(self.process)

        def this_start() -> str:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")

        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    RUNNING.discard(self.process)
                    output = this_start()
                    if ADDRESS_IN_USE.search(output):
                        raise PortTaken(output[-3000:])
                    raise RuntimeError(f"server exited at start ({self.process.returncode}):\n{self.log_path.read_text()}")
                try:
                    ready = httpx.get(self.admin_url("/readyz"), timeout=1).json()
                    # Up: every listener worker and the ingest process run (the public port alone
                    # accepts connections as soon as the supervisor binds it).
                    if ready["workers"] and all(w["alive"] and w["pid"] for w in ready["workers"]) and ready["ingest"]["pid"]:
                        socket.create_connection(("127.0.0.1", self.public_port), timeout=1).close()
                        if ADDRESS_IN_USE.search(this_start()):  # another server answered on a port we could not bind
                            raise PortTaken(this_start()[-3000:])
                        return self
                except (httpx.HTTPError, OSError, ValueError, KeyError):
                    pass
                if ADDRESS_IN_USE.search(this_start()):  # e.g. the management process lost the admin port
                    raise PortTaken(this_start()[-3000:])
                time.sleep(0.1)
            raise RuntimeError(f"server did not come up in {timeout:g} s:\n{self.log_path.read_text()}")
        except BaseException:
            self._kill()  # never leave a half-started server behind
            raise

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        RUNNING.discard(self.process)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
        finally:
            if self.process.poll() is not None:
                RUNNING.discard(self.process)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.public_port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def health(self) -> dict:
        return httpx.get(self.admin_url("/readyz"), timeout=5).json()

    @property
    def admin_token_path(self) -> Path:
        return Path(self.settings.get("admin_token_file", self.directory / "initial-admin-token"))

    @property
    def admin_token(self) -> str:
        """The admin token the first start wrote (mode 0600) to its file in the data directory."""
        assert self.admin_token_path.exists(), "the first start did not write an admin token file"
        return self.admin_token_path.read_text().strip()

    def new_token(self, role: str, name: str | None = None, expires_days: float | None = None) -> str:
        body = {"name": name or f"{role}-{os.urandom(4).hex()}", "role": role, "expires_days": expires_days}
        response = self.api("POST", "/api/v1/tokens", self.admin_token, json=body)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.admin_url(path), headers=headers, **{"timeout": 120, **kwargs})

    def request(self, *args, **kwargs) -> Response:
        return request(self.public_port, *args, **kwargs)

    def rows(self, where: str = "true", params: tuple = ()) -> list[dict]:
        if self.backend == "sqlite" and not self.db_path.exists():
            return []
        return self.sql(f"SELECT * FROM hits WHERE {where} ORDER BY id", params)

    def sql(self, query: str, params: tuple | list = ()) -> list[dict]:
        """Rows of a query on this server's database, read past the app (sqlite3 or psycopg)."""
        return sql(self.db_url, query, params)

    def wait_rows(self, where: str = "true", params: tuple = (), count: int = 1, timeout: float = 30) -> list[dict]:
        """Rows matching `where`, once at least `count` of them are stored (ingest batches); after
        `timeout`, whatever there is (the caller's assertion says what was missing)."""
        found: list[dict] = []

        def enough():
            found[:] = self.rows(where, params)
            return len(found) >= count
        try:
            wait_for(enough, timeout=timeout, interval=0.05)
        except AssertionError:
            pass
        return found

    def row_for_port(self, local_port: int, by: str = "client_port") -> dict:
        """The one hit of the latest request sent from `local_port` (see raw_request)."""
        rows = self.wait_rows(f"{by} = ? AND received_at >= ?", (local_port, SENT[local_port]))
        assert len(rows) == 1, f"expected one hit from port {local_port}, found {len(rows)}"
        return rows[0]


def headers_of(row: dict) -> list[list[str]]:
    return json.loads(row["headers"])


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)


def seed_hits(db_path, count: int, node: str = "seed", start_ns: int | None = None) -> None:
    """For the benchmarks only (bench/query.py, bench/export.py seed a database file with no server):
    rows built by the app's own code and written straight into SQLite. Tests seed through the real
    pipeline with `seed_journal`, which does not use the code under test to make its inputs."""
    import asyncio

    from app.capture import Hit
    from app.evidence import GENESIS, chain_rows
    from app.record import to_row
    from app.store.sqlite import SQLiteStore

    start = time.time_ns() - count * 1_000_000 if start_ns is None else start_ns
    agent = b"Mozilla/5.0 (Linux; Android 11; MAG-Box) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 " * 3

    async def seed():
        store = SQLiteStore(db_path, busy_timeout=30)
        await store.open()
        try:
            head = await store.db.execute_fetchall(
                "SELECT hash FROM hits WHERE node = ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1", (node,))
            heads = {node: head[0][0] if head else GENESIS}
            for offset in range(0, count, 20_000):
                linked, heads = chain_rows([to_row(Hit(
                    received_at_ns=start + i * 1_000_000, node=node, host=b"seized-iptv.example",
                    domain="seized-iptv.example" if i % 3 else "iptv-pirata.example", scheme="http",
                    method="GET" if i % 5 else "POST", raw_path=f"/live/user{i}/pass/{i}.ts".encode(), query=b"",
                    http_version="1.1", client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", client_port=1024 + i % 60000,
                    peer_ip="127.0.0.1", peer_port=40000, server_ip="127.0.0.1", server_port=8080,
                    headers=[(b"host", b"seized-iptv.example"), (b"user-agent", agent)], status=451))
                    for i in range(offset, min(count, offset + 20_000))], heads)
                await store.insert_hits(linked)
        finally:
            await store.close()

    asyncio.run(seed())


# -- seeding hits through the real pipeline: journal segment -> ingest -> SQLite ----------------
#
# The journal record format, written here from its description (app/journal.py, app/capture.py),
# not with the app's encoder: a record is MAGIC | payload length (u32 LE) | CRC-32 of the 4 length
# bytes then the payload (u32 LE) | payload, the payload being marshal.dumps(tuple of the fields
# below, in this order, version 4). This field list is the contract between the listener workers
# and the ingest process; it is spelled out here on purpose, so a change to it fails these tests.
JOURNAL_MAGIC = b"SZJ1"
JOURNAL_FIELDS = (
    "source", "sequence", "received_at_ns", "node", "host", "domain", "scheme", "method", "raw_path", "query", "http_version",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_ip", "server_port", "headers", "body_size", "body_sha256",
    "form_body", "status", "duration_ms", "error",
)
# What versions before server_ip wrote: one field fewer. A journal may still hold such records at an
# upgrade, and ingest must read them (server_ip then null).
OLD_JOURNAL_FIELDS = (
    "source", "sequence", "received_at_ns", "node", "host", "domain", "scheme", "method", "raw_path", "query", "http_version",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_port", "headers", "body_size", "body_sha256",
    "form_body", "status", "duration_ms", "error",
)
SEED_AGENT = b"Mozilla/5.0 (Linux; Android 11; MAG-Box) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 " * 3
SEED_HEADERS = ((b"host", b"seized-iptv.example"), (b"user-agent", SEED_AGENT))
SEED_HEADERS_PACKED = marshal.dumps(SEED_HEADERS, 4)  # the headers field: itself marshal.dumps of (name, value) pairs
SEGMENT_RECORDS = 50_000  # records per segment file (a worker's segments are 32 MiB by default)


def journal_record(fields: dict, names: tuple = JOURNAL_FIELDS) -> bytes:
    """One framed journal record of `fields` (every name of `names`, typed as a worker types them)."""
    payload = marshal.dumps(tuple(fields[name] for name in names), 4)
    length = struct.pack("<I", len(payload))
    return JOURNAL_MAGIC + length + struct.pack("<I", zlib.crc32(length + payload)) + payload


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def stored_time(ns: int) -> str:
    """Nanoseconds since the epoch in the stored and API form, to the microsecond ('...T06:00:25.123456Z')."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return (EPOCH + timedelta(seconds=seconds, microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Seeded:
    """What `seed_journal` wrote, as plain functions of a hit's index i (0 = oldest, written first):
    the expectations of a test come from here, not from what the app stored."""

    node: str
    source: str  # 8 hex digits: the fake worker's id, part of every uid
    start_ns: int  # a whole millisecond, so the stored microsecond times are exact
    count: int

    def received_ns(self, i: int) -> int:
        return self.start_ns + i * 1_000_000

    def received_at(self, i: int) -> str:
        return stored_time(self.received_ns(i))

    def uid(self, i: int) -> str:
        """README: receive time in ns (16 hex), the worker's random id, its sequence number (8 hex)."""
        return f"{self.received_ns(i):016x}{self.source}{i:08x}"

    @staticmethod
    def client_ip(i: int) -> str:
        return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"

    @staticmethod
    def client_port(i: int) -> int:
        return 1024 + i % 60000

    @staticmethod
    def method(i: int) -> str:
        return "GET" if i % 5 else "POST"

    @staticmethod
    def domain(i: int) -> str:
        return "seized-iptv.example" if i % 3 else "iptv-pirata.example"

    @staticmethod
    def path(i: int) -> str:
        return f"/live/user{i}/pass/{i}.ts"

    @staticmethod
    def server_ip(i: int) -> str:
        return "192.0.2.80" if i % 2 else "2001:db8::80"

    def fields(self, i: int) -> dict:
        """Hit i's journal record, typed as a listener worker writes it (app/public.py PublicApp.answer)."""
        return {
            "source": self.source, "sequence": i, "received_at_ns": self.received_ns(i), "node": self.node,
            "host": b"seized-iptv.example", "domain": self.domain(i), "scheme": "http", "method": self.method(i),
            "raw_path": self.path(i).encode(), "query": b"", "http_version": "1.1",
            "client_ip": self.client_ip(i), "client_port": self.client_port(i), "peer_ip": "127.0.0.1", "peer_port": 40000,
            "server_ip": self.server_ip(i), "server_port": 8080, "headers": SEED_HEADERS_PACKED, "body_size": 0,
            "body_sha256": None,
            "form_body": None, "status": 451, "duration_ms": 0.25, "error": None,
        }


def write_segment(directory: Path, name: str, records: list[bytes]) -> Path:
    """A sealed segment, as ingest must find it: whole (written under a name ingest ignores, synced,
    then renamed into place) and unlocked (no writer holds it)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = directory / f"{name}.jrn"
    temporary = directory / f".{name}.seeding"
    with open(temporary, "wb") as segment:
        segment.write(b"".join(records))
        segment.flush()
        os.fsync(segment.fileno())
    os.rename(temporary, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def seed_journal(server: "Server", count: int, node: str = "seed", start_ns: int | None = None,
                 timeout: float = 300, names: tuple = JOURNAL_FIELDS) -> Seeded:
    """`count` hits through the real pipeline: journal segments written into the running server's
    journal directory, ingested by its ingest process; returns once its `hits` view holds all of
    them. The layout: client IPs spread over 10.0.0.0/8 (10.{i>>16}.{i>>8}.{i}), ports over
    1024-61023, one hit per millisecond from `start_ns` (default: ending now), every third for
    iptv-pirata.example, every fifth a POST, server IPs alternating 2001:db8::80 and 192.0.2.80.
    `names`: the record's fields (OLD_JOURNAL_FIELDS: as versions before server_ip wrote them)."""
    now_ms = time.time_ns() // 1_000_000
    start = (now_ms - count) * 1_000_000 if start_ns is None else start_ns // 1_000_000 * 1_000_000
    seeded = Seeded(node=node, source=os.urandom(4).hex(), start_ns=start, count=count)
    safe_node = re.sub(r"[^A-Za-z0-9_-]", "_", node)
    stamp = time.time_ns()
    written = []
    for part, offset in enumerate(range(0, count, SEGMENT_RECORDS)):
        records = [journal_record(seeded.fields(i), names) for i in range(offset, min(count, offset + SEGMENT_RECORDS))]
        # <node>.<worker>.<start ns, 20 digits>: ingest reads segments in start order, so in this order.
        written.append(write_segment(server.journal_dir, f"{safe_node}.seed{seeded.source}.{stamp + part:020d}", records))
    names = [path.name for path in written]

    def ingested() -> bool:
        if any(path.exists() for path in written):  # ingest deletes a segment once every row of it is committed
            return False
        gaps = server.sql(f'SELECT segment, "offset", reason FROM journal_gaps WHERE segment IN ({", ".join("?" * len(names))})',
                          names)
        assert not gaps, f"ingest skipped parts of the seeded journal: {gaps[:5]}"
        stored = server.sql("SELECT COUNT(*) AS n FROM hits WHERE node = ? AND uid LIKE ?",
                            (node, "_" * 16 + seeded.source + "%"))[0]["n"]
        assert stored == count, f"{stored} of the {count} seeded hits stored"
        return True

    wait_for(ingested, timeout=timeout, interval=0.2, message=f"the {count} seeded hits were not ingested")
    return seeded
