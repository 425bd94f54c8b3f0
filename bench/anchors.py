"""Why the listener is built the way it is: reference servers and seized, side by side in one run,
loopback only, each answering the same ~1.5 KB page with status 451.

Rows (wrk -t1 -c64 --latency, Host: seized-iptv.example, each after a warm-up):
  1   nginx, 1 worker, access_log off, the page seized sent (bench/pipeline.py's Nginx: `return 451`
      with an error_page served from a file, sendfile on; no open_file_cache).
  2   nginx, the same, with pipeline.py's JSON access_log to a file. Every ratio is to this row.
  3   A bare ASGI app returning the same bytes, on uvicorn (--http httptools --loop uvloop, 1
      process, no access log).
  4   The same ASGI app, also appending a CRC-framed record of the request (time, client ip/port,
      method, path, query, all headers; app.journal.encode) to a file with os.write first.
  5a  granian (ASGI) serving row 3's app; 5b granian (RSGI) with the same bytes. granian lives in a
      throwaway venv under /tmp (made here with pip when missing, never the project's venv); the
      rows say so when it cannot be installed.
  6   app.listener.HttpConnection alone on uvloop, its app answering (451, fixed headers, the page)
      at once: the protocol's own cost.
  7   seized serve (prerender_videos = false, 1 worker when --workers exists), the HTML notice,
      every hit journaled and ingested (the defaults). After the warm-up the ingest backlog is
      waited for (/readyz), so the measured run does not pay for the warm-up's hits.

Rows 1-6 send the same head: status 451, content-type, content-length (plus date, and server
for uvicorn/granian/nginx). seized sends its own security headers; the "resp B" column gives
each server's response size as seen on the wire. The page is taken from a running seized (row 7's
server, started first); if seized cannot start, a fixed 1519-byte page is used and row 7 is n/a.

"cpu us/req" is the server's process group's CPU time (user+sys, /proc) during the measured run
divided by the requests: less sensitive to other jobs on the machine than requests/s, since wrk
and the server share the two cores. Row 7's note splits it by process (worker, ingest, supervisor).

`python bench/anchors.py [--seconds 10] [--quick]`: --quick is 3 s per run, 1 s warm-ups.
The table goes to stdout, then a last line `RESULT {json}`; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import ACCEPT_HTML, HOST, PROJECT, Nginx, fmt, free_port, get, say, serve_options, wait_port, wrk  # noqa: E402
from tuned import Tuned, cpu_seconds, group_pids, process_names, uptime, wait_drained  # noqa: E402

PAGE_TYPE = "text/html; charset=utf-8"
STATUS = 451
DEFAULT_GRANIAN_VENV = Path(tempfile.gettempdir()) / "seized-granian-venv"

# -- the servers' code, written to the work directory ----------------------------------------------

HELLO_ASGI = '''
import os

BODY = open(os.environ["ANCHORS_BODY"], "rb").read()
LENGTH = str(len(BODY)).encode()


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 451,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", LENGTH)]})
        await send({"type": "http.response.body", "body": BODY})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
'''

JOURNAL_ASGI = '''
import os
import time

from app.journal import encode

BODY = open(os.environ["ANCHORS_BODY"], "rb").read()
LENGTH = str(len(BODY)).encode()
FD = os.open(os.environ["ANCHORS_JOURNAL"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


async def app(scope, receive, send):
    if scope["type"] == "http":
        client = scope.get("client") or (None, None)
        os.write(FD, encode((time.time_ns(), client[0], client[1], scope["method"], scope["path"],
                             scope["query_string"], tuple(scope["headers"]))))
        await send({"type": "http.response.start", "status": 451,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", LENGTH)]})
        await send({"type": "http.response.body", "body": BODY})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
'''

HELLO_RSGI = '''
import os

BODY = open(os.environ["ANCHORS_BODY"], "rb").read()
HEADERS = [("content-type", "text/html; charset=utf-8"), ("content-length", str(len(BODY)))]


async def app(scope, proto):
    proto.response_bytes(451, HEADERS, BODY)
'''

LISTENER_SERVER = '''
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.environ["ANCHORS_PROJECT"])
import uvloop  # noqa: E402

from app.listener import HttpConnection  # noqa: E402

BODY = open(os.environ["ANCHORS_BODY"], "rb").read()
BLOCK = b"content-type: text/html; charset=utf-8\\r\\ncontent-length: %d\\r\\n" % len(BODY)


class App:
    """The least an app can do: the same answer to every request, at once."""

    def handle(self, method, raw_path, query, http_version, headers, peer, server, received_ns, started,
               body_size, body_sha256, form_body):
        return 451, BLOCK, BODY

    def answer_rejected(self, **request):
        return 400, b"content-length: 0\\r\\n", b""


async def main(port):
    loop = asyncio.get_running_loop()
    connections = set()
    app = App()
    server = await loop.create_server(lambda: HttpConnection(app, connections, 65536), "127.0.0.1", port,
                                      backlog=2048)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    for connection in list(connections):
        connection.transport.abort()


with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
    runner.run(main(int(sys.argv[1])))
'''


class Proc:
    """One server command in its own process group, listening on `port`."""

    def __init__(self, name: str, command: list[str], port: int, work: Path, env: dict | None = None):
        self.name, self.command, self.port, self.work = name, command, port, work
        self.env = {**os.environ, **(env or {})}
        self.log = work / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Proc":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=self.work, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start ({self.process.returncode}): {self.log_tail()}")
            if wait_port(self.port, 0.2):
                return self
        self.stop()
        raise RuntimeError(f"{self.name} did not listen in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 4) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


# -- measuring ----------------------------------------------------------------------------------------

def raw_get(port: int, path: str = "/", timeout: float = 10) -> tuple[bytes, bytes]:
    """One GET as wrk sends it (plus Accept): (response head, body), as the bytes on the wire."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: {ACCEPT_HTML}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError(f"connection closed after {len(data)} bytes")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return head + b"\r\n\r\n", body[:length]


