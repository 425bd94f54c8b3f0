"""The notice's own files (stylesheet, seal), read into memory once and served under one prefix."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

PREFIX = b"/_seized/"
# Folders of the management listener's own pages (the dashboard, /docs): not the visitors' business,
# and not worth a copy in every worker's memory.
MANAGEMENT_ONLY = {"dashboard", "docs"}


@dataclass(frozen=True, slots=True)
class Asset:
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Assets:
    def __init__(self, directory: Path, common_headers: list[tuple[bytes, bytes]]):
        self._files: dict[bytes, Asset] = {}
        for path in sorted(Path(directory).rglob("*")):
            if path.is_file() and path.relative_to(directory).parts[0] not in MANAGEMENT_ONLY:
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                if content_type.startswith("text/") or content_type == "image/svg+xml":
                    content_type += "; charset=utf-8"
                url = PREFIX + path.relative_to(directory).as_posix().encode()
                self._files[url] = Asset([(b"content-type", content_type.encode()), *common_headers], path.read_bytes())

    def get(self, raw_path: bytes) -> Asset | None:
        """The asset at this exact path; anything else under the prefix gets the notice."""
        return self._files.get(raw_path) if raw_path.startswith(PREFIX) else None
