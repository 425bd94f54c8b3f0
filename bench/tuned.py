"""Helpers shared by bench/fsync.py and bench/sustained.py, on top of bench/pipeline.py.

`Tuned` is pipeline.Seized with top-level settings added to (or replacing) those in the config file
it writes: pipeline.Seized has no parameter for them, and a TOML key may appear only once.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Seized, toml  # noqa: E402


class Tuned(Seized):
    """pipeline.Seized with extra top-level settings, e.g. {"fsync_interval_ms": 0}."""

    def __init__(self, directory: Path, options: set[str], workers: int | None = None, settings: dict | None = None):
        super().__init__(directory, options, workers)
        self.settings = dict(settings or {})
        if self.settings:
            lines = self.config.read_text().splitlines()
            top = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
            keep = [line for line in lines[:top] if line.split("=", 1)[0].strip() not in self.settings]
            added = [f"{key} = {toml(value)}" for key, value in self.settings.items()]
            self.config.write_text("\n".join(keep + added + lines[top:]) + "\n")


def uptime() -> str:
    """`uptime` as printed, for the load on the machine before and after a run."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "uptime: n/a (load %.2f %.2f %.2f)" % os.getloadavg()


def fdatasync_ms(directory: Path, count: int = 200, size: int = 200) -> dict:
    """Append `size` bytes and fdatasync, `count` times, in `directory` (the journal's file system):
    what one fdatasync costs here. A disk (or VM) that acknowledges flushes from a volatile cache
    shows a fraction of a millisecond; then fsync_interval_ms = 0 costs little here and guarantees
    little more than the interval does."""
    path = Path(directory) / "fdatasync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        payload = b"x" * size
        for _ in range(count):
            os.write(fd, payload)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    times.sort()
    return {"count": count, "p50_ms": round(times[len(times) // 2], 3), "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
            "max_ms": round(times[-1], 3)}


def drained(ready: dict | None) -> bool:
    """/readyz says every hit received is in the database: no journal bytes pending, and the
    ingested count has reached the received count."""
    if not ready:
        return False
    journal, ingest = ready.get("journal") or {}, ready.get("ingest") or {}
    return ingest.get("backlog_bytes") == 0 and ingest.get("ingested", -1) >= journal.get("received", 0)


def wait_drained(server: Seized, timeout: float) -> tuple[bool, float, dict | None]:
    """Poll /readyz until drained(), at most `timeout` s: (drained, seconds waited, last /readyz)."""
    started = time.monotonic()
    ready = None
    while True:
        ready = server.readyz() or ready
        if drained(ready):
            return True, time.monotonic() - started, ready
        if time.monotonic() - started >= timeout:
            return False, time.monotonic() - started, ready
        time.sleep(0.2)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of one process so far (Linux /proc), None if it is gone."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def group_pids(pgid: int) -> list[int]:
    """The processes of one process group (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return sorted(pids)


def process_names(server: Seized, timeout: float = 10) -> dict[int, str]:
    """pid -> role for every process of a started seized (roles from /readyz, 'other' for the rest,
    e.g. multiprocessing's resource tracker)."""
    deadline = time.monotonic() + timeout
    ready = server.readyz() or {}
    while not (ready.get("ingest") or {}).get("pid") and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = server.readyz() or {}
    names = {pid: "other" for pid in group_pids(server.process.pid)}
    names[server.process.pid] = "supervisor"
    if (ready.get("ingest") or {}).get("pid"):
        names[ready["ingest"]["pid"]] = "ingest"
    for worker in ready.get("workers") or []:
        if worker.get("pid"):
            names[worker["pid"]] = worker["name"]
    return names


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, summed over its cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


class CpuMeter:
    """CPU used between start() and stop(): by the machine, by one seized's process group, and by
    this process's children that ended meanwhile (wrk). 'others' = the machine minus both."""

    def __init__(self, server: Seized):
        self.server = server
        self.totals = {"machine": 0.0, "seized": 0.0, "wrk": 0.0, "wall": 0.0}

    def _read(self) -> tuple:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        seized = sum(c for c in (cpu_seconds(pid) for pid in group_pids(self.server.process.pid)) if c is not None)
        return machine_cpu()[0], seized, children.ru_utime + children.ru_stime, time.monotonic()

    def start(self) -> None:
        self.begin = self._read()

    def stop(self) -> None:
        end = self._read()
        for key, a, b in zip(("machine", "seized", "wrk", "wall"), self.begin, end):
            self.totals[key] += b - a

    def cores(self) -> dict:
        wall = self.totals["wall"]
        if not wall:
            return {}
        out = {k: round(self.totals[k] / wall, 2) for k in ("machine", "seized", "wrk")}
        out["others"] = round(max(0.0, out["machine"] - out["seized"] - out["wrk"]), 2)
        return out
