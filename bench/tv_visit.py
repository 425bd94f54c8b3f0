"""What the visitor's IP in the TV picture costs per request (issue 14), next to the shared video.

Measured on a real `seized serve` on loopback behind a "trusted proxy" (wrk sets X-Forwarded-For),
bounded in time: each row is `--seconds` of wrk after a short warm-up.

  (a) HLS: the master playlist, and the per-request WebVTT cue file (the one per-visit part of HLS)
  (b) .ts, cache hits: one visitor asking again and again (the per-IP rendering from the LRU cache)
  (c) .ts, cache misses: a new IP every request, as many connections as renders allowed at once, so
      every request is a render; and a flood of new IPs with more connections than renders, where
      the ones beyond the limit get the shared video (the table counts both by their body size)
  baseline: the same URLs with `visit_video = false` (the shared video, the media playlist)
  render:   the encode alone, in this process: CPU time of one per-IP rendering, median of a few
  names:    the IPTV answers whose channel names, guide and messages carry the visit (get.php,
            player_api get_live_streams, Stalker get_profile), and building those texts in-process

Needs wrk from Debian. `python bench/tv_visit.py [--seconds 8]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from helpers import Server  # noqa: E402  (the same real-server harness the tests use)

HOST = "seized-iptv.example"
DOMAINS = [{"name": HOST, "agency": "Bench Police", "case_ref": "BENCH-14"}]
TRUSTED = {"trusted_proxies": ["127.0.0.0/8"], "client_port_header": "X-Real-Port"}

# One wrk thread: its Lua counter numbers the requests, so each gets its own client address.
DISTINCT_IPS = """
counter = 0
request = function()
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", math.floor(counter / 65536) % 256, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format("GET", nil, {["Host"] = "HOSTNAME", ["X-Forwarded-For"] = ip, ["X-Real-Port"] = "40000"})
end
sizes = {}
response = function(status, headers, body)
  local size = headers["Content-Length"] or headers["content-length"] or "?"
  sizes[size] = (sizes[size] or 0) + 1
end
threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)  -- (runs in the main Lua state: the counts live in the thread's)
  for _, thread in ipairs(threads) do
    for size, count in pairs(thread:get("sizes")) do io.write(string.format("SIZE %s %d\\n", size, count)) end
  end
end
""".replace("HOSTNAME", HOST)


def wrk(url: str, seconds: int, connections: int, script: Path | None = None, ip: str = "203.0.113.7") -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    if script:
        command += ["-s", str(script)]
    else:
        command += ["-H", f"Host: {HOST}", "-H", f"X-Forwarded-For: {ip}", "-H", "X-Real-Port: 40000"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def percentile(p: str) -> float:
        match = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(match.group(1)) * unit[match.group(2)]

    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": percentile("50"), "p99": percentile("99"),
            "errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
            "sizes": {int(s): int(c) for s, c in re.findall(r"SIZE (\d+) (\d+)", out)}}


def render_cost(samples: int) -> tuple[float, float, int]:
    """(median CPU seconds, median wall seconds, bytes) of one per-IP .ts rendering, in this process."""
    from app.notice.visit_video import render_visit

    lines = ("THIS SERVICE HAS BEEN SEIZED", "Seizing authority: Bench Police", "Case reference: BENCH-14",
             "Your connection to this address has been recorded.")
    cpu, wall, size = [], [], 0
    for i in range(samples):
        started_cpu, started = time.process_time(), time.perf_counter()
        size = len(render_visit(lines, "Your IP address", f"10.9.0.{i}", "mpegts"))
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return statistics.median(cpu), statistics.median(wall), size


def visit_texts_cost(rounds: int = 20_000) -> float:
    """Microseconds to build one answer's per-visit texts (app/notice/iptv.py visit_texts)."""
    from app.notice.iptv import visit_texts
    from app.notice.texts import load_languages

    english = load_languages()["en"]
    start = time.perf_counter()
    for i in range(rounds):
        visit_texts(english, "Bench Police", "BENCH-14", "2001:db8::7", 40000 + i % 1000, "2026-12-01 10:00:00.123")
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16, help="for the playlist, cue and cache-hit rows")
    parser.add_argument("--renders", type=int, default=2, help="visit_video_renders of the server")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "distinct.lua"
        script.write_text(DISTINCT_IPS)
        for visit in (False, True):
            server = Server(work / f"visit-{visit}", domains=DOMAINS,
                            settings={**TRUSTED, "visit_video": visit, "visit_video_renders": args.renders}).start()
            try:
                tag = "per-visit" if visit else "shared (visit_video = false)"
                server.request(target="/_seized/video/en/seg0.ts", host=HOST)  # the shared files, rendered once
                for path in ("/live/u/p/1.ts", "/live/u/p/1.m3u8"):  # the one visitor's rendering, in the cache
                    wrk(server.url(path), 2, 2)
                rows.append((f"{tag}: .m3u8 playlist", wrk(server.url("/live/u/p/1.m3u8"), args.seconds, args.connections)))
                if visit:
                    for name, target in (("get.php playlist", "/get.php?username=u&password=p&type=m3u_plus"),
                                         ("player_api get_live_streams", "/player_api.php?username=u&password=p&action=get_live_streams"),
                                         ("Stalker get_profile", "/portal.php?type=stb&action=get_profile")):
                        rows.append((f"IPTV names with the IP: {name}", wrk(server.url(target), args.seconds, args.connections)))
                    rows.append((f"{tag}: WebVTT cue file", wrk(server.url("/_seized/video/en/visit.vtt"), args.seconds, args.connections)))
                rows.append((f"{tag}: .ts, one IP" + (" (cache hits)" if visit else ""),
                             wrk(server.url("/live/u/p/1.ts"), args.seconds, args.connections)))
                if visit:
                    rows.append((f"{tag}: .ts, new IP each, c={args.renders} (renders)",
                                 wrk(server.url("/live/u/p/1.ts"), args.seconds, args.renders, script)))
                    rows.append((f"{tag}: .ts, new IP each, c={args.connections} (flood)",
                                 wrk(server.url("/live/u/p/1.ts"), args.seconds, args.connections, script)))
                else:
                    shared_size = len(server.request(target="/live/u/p/1.ts", host=HOST).body)
            finally:
                server.stop()
        cpu, wall, size = render_cost(5)
        texts_us = visit_texts_cost()
    print(f"\nseized TV picture bench: wrk -t1, {args.seconds} s per row, loopback, visit_video_renders = {args.renders}")
    print(f"{'':58}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'errors':>8}")
    for name, r in rows:
        print(f"{name:58}{r['rps']:>9.1f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['requests']:>10}{r['errors']:>8}")
        if r["sizes"]:
            shared = r["sizes"].get(shared_size, 0)
            print(f"{'':4}{sum(r['sizes'].values()) - shared} answered with their own IP, {shared} with the shared video")
    print(f"one per-IP .ts rendering in-process: {cpu * 1000:.0f} ms CPU, {wall * 1000:.0f} ms wall (median of 5), {size} bytes")
    print(f"(the shared .ts: {shared_size} bytes)")
    print(f"the per-visit IPTV texts of one answer (names, programme title, message) in-process: {texts_us:.1f} us")


if __name__ == "__main__":
    main()
