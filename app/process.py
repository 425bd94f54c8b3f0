"""What every seized process does at start: die with its parent, log in one format."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import multiprocessing
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM this process when the supervisor dies (even by SIGKILL): no orphan keeps the port
    or a journal segment. Linux only; elsewhere children notice on their own when they next poll."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def quiet_gc() -> None:
    """Fewer cyclic-GC passes: workers and ingest allocate a few tuples per hit, almost never a
    cycle, and their large caches made every full collection walk them (7% of ingest's time)."""
    gc.freeze()  # what start-up made is never collected
    gc.set_threshold(50_000, 50, 100)


def setup_logging(name: str = "main") -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s [{name}] %(name)s: %(message)s",
                        force=True)


def run_async(main):
    """Run a coroutine on uvloop where it is installed (it is a dependency): markedly faster."""
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)
