"""The PostgreSQL rows of bench/pipeline.py's table, measured in the same run as its SQLite rows.

  8  1 node on PostgreSQL: `seized serve --workers 1` with `db = "postgresql://..."`, the same
     warm-up + wrk load as row 1 (HTML notice): requests/s and p99; ingest hits/s (every hit the
     client received, over the load plus the time after it until the last one is a row: counted in
     hit_rows as pipeline.wait_ingest counts SQLite's hits); hits lost (received - rows, recounted
     after a clean stop).
  9  2 nodes on one PostgreSQL database: two `seized serve` (node ids bench-a and bench-b, ports of
     their own, the same db URL), a wrk on each at once with half of row 1's connections each:
     total requests/s, total ingest hits/s, hits lost.
  7c Bytes per stored hit in PostgreSQL: bench/storage.py's hits (the same request mix and count as
     row 7a) written through PostgresStore.insert_hits, then hit_rows' partitions and header_sets
     measured: pg_relation_size (heap), pg_table_size - heap (TOAST, free space and visibility maps),
     pg_indexes_size, after a VACUUM, less the same tables' size before the hits.

Each run has its own throwaway database (seized_bench_<pid>_<what>), dropped at the end. CPU of
each process kind (listener worker, ingest, the rest of seized: supervisor and management, PostgreSQL's
processes, wrk, and the rest of the machine: the kernel's threads and anything else running) comes
from /proc, during the load and during the drain after it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pipeline as pl  # noqa: E402  (pipeline.py, run as __main__, registers itself under this name first)
from tuned import cpu_seconds, group_pids, machine_cpu, process_names  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def unreachable(url: str) -> str | None:
    """Why the PostgreSQL rows cannot run (None: they can)."""
    try:
        import psycopg
    except ImportError as error:
        return f"psycopg is not installed ({error})"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # refused, auth, no such database...
        return f"PostgreSQL at {url} is not reachable: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}"
    return None


class Databases:
    """Throwaway databases on the server of `admin_url`, all dropped by drop_all()."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.names: list[str] = []

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, connect_timeout=10, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, what: str) -> str:
        name = f"seized_bench_{os.getpid()}_{what}"
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {name}")
        self.names.append(name)
        return urlsplit(self.admin_url)._replace(path="/" + name).geturl()

    def drop_all(self) -> None:
        for name in self.names:
            try:
                self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except Exception as error:
                pl.say(f"could not drop database {name}: {error}")
        self.names.clear()


# -- CPU by process kind ---------------------------------------------------------------------------

def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


class CpuByKind:
    """CPU seconds between marks of: the seized servers' listener workers, their ingest processes,
    the rest of their process groups, PostgreSQL's processes, and this process's ended children
    (wrk), as cores (seconds per second of wall time)."""

    def __init__(self, servers: list[pl.Seized]):
        self.kinds: dict[int, str] = {}
        for server in servers:
            for pid, role in process_names(server).items():
                self.kinds[pid] = "ingest" if role == "ingest" else "other seized" if role in ("supervisor", "other") else "worker"
        self.servers = servers
        self.last = self._read()

    def _read(self) -> tuple[float, dict[int, tuple[str, float]], float]:
        seen: dict[int, tuple[str, float]] = {}
        for server in self.servers:
            for pid in group_pids(server.process.pid):
                seen[pid] = (self.kinds.get(pid, "other seized"), cpu_seconds(pid) or 0.0)
        for pid in postgres_pids():
            seen[pid] = ("postgres", cpu_seconds(pid) or 0.0)
        seen[0] = ("whole machine", machine_cpu()[0])
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.monotonic(), seen, children.ru_utime + children.ru_stime

    def mark(self, wall: float | None = None) -> dict[str, float]:
        """Cores used by each kind since the last mark (over `wall` seconds when given: the drain,
        not the second pipeline.wait_ingest waits after it)."""
        (t0, before, c0), (t1, after, c1) = self.last, self._read()
        self.last = (t1, after, c1)
        wall = max(1e-6, wall or t1 - t0)
        cores: dict[str, float] = {}
        for pid, (kind, used) in after.items():
            cores[kind] = cores.get(kind, 0.0) + (used - before.get(pid, (kind, 0.0))[1]) / wall
        cores["wrk"] = (c1 - c0) / wall
        # the rest of the machine: the kernel's own threads, and anything else running meanwhile
        cores["rest of machine"] = max(0.0, cores.pop("whole machine", 0.0) - sum(cores.values()))
        order = ("worker", "ingest", "postgres", "wrk", "other seized", "rest of machine")
        return {k: round(cores[k], 2) for k in order if k in cores}


