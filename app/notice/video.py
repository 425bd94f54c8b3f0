"""The notice as a short video, for every stream URL a player opens: H.264 in MPEG-TS (live and
bare ids), the same cut into HLS segments, and MP4 (VOD, seekable by range requests). Drawn with
Pillow and encoded with PyAV's bundled libx264, once per notice and language; the files are
cached on disk under a name derived from their content, so a changed notice renders anew."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
import functools
import hashlib
import os
import re
import textwrap
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from ..domains import Notice

WIDTH, HEIGHT, FPS = 1280, 720, 25
SEGMENT_SECONDS, SEGMENTS = 4, 3
FILES = ("notice.ts", "notice.mp4", *(f"seg{i}.ts" for i in range(SEGMENTS)))
TS_TYPE = b"video/mp2t"
MP4_TYPE = b"video/mp4"
HLS_TYPE = b"application/vnd.apple.mpegurl"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def draw(lines: list[str], highlight: tuple[str, str] | None = None) -> Image.Image:
    """The notice frame: the first line large, the others below it; `highlight` (label, value),
    e.g. the visitor's IP, in large black type on a white band below them (legible on a TV, and
    read back by OCR in the tests)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (120, 0, 0))
    canvas = ImageDraw.Draw(image)
    canvas.rectangle((24, 24, WIDTH - 24, HEIGHT - 24), outline=(255, 255, 255), width=4)
    y = 70
    for number, line in enumerate(lines):
        size = 58 if number == 0 else 30
        font = ImageFont.load_default(size=size)
        for part in textwrap.wrap(line, width=36 if number == 0 else 70) or [""]:
            left, top, right, bottom = canvas.textbbox((0, 0), part, font=font)
            canvas.text(((WIDTH - (right - left)) / 2, y), part, font=font, fill=(255, 255, 255))
            y += (bottom - top) + (22 if number == 0 else 14)
        y += 24 if number == 0 else 8
    if highlight is not None:
        label, value = highlight
        font = ImageFont.load_default(size=30)
        left, top, right, bottom = canvas.textbbox((0, 0), label, font=font)
        canvas.text(((WIDTH - (right - left)) / 2, y), label, font=font, fill=(255, 255, 255))
        y += (bottom - top) + 16
        font = ImageFont.load_default(size=72)
        left, top, right, bottom = canvas.textbbox((0, 0), value, font=font)
        band_top = min(y, HEIGHT - 40 - (bottom - top) - 48)
        canvas.rectangle((80, band_top, WIDTH - 80, band_top + (bottom - top) + 48), fill=(255, 255, 255))
        canvas.text(((WIDTH - (right - left)) / 2, band_top + 24 - top), value, font=font, fill=(0, 0, 0))
    return image


def encode(image: Image.Image, path: Path, container: str, seconds: int, first_frame: int = 0) -> None:
    """`seconds` of the still image as H.264; `first_frame` continues timestamps across HLS segments."""
    options = {"movflags": "faststart"} if container == "mp4" else {}
    temporary = path.with_name(f"{path.name}.{os.getpid()}.part")  # workers may render the same file at once
    with av.open(str(temporary), "w", format=container, options=options) as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # No B-frames: decode order is display order, so no segment's timestamps are shifted to keep
        # its first DTS at 0, and each HLS segment picks up exactly where the one before it ended.
        stream.options = {"preset": "veryfast", "tune": "stillimage", "g": str(FPS * 2), "bf": "0"}
        frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
        for index in range(first_frame, first_frame + seconds * FPS):
            frame.pts = index  # in 1/FPS, the stream's rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    temporary.replace(path)


