"""What every seized process does at start: die with its parent, log in one format."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import multiprocessing
import os
import signal
from datetime import datetime, timezone

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


# `text` or `json` (the log_format setting). `seized serve` puts it in the environment, which every
# process it spawns inherits: each sets up its own logging at start, before it has its settings' use.
LOG_FORMAT_VARIABLE = "SEIZED_LOG_FORMAT"


def json_logs() -> bool:
    return os.environ.get(LOG_FORMAT_VARIABLE, "text").strip().lower() == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, microseconds), level, process, logger, message, and the
    exception's traceback where there is one (newlines escaped, so a traceback is one line too)."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 "level": record.levelname, "process": self.process, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _uvicorn_as_uvicorn(record: logging.LogRecord) -> bool:
    """uvicorn logs its start and stop under `uvicorn.error`, which reads as an error in any log
    viewer: shown as `uvicorn`."""
    if record.name == "uvicorn.error":
        record.name = "uvicorn"
    return True


def setup_logging(name: str = "main") -> None:
    """Every record once, on stderr, in the chosen format: one handler on the root logger, and
    uvicorn's loggers left without handlers of their own (else each of its lines would be written
    once per handler on its way up)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(name) if json_logs() else
                         logging.Formatter(f"%(asctime)s %(levelname)s [{name}] %(name)s: %(message)s"))
    handler.addFilter(_uvicorn_as_uvicorn)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for logger in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(logger).handlers.clear()
        logging.getLogger(logger).propagate = True
    logging.captureWarnings(True)  # Python's warnings as log records, in the same format


def run_async(main):
    """Run a coroutine on uvloop where it is installed (it is a dependency): markedly faster."""
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)
