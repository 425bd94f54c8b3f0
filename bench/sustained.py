"""Sustained load: does ingest keep up with seized at its maximum rate, and how long does it take to
catch up?

One `seized serve` (fresh data dir, --workers 1 unless --workers N, the config's defaults otherwise:
fsync_interval_ms 50, batch_size 5000; the notice video is not pre-rendered, so no rendering runs
during the load) gets wrk -t1 -c64 on / (Host seized-iptv.example, a browser Accept header: the HTML
notice, status 451) for --seconds (default 60). /readyz is sampled once a second from the start of
the load, through it, and after it until the journal is ingested (backlog 0 and ingested ==
received) or --drain-timeout (default 120 s) has passed.

Printed: backlog_hits / backlog_bytes / backlog_seconds (the age of the oldest hit not yet in the
database) every --every seconds (default 10), with the rates of hits received and ingested over each
row's interval; the maximum backlog; whether it was still growing at the end (least-squares slope of
backlog_hits, and of backlog_seconds, over the last 20 s of the load; "growing" when backlog_hits
rises by more than 1% of the arrival rate); how long after the load stopped the backlog reached 0;
the CPU each seized process used during the load; and received vs ingested at the end (/readyz)
and rows in the hits table (also after a clean stop), which must all be equal.

`python bench/sustained.py [--seconds 60] [--workers 1] [--quick]`: last line `RESULT {json}`.
Loopback only, the load bounded in time.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import ACCEPT_HTML, fmt, get, say, serve_options, wrk  # noqa: E402
from tuned import CpuMeter, Tuned, cpu_seconds, drained, process_names, uptime  # noqa: E402

SLOPE_WINDOW = 20.0  # seconds at the end of the load
GROWING = 0.01  # of the arrival rate


def sample(server: Tuned, started: float, phase: str) -> dict:
    asked = time.monotonic()
    ready = server.readyz()
    row = {"t": round(asked - started, 2), "phase": phase, "ok": ready is not None,
           "readyz_ms": round((time.monotonic() - asked) * 1000, 1)}
    if ready:
        journal, ingest = ready.get("journal") or {}, ready.get("ingest") or {}
        row.update({"received": journal.get("received"), "journaled": journal.get("journaled"),
                    "held": journal.get("held"), "lost": journal.get("lost"), "ingested": ingest.get("ingested"),
                    "backlog_hits": ingest.get("backlog_hits"), "backlog_bytes": ingest.get("backlog_bytes"),
                    "backlog_seconds": ingest.get("backlog_seconds"), "database_ok": ingest.get("database_ok"),
                    "drained": drained(ready)})
        if row["received"] is not None and row["ingested"] is not None:
            row["pending"] = row["received"] - row["ingested"]
    return row


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t, y), per second."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else None


def rate(a: dict, b: dict, key: str) -> float | None:
    if a.get(key) is None or b.get(key) is None or b["t"] <= a["t"]:
        return None
    return (b[key] - a[key]) / (b["t"] - a["t"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (default 60)")
    parser.add_argument("--workers", type=int, default=1, help="public listener processes (default 1)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--drain-timeout", type=float, default=120, help="longest wait after the load (default 120)")
    parser.add_argument("--every", type=float, default=10, help="seconds between table rows (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 s load, a row every 2 s, 30 s drain")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.every, args.drain_timeout = 10, 2, 30
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    load_before = uptime()
    say(f"before: {load_before}")
    work = Path(tempfile.mkdtemp(prefix="seized-sustained-"))
    server = Tuned(work / "seized", serve_options(), workers=args.workers, settings={"prerender_videos": False})
    samples: list[dict] = []
    result: dict = {"mode": "quick" if args.quick else "full", "seconds": args.seconds, "workers": args.workers,
                    "connections": args.connections}
    error = None
    try:
        say(f"starting seized --workers {args.workers}")
        server.start()
        status, _, page = get(server.public_port, "/", {"Accept": ACCEPT_HTML})
        result["status"], result["body_bytes"] = status, len(page)
        names = process_names(server)
        cpu_start = {pid: cpu_seconds(pid) for pid in names}
        children_start = resource.getrusage(resource.RUSAGE_CHILDREN)
        meter = CpuMeter(server)
        meter.start()

        box: dict = {}

        def load() -> None:
            try:
                box["wrk"] = wrk(server.public_port, "/", args.seconds, args.connections, True, work, {"Accept": ACCEPT_HTML})
            except Exception as exc:  # reported below
                box["error"] = exc
            box["ended"] = time.monotonic()

        say(f"load: wrk -t1 -c{args.connections} -d{args.seconds:.0f}s on /, /readyz every second")
        started = time.monotonic()
        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        tick = 0
        while thread.is_alive():
            samples.append(sample(server, started, "load"))
            tick += 1
            thread.join(max(0.0, started + tick - time.monotonic()))
        ended = box["ended"]
        cpu_end = {pid: cpu_seconds(pid) for pid in names}
        children_end = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child that ended meanwhile
        meter.stop()
        if "error" in box:
            raise box["error"]
        r = box["wrk"]
        load_s = ended - started
        say(f"load over after {load_s:.1f} s: {r['rps']:,.0f} req/s, p99 {fmt(r['p99_ms'], 1)} ms; waiting for ingest "
            f"(up to {args.drain_timeout:.0f} s)")
        tick = 0
        while True:
            row = sample(server, started, "after")
            samples.append(row)
            if row.get("drained") or time.monotonic() - ended >= args.drain_timeout:
                break
            tick += 1
            time.sleep(max(0.0, ended + tick - time.monotonic()))
        load_end_t = round(ended - started, 2)
        result["wrk"] = {k: r[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "socket_errors", "statuses")}
        result["load_s"] = round(load_s, 2)
        cores: dict[str, float] = {}
        for pid, name in names.items():
            if cpu_start[pid] is not None and cpu_end[pid] is not None:
                cores[name] = round(cores.get(name, 0.0) + (cpu_end[pid] - cpu_start[pid]) / load_s, 2)
        cores["wrk"] = round((children_end.ru_utime + children_end.ru_stime - children_start.ru_utime
                              - children_start.ru_stime) / load_s, 2)
        result["cpu_cores_during_load"] = cores
        result["machine_cores_during_load"] = meter.cores()

        good = [s for s in samples if s["ok"]]
        during = [s for s in good if s["phase"] == "load"]
        after = [s for s in good if s["phase"] == "after"]
        peak = max(good, key=lambda s: s["backlog_hits"] or 0)
        result["max_backlog"] = {"hits": peak["backlog_hits"], "at_s": peak["t"],
                                 "bytes": max(s["backlog_bytes"] or 0 for s in good),
                                 "seconds": max(s["backlog_seconds"] or 0 for s in good),
                                 "pending": max(s.get("pending") or 0 for s in good)}
        tail = [s for s in during if s["t"] >= load_end_t - SLOPE_WINDOW]
        hits_slope = slope([(s["t"], s["backlog_hits"]) for s in tail])
        pending_slope = slope([(s["t"], s["pending"]) for s in tail if s.get("pending") is not None])
        age_slope = slope([(s["t"], s["backlog_seconds"]) for s in tail])
        arrival = rate(tail[0], tail[-1], "received") if len(tail) >= 2 else None
        ingest_rate = rate(tail[0], tail[-1], "ingested") if len(tail) >= 2 else None
        growing = None if hits_slope is None or not arrival else hits_slope > GROWING * arrival
        result["end_of_load"] = {"window_s": round(tail[-1]["t"] - tail[0]["t"], 1) if tail else None,
                                 "backlog_hits_per_s": round(hits_slope, 1) if hits_slope is not None else None,
                                 "backlog_seconds_per_s": round(age_slope, 3) if age_slope is not None else None,
                                 "pending_per_s": round(pending_slope, 1) if pending_slope is not None else None,
                                 "received_per_s": round(arrival, 1) if arrival else None,
                                 "ingested_per_s": round(ingest_rate, 1) if ingest_rate else None,
                                 "growing": growing}
        zero = next((s for s in after if s["backlog_bytes"] == 0), None)
        done = next((s for s in after if s["drained"]), None)
        result["backlog_zero_after_s"] = round(zero["t"] - load_end_t, 2) if zero else None
        result["all_ingested_after_s"] = round(done["t"] - load_end_t, 2) if done else None
        last = good[-1]
        result["final"] = {k: last.get(k) for k in ("received", "journaled", "held", "lost", "ingested", "backlog_hits",
                                                    "backlog_bytes")}
        result["final"]["rows"] = server.count("1 = 1")
        result["readyz_failed"] = sum(1 for s in samples if not s["ok"])
        result["readyz_ms_max"] = max(s["readyz_ms"] for s in samples)
    except Exception:
        say("the run stopped early:\n" + traceback.format_exc())
        error = traceback.format_exc().strip().splitlines()[-1]
    finally:
        result["exit"] = server.stop()
        try:
            result.setdefault("final", {})["rows_after_stop"] = server.count("1 = 1")
        except Exception as exc:
            result.setdefault("final", {})["rows_after_stop"] = f"n/a: {exc}"
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = uptime()
    result["uptime_before"], result["uptime_after"] = load_before, load_after
    result["samples"] = [{k: s.get(k) for k in ("t", "phase", "received", "ingested", "pending", "backlog_hits", "backlog_bytes",
                                                "backlog_seconds")} for s in samples]
    if error:
        result["error"] = error
    report(result, samples, args)
    print("RESULT " + json.dumps(result, separators=(",", ":")))


def report(result: dict, samples: list[dict], args) -> None:
    print(f"seized sustained load ({result['mode']}): wrk -t1 -c{args.connections} -d{args.seconds:.0f}s on the HTML notice, "
          f"--workers {args.workers}, fsync_interval_ms 50, batch_size 5000 (defaults); /readyz every second; loopback, "
          f"2 cores shared with wrk")
    good = [s for s in samples if s["ok"]]
    if good:
        load_end_t = result.get("load_s")
        chosen, next_t = [], 0.0
        for s in good:
            if s["t"] >= next_t - 0.5:
                chosen.append(s)
                next_t = (s["t"] // args.every + 1) * args.every
        for extra in (max((s for s in good if s["phase"] == "load"), key=lambda s: s["t"], default=None), good[-1]):
            if extra is not None and extra not in chosen:
                chosen.append(extra)
        chosen.sort(key=lambda s: s["t"])
        titles = ("t s", "phase", "received", "ingested", "recv/s", "ingest/s", "received-ingested", "backlog_hits",
                  "backlog_bytes", "backlog_seconds")
        rows, previous = [], None
        for s in chosen:
            rows.append((f"{s['t']:.0f}", s["phase"] + (" (end)" if s is chosen[-1] and s.get("drained") else ""),
                         fmt(s["received"]), fmt(s["ingested"]),
                         fmt(rate(previous, s, "received")) if previous else "", fmt(rate(previous, s, "ingested")) if previous else "",
                         fmt(s.get("pending")), fmt(s["backlog_hits"]), fmt(s["backlog_bytes"]), fmt(s["backlog_seconds"], 2)))
            previous = s
        widths = [max(len(x[i]) for x in [titles, *rows]) for i in range(len(titles))]
        print("  ".join(t.rjust(w) if i not in (1,) else t.ljust(w) for i, (t, w) in enumerate(zip(titles, widths))))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print("  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if load_end_t is not None:
            print(f"(load ran from t=0 to t={load_end_t:.1f} s; rates are over the interval since the row above; "
                  f"received-ingested is the exact count not yet in the database, backlog_* are /readyz's figures: "
                  f"backlog_hits = journal bytes not yet ingested / mean record size, refreshed between ingest passes)")
    w = result.get("wrk")
    if w:
        print(f"client (wrk): {fmt(w['requests'])} responses, {fmt(w['rps'])} req/s, p50 {fmt(w['p50_ms'], 2)} ms, "
              f"p99 {fmt(w['p99_ms'], 2)} ms, statuses {w['statuses']}, socket errors {w['socket_errors']}")
    m = result.get("max_backlog")
    if m:
        print(f"max backlog: {fmt(m['hits'])} backlog_hits (at t={m['at_s']:.0f} s), {fmt(m['bytes'])} backlog_bytes, "
              f"{fmt(m['seconds'], 2)} backlog_seconds (oldest pending hit), {fmt(m['pending'])} received-ingested")
    e = result.get("end_of_load")
    if e:
        verdict = {True: "YES, still growing", False: "no (bounded)", None: "n/a"}[e["growing"]]
        print(f"growing at the end of the load? {verdict}: over the last {fmt(e['window_s'], 0)} s backlog_hits "
              f"{e['backlog_hits_per_s']:+,.1f}/s, backlog_seconds {e['backlog_seconds_per_s']:+.3f} s/s, received-ingested "
              f"{fmt(e['pending_per_s'], 1)}/s; received "
              f"{fmt(e['received_per_s'])}/s, ingested {fmt(e['ingested_per_s'])}/s"
              if e["backlog_hits_per_s"] is not None else f"growing at the end of the load? {verdict}")
    if "backlog_zero_after_s" in result:
        z, d = result["backlog_zero_after_s"], result["all_ingested_after_s"]
        print(f"after the load stopped: backlog 0 after {fmt(z, 1) + ' s' if z is not None else 'NOT within ' + fmt(args.drain_timeout) + ' s'}"
              f", every received hit ingested after {fmt(d, 1) + ' s' if d is not None else 'NOT within ' + fmt(args.drain_timeout) + ' s'}"
              f" (1 s sampling)")
    c = result.get("cpu_cores_during_load")
    if c:
        print("CPU during the load, cores: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()))
    m = result.get("machine_cores_during_load")
    if m:
        print(f"machine during the load: {m['machine']:.2f} of 2 cores busy: this seized {m['seized']:.2f}, wrk {m['wrk']:.2f}, "
              f"everything else (other jobs) {m['others']:.2f}")
    f = result.get("final") or {}
    if f.get("received") is not None:
        same = f["received"] == f["ingested"] == f.get("rows")
        print(f"at the end: received {fmt(f['received'])}, journaled {fmt(f['journaled'])}, ingested {fmt(f['ingested'])}, "
              f"rows in hits {fmt(f.get('rows'))}, after clean stop {f.get('rows_after_stop')}; held {f['held']}, lost {f['lost']}: "
              f"{'EQUAL' if same else 'NOT EQUAL'}")
    if result.get("readyz_failed"):
        print(f"/readyz did not answer within 2 s {result['readyz_failed']} times")
    print(f"/readyz slowest answer: {fmt(result.get('readyz_ms_max'), 0)} ms; seized exit code {result.get('exit')}")
    print(f"load before: {result['uptime_before']}")
    print(f"load after:  {result['uptime_after']}")
    if result.get("error"):
        print(f"run stopped early: {result['error']}")


if __name__ == "__main__":
    main()
