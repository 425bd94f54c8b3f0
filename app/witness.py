"""Checkpoints published outside the database as they are made, so that whoever can rewrite the
database cannot also rewrite what was said about it: one JSON line per checkpoint appended to the
witness file (ship it off the machine with any log shipper), and POSTed to each witness URL.
`seized verify --witness FILE` checks a database against a copy of that file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("seized.witness")
FIELDS = ("node", "count", "last_id", "head", "at", "public_key", "signature", "clock", "tsa_token")
OPTIONAL = ("clock", "tsa_token")  # lines written before these fields existed lack them


def line_of(checkpoint: dict) -> bytes:
    return json.dumps({k: checkpoint[k] for k in FIELDS}, sort_keys=True, separators=(",", ":")).encode() + b"\n"


class Witness:
    """Appends each checkpoint to the file (fsynced: it must outlive the process like the journal)
    and sends it to the URLs in the background; a URL that fails is logged, never waited for."""

    def __init__(self, path: Path | None, urls: list[str] = (), timeout_s: float = 5.0):
        self.path, self.urls, self.timeout_s = path, list(urls), timeout_s
        self.sending: set[asyncio.Task] = set()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    async def publish(self, checkpoint: dict) -> None:
        line = line_of(checkpoint)
        if self.path is not None:
            try:
                await asyncio.to_thread(self._append, line)
            except OSError as error:  # loud, but the log goes on: the checkpoint is in the database
                log.error("could not append a checkpoint to the witness file %s: %s", self.path, error)
        for url in self.urls:
            task = asyncio.create_task(self._post(url, line))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    def _append(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def _post(self, url: str, line: bytes) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(url, content=line, headers={"Content-Type": "application/json"})
                response.raise_for_status()
        except Exception as error:
            log.warning("witness %s did not take a checkpoint: %s", url, error)

    async def close(self) -> None:
        """Wait (bounded) for checkpoints still being sent."""
        if self.sending:
            await asyncio.wait(self.sending, timeout=self.timeout_s)


def read(path: Path) -> list[dict]:
    """A witness file's checkpoints; a line that is not one is an error (the file is evidence too)."""
    checkpoints = []
    for number, text in enumerate(Path(path).read_text("utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
            checkpoints.append({k: entry.get(k) if k in OPTIONAL else entry[k] for k in FIELDS})
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a witness line ({error})") from None
    return checkpoints