def cores_text(cores: dict[str, float] | None) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in (cores or {}).items()) or "n/a"


# -- rows 8 and 9: nodes under load -----------------------------------------------------------------

def parallel(calls: list) -> list:
    """Run the calls in threads at once (each wrk is its own process); their results in order."""
    results: list = [None] * len(calls)
    errors: list = []

    def run(i: int, call) -> None:
        try:
            results[i] = call()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def run_nodes(count: int, dbs: Databases, work: Path, options: set[str], has_workers: bool, args) -> dict:
    """`count` seized nodes on one new PostgreSQL database, the HTML notice load on all at once:
    warm-up (waited for in the database), then the measured load, then the drain. Paths of two
    segments: /a/b/N would be an Xtream stream URL (the video, its password segment redacted)."""
    url = dbs.create(f"{count}node")
    tag = f"pg{count}"
    servers = [pl.Seized(work / f"seized-{tag}-{i}", options, workers=1 if has_workers else None, db=url,
                         node=f"bench-{chr(ord('a') + i)}") for i in range(count)]
    conns = max(1, args.connections // count)
    headers = {"Accept": pl.ACCEPT_HTML}
    result: dict = {"nodes": count, "connections": conns}
    try:
        for server in servers:
            pl.say(f"starting seized on PostgreSQL: {' '.join(server.command())} (node {server.dir.name})")
            server.start()
        for server in servers:  # as row 1 does: the notice videos are made before any load
            pl.get(server.public_port, "/live/user/pass/1.ts", timeout=180)
        for server in servers:
            pl.wait_idle(server)
        pl.say(f"{count} node(s) on PostgreSQL: warm-up {args.warmup:.0f} s + wrk {args.seconds:.0f} s, "
               f"-c{conns} on each at once")
        warm = parallel([lambda s=s, i=i: pl.wrk(s.public_port, f"/bench/{tag}-warm{i}", args.warmup, conns, True, work, headers)
                         for i, s in enumerate(servers)])
        pl.wait_ingest(servers[0], pl.Phase(f"PostgreSQL {count} node(s) warm-up", "path LIKE ?", (f"/bench/{tag}-warm%",),
                                            sum(w["answered"] for w in warm)), args.ingest_timeout)
        cpu = CpuByKind(servers)
        started = time.monotonic()
        loads = parallel([lambda s=s, i=i: pl.wrk(s.public_port, f"/bench/{tag}-node{i}", args.seconds, conns, True, work, headers)
                          for i, s in enumerate(servers)])
        load_s = time.monotonic() - started
        result["cpu_load"] = cpu.mark()
        phase = pl.Phase(f"PostgreSQL {count} node(s)", "path LIKE ?", (f"/bench/{tag}-node%",), sum(r["answered"] for r in loads))
        pl.wait_ingest(servers[0], phase, args.ingest_timeout)
        result["cpu_drain"] = cpu.mark(phase.drained_s)
        result.update(loads=loads, load_s=load_s, phase=phase, ingest=pl.ingest_rate(phase, load_s),
                      rps=sum(r["rps"] for r in loads), received=phase.received,
                      readyz=[((s.readyz() or {}).get("ingest") or {}).get("backlog_hits") for s in servers])
        pl.say(f"  {count} node(s): {result['rps']:,.0f} req/s; CPU during the load {cores_text(result['cpu_load'])}; "
               f"during the drain {cores_text(result['cpu_drain'])}")
    finally:
        exits = [server.stop() for server in servers]
        result["exits"] = exits
        if "loads" in result:
            # every node's own hits, recounted after the clean stop
            logged = [servers[0].count("path = ? AND node = ?", (f"/bench/{tag}-node{i}", f"bench-{chr(ord('a') + i)}"))
                      for i in range(count)]
            result["logged"] = logged
            result["lost"] = sum(max(0, r["answered"] - n) for r, n in zip(result["loads"], logged))
            result["phase"].logged_final = sum(logged)
    return result


# -- row 7c: bytes per hit --------------------------------------------------------------------------

SIZES = """
SELECT CASE WHEN c.relname = 'header_sets' THEN 'header_sets' ELSE 'hit_rows' END,
       pg_relation_size(c.oid), pg_table_size(c.oid) - pg_relation_size(c.oid), pg_indexes_size(c.oid)
FROM pg_class c
WHERE c.oid IN (SELECT relid FROM pg_partition_tree('hit_rows') UNION SELECT 'header_sets'::regclass)
"""


def sizes(url: str) -> dict[str, list[int]]:
    """{'hit_rows': [heap, toast+maps, indexes], 'header_sets': [...]} in bytes, over hit_rows' partitions."""
    import psycopg

    out = {"hit_rows": [0, 0, 0], "header_sets": [0, 0, 0]}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, *parts in conn.execute(SIZES).fetchall():
            out[name] = [a + b for a, b in zip(out[name], parts)]
    return out


def bytes_per_hit(dbs: Databases, hits: int, boxes: int) -> dict:
    """bench/storage.py's hits through PostgresStore.insert_hits (batches of 500, as storage.py writes
    them to SQLite), then the growth of hit_rows and header_sets per hit."""
    import storage
    from app.evidence import GENESIS, chain_rows
    from app.record import to_row
    from app.store.postgres import PostgresStore

    url = dbs.create("storage")

    async def fill(count: int) -> None:
        store = PostgresStore(url)
        await store.open()
        try:
            all_hits = storage.make_hits(count, boxes, 1_795_000_000 * 10**9)
            heads, geo = {"node-1": GENESIS}, storage.Geo()
            for start in range(0, count, 500):
                rows = [to_row(hit, b"match-key", geo) for hit in all_hits[start:start + 500]]
                linked, heads = chain_rows(rows, heads)
                await store.insert_hits(linked)
        finally:
            await store.close()

    import psycopg

    asyncio.run(fill(0))
    empty = sizes(url)
    started = time.monotonic()
    asyncio.run(fill(hits))
    took = time.monotonic() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) hit_rows, header_sets")
        stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT header_set) FROM hit_rows").fetchone()
        # hit_rows' indexes (on the parent), each summed over its partitions' indexes
        indexes = conn.execute("SELECT p.relname, SUM(pg_relation_size(h.inhrelid)) FROM pg_index x "
                               "JOIN pg_class p ON p.oid = x.indexrelid JOIN pg_inherits h ON h.inhparent = p.oid "
                               "WHERE x.indrelid = 'hit_rows'::regclass GROUP BY 1").fetchall()
    full = sizes(url)
    grown = {name: [b - a for a, b in zip(empty[name], full[name])] for name in full}
    per = {f"{name}_{part}": round(value / hits, 1) for name, values in grown.items()
           for part, value in zip(("heap", "toast_maps", "indexes"), values)}
    total = sum(sum(values) for values in grown.values())
    raw = storage.raw_size(*storage.raw_request(0)[::2])
    pl.say(f"  PostgreSQL storage: {hits:,} hits ({stored[0]:,} rows, {stored[1]} header sets) in {took:.1f} s: "
           f"{total / hits:.1f} bytes/hit {per}; hit_rows' indexes, bytes/hit (over all partitions): "
           + ", ".join(f"{name} {size / hits:.1f}" for name, size in sorted(indexes, key=lambda x: -x[1])))
    return {"bytes_per_hit": round(total / hits, 1), "table": round((grown["hit_rows"][0] + grown["hit_rows"][1]
                                                                    + grown["header_sets"][0] + grown["header_sets"][1]) / hits, 1),
            "indexes": round((grown["hit_rows"][2] + grown["header_sets"][2]) / hits, 1), **per,
            "hit_rows_index_count": len(indexes), "raw_bytes": raw, "hits": hits, "boxes": boxes, "rows": stored[0], "insert_rows_s": round(hits / took)}


