"""What the journal's fsync_interval_ms costs: HTML notice requests/s and p99 for 0, 5, 50, 1000.

For each setting, one fresh data dir and one `seized serve` (workers 1 unless --workers; the notice
video is not pre-rendered, so no rendering runs during the load), all four started first, each
warmed up (wrk on /, then a wait until /readyz says its hits are all ingested). The measured time
(--seconds per setting) is split into --rounds slices and the settings take turns, each round
starting with the next one, so that load from outside this run (other jobs on the machine) falls on
every setting rather than on whichever ran at the wrong moment; the servers not being measured sit
idle (about 2% of a core each). A slice is wrk -t1 -c64 --latency on / with Host
seized-iptv.example and a browser Accept header (the HTML notice, status 451), then a wait until
that server's journal is ingested, so no ingest work runs during the next slice. req/s is all the
slices' requests over their time; p50 and p99 are the medians of the slices' (wrk's latency
distribution), each slice's shown too. At the end received == ingested is checked on /readyz.

What the setting means (README, app/journal.py): a listener worker write()s every hit to its journal
segment before the first byte of the response, so a hit that was answered survives SIGKILL or a
crash of any seized process whatever the setting. fsync_interval_ms only bounds what a power loss
(or a kernel crash) can take: a thread fdatasyncs the segment every N ms, so up to N ms of hits
plus the one fdatasync under way can be lost; 0 fdatasyncs inside each append, before the
response, so an answered hit is on disk (if the disk honours the flush).

The fdatasync cost of the file system under the data dirs is measured too (200 appends of 200 B):
on a disk or VM that acknowledges flushes from a volatile cache it is a fraction of a millisecond,
and then 0 costs little here and would cost more on a disk that really flushes.

`python bench/fsync.py [--seconds 20] [--quick]`: last line `RESULT {json}`. Loopback only,
every load bounded in time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import ACCEPT_HTML, fmt, get, say, serve_options, wrk  # noqa: E402
from tuned import CpuMeter, Tuned, fdatasync_ms, uptime, wait_drained  # noqa: E402

INTERVALS = (0, 5, 50, 1000)
DEFAULT_MS = 50


def meaning(ms: int, rps: float | None, sync: dict) -> str:
    if ms == 0:
        return "none: every hit fdatasynced before its response"
    window = ms + sync["p99_ms"]
    hits = f", ~{fmt(rps * window / 1000)} hits at this rate" if rps else ""
    return f"<= {ms} ms + one fdatasync (~{window:,.1f} ms{hits})"


class Setting:
    """One fsync_interval_ms: its own data dir and `seized serve`, measured in slices."""

    def __init__(self, ms: int, work: Path, options: set[str], args):
        self.ms, self.args, self.work = ms, args, work
        self.server = Tuned(work / f"fsync-{ms}", options, workers=args.workers,
                            settings={"fsync_interval_ms": ms, "prerender_videos": False})
        self.slices: list[dict] = []
        self.cpu = CpuMeter(self.server)
        self.out: dict = {"fsync_interval_ms": ms}

    def start(self) -> None:
        say(f"fsync_interval_ms = {self.ms}: starting seized, warm-up {self.args.warmup:.0f} s")
        self.server.start()
        status, _, page = get(self.server.public_port, "/", {"Accept": ACCEPT_HTML})
        self.out["status"], self.out["body_bytes"] = status, len(page)
        wrk(self.server.public_port, "/", self.args.warmup, self.args.connections, True, self.work, {"Accept": ACCEPT_HTML})
        self.drain("warm-up")

    def drain(self, what: str) -> tuple[bool, float, dict | None]:
        ok, waited, ready = wait_drained(self.server, self.args.drain_timeout)
        if not ok:
            say(f"  fsync_interval_ms = {self.ms}: {what} hits not all ingested after {waited:.0f} s")
        return ok, waited, ready

    def measure(self, seconds: float) -> None:
        self.cpu.start()
        r = wrk(self.server.public_port, "/", seconds, self.args.connections, True, self.work, {"Accept": ACCEPT_HTML})
        self.cpu.stop()
        ok, waited, _ = self.drain("measured")
        r["drain_s"] = waited
        self.slices.append(r)
        say(f"  fsync_interval_ms = {self.ms}: {r['rps']:,.0f} req/s, p50 {fmt(r['p50_ms'], 2)} ms, "
            f"p99 {fmt(r['p99_ms'], 2)} ms (ingested {waited:.1f} s later)")

    def finish(self) -> dict:
        out, slices = self.out, self.slices
        if slices:
            requests = sum(r["requests"] for r in slices)
            spent = sum(r["requests"] / r["rps"] for r in slices if r["rps"])
            statuses: dict = {}
            for r in slices:
                for k, v in r["statuses"].items():
                    statuses[k] = statuses.get(k, 0) + v
            out.update({"requests": requests, "rps": round(requests / spent, 1) if spent else None,
                        "rps_slices": [round(r["rps"]) for r in slices],
                        "p50_ms": median([r["p50_ms"] for r in slices]), "p99_ms": median([r["p99_ms"] for r in slices]),
                        "p99_ms_slices": [r["p99_ms"] for r in slices],
                        "socket_errors": sum(r["socket_errors"] for r in slices), "statuses": statuses,
                        "drain_s_max": round(max(r["drain_s"] for r in slices), 1), "cpu_cores": self.cpu.cores()})
        ready = self.server.readyz()
        journal, ingest = (ready or {}).get("journal") or {}, (ready or {}).get("ingest") or {}
        out.update({"received": journal.get("received"), "ingested": ingest.get("ingested"),
                    "late": journal.get("late"), "lost": journal.get("lost")})
        return out

    def stop(self) -> None:
        self.out["exit"] = self.server.stop()


def median(values: list) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return round(values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="measured wrk run per setting (default 20)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="the measured seconds are split into this many slices, the settings taking turns (default 4)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up wrk run per setting (default 3)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=60, help="longest wait for ingest after a run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 s per setting in 2 rounds, 1 s warm-ups")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.warmup, args.drain_timeout = 4, 2, 1, 30
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    load_before = uptime()
    say(f"before: {load_before}")
    options = serve_options()
    work = Path(tempfile.mkdtemp(prefix="seized-fsync-"))
    sync = fdatasync_ms(work)
    say(f"fdatasync on {work}: p50 {sync['p50_ms']} ms, p99 {sync['p99_ms']} ms")
    settings = [Setting(ms, work, options, args) for ms in INTERVALS]
    runs: list[dict] = []
    error = None
    try:
        for setting in settings:
            setting.start()
        piece = args.seconds / args.rounds
        for number in range(args.rounds):
            # each round starts with the next setting, so none is always first (or last) after a pause
            order = settings[number % len(settings):] + settings[:number % len(settings)]
            say(f"round {number + 1}/{args.rounds}: {piece:.0f} s each, order {[s.ms for s in order]}")
            for setting in order:
                setting.measure(piece)
        runs = [setting.finish() for setting in settings]
    except Exception:
        say("the run stopped early:\n" + traceback.format_exc())
        error = traceback.format_exc().strip().splitlines()[-1]
        runs = [setting.finish() for setting in settings if setting.slices]
    finally:
        for setting in settings:
            setting.stop()
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = uptime()

    base = next((r for r in runs if r["fsync_interval_ms"] == DEFAULT_MS and r.get("rps")), None)
    titles = ("fsync_interval_ms", "req/s", f"vs {DEFAULT_MS}", "req/s per slice", "p50 ms", "p99 ms", "p99 per slice",
              "requests", "status",
              "CPU seized/wrk/others", "received=ingested", "power-loss window (SIGKILL: nothing lost at any setting)")
    rows = []
    for r in runs:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted((r.get("statuses") or {}).items()))
        errors = f" sockerr {r['socket_errors']}" if r.get("socket_errors") else ""
        same = "yes" if r.get("received") is not None and r.get("received") == r.get("ingested") else \
            f"NO {r.get('received')}/{r.get('ingested')}"
        rows.append((str(r["fsync_interval_ms"]) + (" (default)" if r["fsync_interval_ms"] == DEFAULT_MS else ""),
                     fmt(r.get("rps")), f"{r['rps'] / base['rps']:.2f}x" if base and r.get("rps") else "n/a",
                     "/".join(f"{v:,}" for v in r.get("rps_slices", [])),
                     fmt(r.get("p50_ms"), 2), fmt(r.get("p99_ms"), 2),
                     "/".join(fmt(v, 1) for v in r.get("p99_ms_slices", [])),
                     fmt(r.get("requests")), statuses + errors,
                     "/".join(f"{(r.get('cpu_cores') or {}).get(k, 0):.2f}" for k in ("seized", "wrk", "others")), same,
                     meaning(r["fsync_interval_ms"], r.get("rps"), sync)))
    widths = [max(len(x[i]) for x in [titles, *rows]) for i in range(len(titles))]
    mode = "quick" if args.quick else "full"
    print(f"seized journal fsync_interval_ms ({mode}): HTML notice GET / Host seized-iptv.example, wrk -t1 -c{args.connections} "
          f"--latency; {args.seconds:.0f} s per setting in {args.rounds} slices of {args.seconds / args.rounds:.0f} s, the "
          f"settings taking turns, after {args.warmup:.0f} s warm-up; workers {args.workers}; one fresh data dir each; "
          f"loopback, 2 cores shared with wrk")
    print("req/s = all slices' requests / their time; p50, p99 = median of the slices' (wrk --latency); CPU = cores "
          "busy during the slices: this seized's processes / wrk / everything else on the machine (other jobs)")
    left = {0, 3, 6, 8, 10, 11}
    print("  ".join(t.ljust(w) for t, w in zip(titles, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    print(f"fdatasync here (200 B appends, {sync['count']}x): p50 {sync['p50_ms']} ms, p99 {sync['p99_ms']} ms, "
          f"max {sync['max_ms']} ms")
    print(f"load before: {load_before}")
    print(f"load after:  {load_after}")
    if error:
        print(f"run stopped early: {error}")
    result = {"mode": mode, "seconds": args.seconds, "connections": args.connections, "workers": args.workers,
              "fdatasync": sync, "runs": runs, "uptime_before": load_before, "uptime_after": load_after}
    if error:
        result["error"] = error
    print("RESULT " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
