"""Side by side, in one run: seized's public listener vs nginx serving the same notice page.

Prints requests/s, p99 latency and hits lost (responses wrk counted that are not in the hit
log after a clean stop). Loopback only, bounded in time: `make bench` (wrk and nginx from Debian).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import Server, free_port  # noqa: E402  (the same real-server harness the tests use)

HOST = "seized-iptv.example"
PATH = "/index.php?username=a&password=b"  # the HTML notice: the same page nginx serves from a file


def wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}", url],
                         capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99_ms": float(p99.group(1)) * unit[p99.group(2)],
        "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
    }


def bench_seized(work: Path, seconds: int, connections: int) -> tuple[dict, bytes]:
    server = Server(work / "seized", domains=[{"name": HOST, "case_ref": "BENCH-1"}]).start()
    try:
        page = server.request(host=HOST, target="/").body
        wrk(server.url("/warmup"), 2, connections)
        result = wrk(server.url(PATH), seconds, connections)
    finally:
        server.stop(signal.SIGTERM)
    with sqlite3.connect(server.db_path) as db:
        stored = db.execute("SELECT COUNT(*) FROM hits WHERE path = ?", (PATH.partition("?")[0],)).fetchone()[0]
    result["stored"] = stored
    result["lost"] = max(0, result["requests"] - stored)
    return result, page


def bench_nginx(work: Path, page: bytes, seconds: int, connections: int) -> dict:
    root = work / "nginx"
    (root / "html").mkdir(parents=True)
    (root / "html" / "index.html").write_bytes(page)
    port = free_port()
    (root / "nginx.conf").write_text(f"""
worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}; proxy_temp_path {root}; fastcgi_temp_path {root}; uwsgi_temp_path {root}; scgi_temp_path {root};
  server {{ listen 127.0.0.1:{port}; root {root}/html;
    location / {{ default_type text/html; try_files /index.html =404; add_header Cache-Control no-store; }} }}
}}""")
    nginx = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)])
    try:
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}{PATH}"
        wrk(url, 2, connections)
        return wrk(url, seconds, connections)
    finally:
        nginx.terminate()
        nginx.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx-light")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seized, page = bench_seized(work, args.seconds, args.connections)
        nginx = bench_nginx(work, page, args.seconds, args.connections)
    print(f"\n{args.connections} connections, {args.seconds} s each, loopback, {len(page)}-byte notice page, nginx 1 worker, seized 1 process")
    print(f"{'':24}{'requests/s':>12}{'p99 ms':>10}{'requests':>10}{'sock err':>10}{'hits lost':>11}")
    for name, r, lost in (("nginx (static file)", nginx, "n/a"), ("seized (notice + log)", seized, seized["lost"])):
        print(f"{name:24}{r['rps']:>12.0f}{r['p99_ms']:>10.2f}{r['requests']:>10}{r['socket_errors']:>10}{lost:>11}")
    print(f"seized / nginx: {seized['rps'] / nginx['rps']:.0%} of the requests/s; {seized['stored']} hits stored")


if __name__ == "__main__":
    main()