def render(lines: list[str], directory: Path) -> None:
    """Every file of one notice into `directory` (blocking: call from a worker thread)."""
    directory.mkdir(parents=True, exist_ok=True)
    image = draw(lines)
    total = SEGMENT_SECONDS * SEGMENTS
    encode(image, directory / "notice.ts", "mpegts", total)
    encode(image, directory / "notice.mp4", "mp4", total)
    for i in range(SEGMENTS):
        encode(image, directory / f"seg{i}.ts", "mpegts", SEGMENT_SECONDS, first_frame=i * SEGMENT_SECONDS * FPS)


def hls_playlist(segment_url) -> bytes:
    """An HLS media playlist (RFC 8216) of the notice segments; `segment_url(i)` names each."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i in range(SEGMENTS):
        lines += [f"#EXTINF:{SEGMENT_SECONDS:.3f},", segment_url(i)]
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode("utf-8")


def byte_range(header: str | None, total: int) -> tuple[int, int] | None | str:
    """A single `Range: bytes=a-b` -> (first, last); None without one; "invalid" if unsatisfiable."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return "invalid"
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            return "invalid"
        return max(0, total - length), total - 1
    first_i = int(first)
    last_i = min(int(last), total - 1) if last else total - 1
    if first_i >= total or first_i > last_i:
        return "invalid"
    return first_i, last_i


def ranged(body: bytes, content_type: bytes, range_header: str | None, extra_headers) -> tuple[int, list, bytes]:
    """A 200, 206 or 416 answer for `body`, following RFC 9110 range requests."""
    headers = [(b"content-type", content_type), (b"accept-ranges", b"bytes"), *extra_headers]
    if not any(name == b"x-content-type-options" for name, _ in headers):
        headers.append((b"x-content-type-options", b"nosniff"))
    wanted = byte_range(range_header, len(body))
    if wanted is None:
        return 200, headers, body
    if wanted == "invalid":
        return 416, [*headers, (b"content-range", f"bytes */{len(body)}".encode())], b""
    first, last = wanted
    return 206, [*headers, (b"content-range", f"bytes {first}-{last}/{len(body)}".encode())], body[first:last + 1]


@functools.lru_cache(maxsize=1024)  # asked for every stream request
def _key(lines: tuple[str, ...]) -> str:
    material = "\n".join([f"{WIDTH}x{HEIGHT}@{FPS}/{SEGMENT_SECONDS}x{SEGMENTS}", *lines])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:20]


class NoticeVideos:
    """Rendered videos, on disk and in memory, one set per distinct notice text."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._memory: dict[tuple[str, str], bytes] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key(lines) -> str:
        return _key(tuple(lines))

    def rendered(self, lines: list[str]) -> bool:
        folder = self.directory / self.key(lines)
        return all((folder / name).exists() for name in FILES)

    def render_now(self, lines: list[str]) -> Path:
        """Blocking: render if not on disk yet (for `seized notice render`)."""
        folder = self.directory / self.key(lines)
        if not self.rendered(lines):
            render(lines, folder)
        return folder

    def cached(self, lines: list[str], name: str) -> bytes | None:
        """The file if it is in memory already (no waiting), else None."""
        return self._memory.get((self.key(lines), name))

    async def file(self, lines: list[str], name: str) -> bytes:
        """One file of the notice's video, rendered in a worker thread the first time it is asked for."""
        key = self.key(lines)
        cached = self._memory.get((key, name))
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not self.rendered(lines):
                await asyncio.to_thread(render, lines, self.directory / key)
        data = await asyncio.to_thread((self.directory / key / name).read_bytes)
        self._memory[(key, name)] = data
        return data


def video_lines(texts: dict[str, str], notice: Notice) -> tuple[str, ...]:
    """What the notice video shows (no per-visit values: it is rendered once)."""
    lines = [texts["iptv_title"], f"{texts['agency']}: {notice.agency}"]
    if notice.case_ref:
        lines.append(f"{texts['case_ref']}: {notice.case_ref}")
    if notice.legal_basis:
        lines.append(f"{texts['legal_basis']}: {notice.legal_basis}")
    return (*lines, texts["recorded"])