def group_cpu(pgid: int) -> float:
    return sum(c for c in (cpu_seconds(pid) for pid in group_pids(pgid)) if c is not None)


def measure(name: str, pgid: int, port: int, args, work: Path, path: str = "/anchors", between=None,
            roles: dict[int, str] | None = None) -> dict:
    """Warm-up, then the measured wrk run with the server group's CPU time around it (and, given
    `roles` (pid -> name), each role's CPU time)."""
    say(f"{name}: warm-up {args.warmup:.0f} s + wrk {args.seconds:.0f} s")
    warm = wrk(port, f"{path}/warm", args.warmup, args.connections, True, work, {"Accept": ACCEPT_HTML})
    if between is not None:
        between(warm)
    before, role_before = group_cpu(pgid), {pid: cpu_seconds(pid) for pid in roles or {}}
    result = wrk(port, path, args.seconds, args.connections, True, work, {"Accept": ACCEPT_HTML})
    used = group_cpu(pgid) - before
    result["cpu_us_per_req_by_role"] = {}
    for pid, role in (roles or {}).items():
        after = cpu_seconds(pid)
        if after is not None and role_before[pid] is not None and result["requests"]:
            by_role = result["cpu_us_per_req_by_role"]
            by_role[role] = by_role.get(role, 0.0) + (after - role_before[pid]) / result["requests"] * 1e6
    result["warm_answered"] = warm["answered"]
    result["cpu_us_per_req"] = used / result["requests"] * 1e6 if result["requests"] else None
    result["cpu_cores"] = used / args.seconds
    say(f"  {name}: {result['rps']:,.0f} req/s, p99 {fmt(result['p99_ms'], 2)} ms, "
        f"{fmt(result['cpu_us_per_req'], 1)} us CPU/req ({result['cpu_cores']:.2f} cores)")
    return result


def check(port: int, page: bytes | None) -> dict:
    """What the server answers: status, response size, and whether the body is the page."""
    head, body = raw_get(port)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    return {"status": int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None, "status_line": status_line,
            "head_bytes": len(head), "body_bytes": len(body), "same_body": page is not None and body == page}