# -- in pipeline.py's run and table -----------------------------------------------------------------

def run(args, work: Path, options: set[str], has_workers: bool) -> dict:
    """Everything PostgreSQL for pipeline.main(): {"skipped": why} or the three measures."""
    if args.no_postgres:
        return {"skipped": "skipped (--no-postgres)"}
    why = unreachable(args.pg_url)
    if why:
        pl.say(f"PostgreSQL rows skipped: {why}")
        return {"skipped": why}
    dbs = Databases(args.pg_url)
    out: dict = {}
    try:
        for key, measure in (("one", lambda: run_nodes(1, dbs, work, options, has_workers, args)),
                             ("two", lambda: run_nodes(2, dbs, work, options, has_workers, args)),
                             ("storage", lambda: bytes_per_hit(dbs, 10_000 if args.quick else 100_000, 200))):
            try:
                out[key] = measure()
            except Exception as error:
                pl.say(f"PostgreSQL {key}: {type(error).__name__}: {error}")
                out[key] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    finally:
        dbs.drop_all()
    return out


def storage_row(table, r: dict) -> None:
    pg, sqlite = r.get("pg") or {}, (r.get("storage") or (None, ""))[0] or {}
    s = pg.get("storage") or {}
    label = "bytes per stored hit, PostgreSQL"
    if "bytes_per_hit" in s:
        lite = sqlite.get("bytes_per_hit")
        table.add("7c", label, pl.fmt(s["bytes_per_hit"]), "n/a", "",
                  f"SQLite (7a) {pl.fmt(lite)} B, PostgreSQL/SQLite {pl.ratio(s['bytes_per_hit'], lite)}; table {pl.fmt(s['table'])} B "
                  f"+ indexes {pl.fmt(s['indexes'])} B: hit_rows heap {s['hit_rows_heap']} + TOAST/maps {s['hit_rows_toast_maps']} "
                  f"+ {s['hit_rows_index_count']} indexes {s['hit_rows_indexes']}, header_sets heap {s['header_sets_heap']} + TOAST/maps "
                  f"{s['header_sets_toast_maps']} + indexes {s['header_sets_indexes']}; {s['hits']:,} hits of 7a's request mix "
                  f"({s['boxes']} boxes, raw {s['raw_bytes']} B: {s['bytes_per_hit'] / s['raw_bytes']:.2f}x), after VACUUM; "
                  f"insert_hits {s['insert_rows_s']:,} rows/s")
    else:
        table.add("7c", label, "n/a", "n/a", "", pg.get("skipped") or s.get("error") or "not measured")