def journal_note(path: Path, result: dict) -> str:
    """Row 4's file read back: intact records and gaps, against the responses wrk counted (the
    check's one, the warm-up's and the run's; a few more records are requests in flight at the end)."""
    sys.path.insert(0, str(PROJECT))
    from app.journal import Gap, decode, read

    data = path.read_bytes() if path.exists() else b""
    records = gaps = 0
    for _, _, payload in read(data, 0, True):
        if isinstance(payload, Gap):
            gaps += 1
        else:
            decode(payload)
            records += 1
    answered = 1 + result["warm_answered"] + result["answered"]
    return (f"journal {records:,} records ({len(data) / max(1, records):,.0f} B each), {gaps} gaps, "
            f"for {answered:,} responses counted")


# -- granian ------------------------------------------------------------------------------------------

def granian_binary(venv: Path, install: bool) -> tuple[Path | None, str]:
    """granian in its own throwaway venv: (path, how it was found) or (None, why not)."""
    binary = venv / "bin" / "granian"
    if binary.exists():
        return binary, f"granian from {venv}"
    if not install:
        return None, f"granian is not in {venv} (--no-granian-install)"
    say(f"installing granian into a throwaway venv: {venv}")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True, timeout=120)
        out = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "granian[uvloop]"], capture_output=True,
                             text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"granian could not be installed: {error}"
    if out.returncode != 0 or not binary.exists():
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"granian could not be installed (pip exit {out.returncode}: {last[:120]})"
    return binary, f"granian installed into {venv}"


def granian_version(binary: Path) -> str:
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "granian ?"


# -- the run ------------------------------------------------------------------------------------------

ROWS = [  # key, number, name
    ("nginx", "1", "nginx, access_log off"),
    ("nginx_log", "2", "nginx, JSON access_log"),
    ("uvicorn", "3", "uvicorn + bare ASGI app"),
    ("uvicorn_journal", "4", "uvicorn + ASGI app + journal write"),
    ("granian_asgi", "5a", "granian, ASGI app"),
    ("granian_rsgi", "5b", "granian, RSGI app"),
    ("listener", "6", "app.listener alone (uvloop)"),
    ("seized", "7", "seized serve (notice + journal)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of each measured wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up before each measured run (default 2)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per run, 1 s warm-ups")
    parser.add_argument("--granian-venv", type=Path, default=DEFAULT_GRANIAN_VENV,
                        help=f"throwaway venv holding granian (default {DEFAULT_GRANIAN_VENV}; made with pip when missing)")
    parser.add_argument("--no-granian-install", action="store_true", help="use granian only if already in --granian-venv")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 3, 1
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx-light")

    load_before = uptime()
    say(f"load before: {load_before}")
    tmp = tempfile.mkdtemp(prefix="seized-anchors-")
    os.chmod(tmp, 0o755)  # nginx's worker runs as an unprivileged user and reads the page from here
    work = Path(tmp)
    results: dict[str, dict] = {}
    notes: dict[str, str] = {}
    checks: dict[str, dict] = {}
    page: bytes | None = None
    page_source = ""
    try:
        # ---- 7. seized first: its page is every other row's body ---------------------------------
        try:
            options = serve_options()
            workers = 1 if "--workers" in options else None
            seized = Tuned(work / "seized", options, workers=workers, settings={"prerender_videos": False})
            say(f"starting seized: {' '.join(seized.command())} (prerender_videos = false)")
            seized.start()
            try:
                status, _, page = get(seized.public_port, "/", {"Accept": ACCEPT_HTML})
                page_source = f"seized's / (status {status})"
                say(f"page from seized: status {status}, {len(page):,} bytes")
                checks["seized"] = check(seized.public_port, None)
                drain: dict = {}

                def wait_warmup(warm: dict) -> None:
                    ok, took, _ = wait_drained(seized, 120)
                    drain["warm"] = (ok, took)
                    say(f"  warm-up's {warm['answered']:,} hits {'ingested' if ok else 'NOT ingested'} after {took:.1f} s")

                roles = process_names(seized)
                r = measure("seized", seized.process.pid, seized.public_port, args, work, "/bench/anchors", wait_warmup,
                            roles)
                ok, took, ready = wait_drained(seized, 120)
                journal, ingest = (ready or {}).get("journal") or {}, (ready or {}).get("ingest") or {}
                split = ", ".join(f"{role} {us:,.1f}" for role, us in sorted(r["cpu_us_per_req_by_role"].items()))
                notes["seized"] = (f"{'1 worker' if workers else 'default workers'} + ingest; CPU us/req by process: {split or 'n/a'}; "
                                   f"after the run: received {fmt(journal.get('received'))}, ingested {fmt(ingest.get('ingested'))} "
                                   f"{'in' if ok else 'NOT drained after'} {took:.1f} s")
                results["seized"] = r
            finally:
                code = seized.stop()
                if code:
                    notes["seized"] = notes.get("seized", "") + f"; exit {code}"
        except Exception as error:
            say("seized could not be measured:\n" + traceback.format_exc())
            notes["seized"] = f"not measured: {str(error)[:160]}"
        if page is None:
            page = (b"<!doctype html><title>451</title><p>" + b"x" * 1519)[:1515] + b"</p>"
            page_source = "a fixed 1519-byte page (seized did not answer)"
        (work / "page.html").write_bytes(page)
        env = {"ANCHORS_BODY": str(work / "page.html"), "ANCHORS_PROJECT": str(PROJECT),
               "ANCHORS_JOURNAL": str(work / "anchors.jrn"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
        (work / "anchors_hello.py").write_text(HELLO_ASGI)
        (work / "anchors_journal.py").write_text(JOURNAL_ASGI)
        (work / "anchors_rsgi.py").write_text(HELLO_RSGI)
        (work / "anchors_listener.py").write_text(LISTENER_SERVER)

        # ---- 1, 2. nginx ------------------------------------------------------------------------
        for key, logged in (("nginx", False), ("nginx_log", True)):
            try:
                ng = Nginx(work / key, page, STATUS, [("Content-Type", PAGE_TYPE)], None, None)
                conf = ng.root / "nginx.conf"
                text = conf.read_text()
                if not logged:
                    line = f"access_log {ng.access_log} hitjson;"
                    if line not in text:
                        raise RuntimeError("pipeline.Nginx's config has no access_log line to turn off")
                    conf.write_text(text.replace(line, "access_log off;"))
                ng.start()
                try:
                    checks[key] = check(ng.port, page)
                    results[key] = measure(key, ng.process.pid, ng.port, args, work)
                finally:
                    ng.stop()
                if logged:
                    lines = ng.logged("/anchors")
                    notes[key] = f"{lines:,} JSON log lines for {results[key]['answered']:,} answered"
            except Exception as error:
                say(f"{key} could not be measured:\n" + traceback.format_exc())
                notes[key] = f"not measured: {str(error)[:160]}"

        # ---- 3-6. Python servers ----------------------------------------------------------------
        def python_row(key: str, command: list[str], port: int, note: str = "") -> None:
            try:
                server = Proc(key, command, port, work, env).start()
                try:
                    checks[key] = check(port, page)
                    results[key] = measure(key, server.process.pid, port, args, work)
                    notes[key] = note
                finally:
                    server.stop()
            except Exception as error:
                say(f"{key} could not be measured:\n" + traceback.format_exc())
                notes[key] = f"not measured: {str(error)[:160]}"

        def uvicorn(module: str, port: int) -> list[str]:
            return [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(work), "--host", "127.0.0.1",
                    "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log",
                    "--lifespan", "off", "--log-level", "warning"]

        port = free_port()
        python_row("uvicorn", uvicorn("anchors_hello", port), port)
        port = free_port()
        python_row("uvicorn_journal", uvicorn("anchors_journal", port), port)
        if "uvicorn_journal" in results:
            notes["uvicorn_journal"] = journal_note(work / "anchors.jrn", results["uvicorn_journal"])

        binary, how = granian_binary(args.granian_venv, not args.no_granian_install)
        if binary is None:
            notes["granian_asgi"] = notes["granian_rsgi"] = f"skipped: {how}"
            say(f"granian rows skipped: {how}")
        else:
            version = granian_version(binary)
            for key, interface, module in (("granian_asgi", "asgi", "anchors_hello"), ("granian_rsgi", "rsgi", "anchors_rsgi")):
                port = free_port()
                python_row(key, [str(binary), "--interface", interface, "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--http", "1", "--no-ws",
                                 "--no-access-log", "--log-level", "warning", "--working-dir", str(work), f"{module}:app"],
                           port, f"{version}, 1 worker, 1 runtime thread, uvloop")

        port = free_port()
        python_row("listener", [sys.executable, str(work / "anchors_listener.py"), str(port)], port)
    except Exception:
        say("the run stopped early:\n" + traceback.format_exc())
        notes["error"] = traceback.format_exc().strip().splitlines()[-1]
    finally:
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = uptime()
    say(f"load after: {load_after}")
    report(results, notes, checks, page, page_source, args, load_before, load_after)


def report(results: dict, notes: dict, checks: dict, page: bytes | None, page_source: str, args, load_before: str,
           load_after: str) -> None:
    base = (results.get("nginx_log") or {}).get("rps")
    rows = []
    for key, number, name in ROWS:
        r, c = results.get(key), checks.get(key) or {}
        note = [notes.get(key, "")] if notes.get(key) else []
        if c:
            body = ("same body" if c["same_body"] else f"DIFFERENT body ({c['body_bytes']:,} B)") if key != "seized" \
                else f"body {c['body_bytes']:,} B (its own)"
            note.insert(0, f"{c['status_line']}, {body}")
        if r:
            if r["socket_errors"]:
                note.append(f"socket errors {r['socket_errors']}")
            unexpected = {k: v for k, v in r["statuses"].items() if k != "4xx"}
            if unexpected:
                note.append(f"statuses other than 4xx: {unexpected}")
        rows.append({
            "key": key, "row": number, "name": name,
            "rps": round(r["rps"], 1) if r else None,
            "ratio": round(r["rps"] / base, 3) if r and base else None,
            "p50_ms": r["p50_ms"] if r else None, "p99_ms": r["p99_ms"] if r else None,
            "cpu_us_per_req": round(r["cpu_us_per_req"], 1) if r and r["cpu_us_per_req"] is not None else None,
            "cpu_cores": round(r["cpu_cores"], 2) if r else None,
            **({"cpu_us_per_req_by_role": {k: round(v, 1) for k, v in r["cpu_us_per_req_by_role"].items()}}
               if r and r.get("cpu_us_per_req_by_role") else {}),
            "requests": r["requests"] if r else None,
            "response_bytes": (c["head_bytes"] + c["body_bytes"]) if c else None,
            "note": "; ".join(note),
        })

    mode = "quick" if args.quick else "full"
    print(f"seized anchors ({mode}): loopback, 2 cores shared by server and wrk; wrk -t1 -c{args.connections} --latency, "
          f"{args.seconds:.0f} s per run after {args.warmup:.0f} s warm-up; every server 1 process/worker; "
          f"page: {len(page or b''):,} B, {page_source}")
    titles = ("#", "server", "req/s", "vs row 2", "p99 ms", "cpu us/req", "resp B", "note")
    cells = [(x["row"], x["name"], fmt(x["rps"]), f"{x['ratio']:.2f}x" if x["ratio"] is not None else "n/a",
              fmt(x["p99_ms"], 2), fmt(x["cpu_us_per_req"], 1), fmt(x["response_bytes"]), x["note"]) for x in rows]
    widths = [max(len(r[i]) for r in [titles, *cells]) for i in range(7)]

    def line(r) -> str:
        return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), *(v.rjust(w) for v, w in zip(r[2:7], widths[2:7])),
                          r[7]]).rstrip()

    print(line(titles))
    print("  ".join("-" * w for w in widths) + "  ----")
    for r in cells:
        print(line(r))
    if notes.get("error"):
        print(f"run stopped early: {notes['error']}")
    print(f"load before: {load_before}")
    print(f"load after:  {load_after}")
    print("RESULT " + json.dumps({
        "mode": mode, "seconds": args.seconds, "warmup": args.warmup, "connections": args.connections,
        "page_bytes": len(page or b""), "page_source": page_source, "baseline": "nginx_log",
        "rows": rows, "load_before": load_before, "load_after": load_after,
        **({"error": notes["error"]} if notes.get("error") else {}),
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