def node_rows(table, r: dict) -> None:
    pg = r.get("pg") or {}
    lite, lite_ingest = r.get("s_html"), r.get("s_html_ingest")
    n_rps = (r.get("n_html") or {}).get("rps")
    for number, key, what in (("8", "one", "PostgreSQL, 1 node"), ("9", "two", "PostgreSQL, 2 nodes")):
        x = pg.get(key) or {}
        if "rps" not in x:
            reason = pg.get("skipped") or x.get("error") or "not measured"
            for suffix, measure in (("a", "req/s"), ("b", "ingest hits/s"), ("c", "hits lost")):
                table.add(number + suffix, f"{what}: {measure}", "n/a", "n/a", "", reason)
            continue
        loads = x["loads"]
        p99 = "/".join(pl.fmt(w["p99_ms"], 1) for w in loads)
        per_node = " + ".join(pl.fmt(w["rps"]) for w in loads)
        note = (f"wrk -t1 -c{x['connections']} on each of {x['nodes']} node(s) at once{f' ({per_node})' if x['nodes'] > 1 else ''}; "
                f"p99 {p99} ms; SQLite (row 1) {pl.fmt(lite['rps'] if lite else None)} req/s, PostgreSQL/SQLite "
                f"{pl.ratio(x['rps'], lite['rps'] if lite else None)}; CPU cores during the load: {cores_text(x.get('cpu_load'))}")
        errors = sum(w["socket_errors"] for w in loads)
        if errors:
            note += f"; socket errors {errors}"
        table.add(number + "a", f"{what}: req/s", pl.fmt(x["rps"]), pl.fmt(n_rps), pl.ratio(x["rps"], n_rps), note)
        ing = x.get("ingest")
        if ing:
            table.add(number + "b", f"{what}: ingest hits/s", pl.fmt(ing["rate"]), "n/a", "",
                      f"{x['received']:,} hits over the {x['load_s']:.1f} s load + {ing['drain_s']:.1f} s until the last was a row; "
                      f"backlog at the load's end {ing['backlog']:,}, drained alone at {pl.fmt(ing['drain_rate'])} hits/s; "
                      f"SQLite (5b) {pl.fmt(lite_ingest['rate'] if lite_ingest else None)} hits/s, PostgreSQL/SQLite "
                      f"{pl.ratio(ing['rate'], lite_ingest['rate'] if lite_ingest else None)}; CPU cores during the drain: "
                      f"{cores_text(x.get('cpu_drain'))}")
        else:
            table.add(number + "b", f"{what}: ingest hits/s", "n/a", "n/a", "",
                      f"not drained within {x['phase'].ingest_s:.0f} s: {x['phase'].logged_running:,} of {x['received']:,} rows")
        logged = x.get("logged")
        table.add(number + "c", f"{what}: hits lost", f"{x['lost']:,} of {x['received']:,}" if logged is not None else "n/a", "n/a", "",
                  f"rows per node after a clean stop {' + '.join(f'{n:,}' for n in logged or [])}; "
                  f"exit codes {x.get('exits')}; /readyz backlog_hits before stop {x.get('readyz')}")
