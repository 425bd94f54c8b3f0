"""The visitor's own IP in the picture and on screen (issue 14).

Two ways, one for each kind of player:
- HLS players (`.m3u8`) get a master playlist whose default, forced WebVTT subtitle track names
  their IP, source port and the time of the visit. The cue file is written per request (a few
  hundred bytes of text) and never cached: it is built from the request that fetches it.
- Players of a plain stream (`.ts`, and VOD `.mp4`) get the notice frame with their IP drawn into
  it. That needs an H.264 encode (~0.15 s of one core, bench/tv_visit.py), so it is done once per
  (IP, notice text, container) in a thread pool and kept in a byte-bounded LRU cache. The key
  always holds the IP: no visitor is ever answered from another visitor's entry. When more than
  `renders` distinct renders are already running (a flood of distinct IPs), the request gets the
  shared notice video at once instead of queueing without bound. A rendering is deterministic
  (one encoder thread), so byte ranges of an MP4 stay consistent even across an eviction.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import av

from .video import FPS, HEIGHT, SEGMENT_SECONDS, SEGMENTS, WIDTH, draw

log = logging.getLogger("seized.video")

VTT_TYPE = b"text/vtt; charset=utf-8"
TOTAL_SECONDS = SEGMENT_SECONDS * SEGMENTS
GOP_SECONDS = 2  # encoded once, then repeated: a still picture needs no more than one group of pictures


def encode_visit(image, container: str, seconds: int = TOTAL_SECONDS) -> bytes:
    """`seconds` of the still `image` as H.264 in `container` ("mpegts" or "mp4"), as bytes.
    One group of pictures (an IDR frame and its P-frames) is encoded and muxed again and again with
    shifted timestamps: each repeat starts at an IDR frame, so it decodes on its own, and the
    encode costs a sixth of the whole."""
    frames_per_gop = FPS * GOP_SECONDS
    handle, name = tempfile.mkstemp(prefix="seized-visit-", suffix=f".{container}")  # mp4's faststart rewrites a named file
    os.close(handle)
    try:
        options = {"movflags": "faststart"} if container == "mp4" else {}
        with av.open(name, "w", format=container, options=options) as output:
            stream = output.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            # One encoder thread: renders run side by side in a small pool and must not take every core.
            stream.options = {"preset": "veryfast", "tune": "stillimage", "g": str(frames_per_gop), "bf": "0",
                              "threads": "1"}
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            group = []
            for index in range(frames_per_gop):
                frame.pts = index
                group += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in stream.encode(frame)]
            group += [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in stream.encode(None)]
            for repeat in range(max(1, seconds // GOP_SECONDS)):
                shift = repeat * frames_per_gop
                for data, pts, dts, keyframe, time_base in group:
                    packet = av.Packet(data)
                    packet.pts, packet.dts, packet.time_base, packet.stream = pts + shift, dts + shift, time_base, stream
                    packet.is_keyframe = keyframe
                    output.mux(packet)
        with open(name, "rb") as file:
            return file.read()
    finally:
        os.unlink(name)


def render_visit(lines: tuple[str, ...], label: str, ip: str, container: str) -> bytes:
    """The notice frame with the visitor's IP in a high-contrast band, encoded (blocking)."""
    return encode_visit(draw(list(lines), highlight=(label, ip)), container)


def webvtt(lines: list[str], seconds: int = TOTAL_SECONDS) -> bytes:
    """One WebVTT cue over the whole video. X-TIMESTAMP-MAP ties cue time 0 to the MPEG-TS clock's 0
    (RFC 8216 3.5), so the cue covers every segment whatever offset the muxer gave the video."""
    text = "\n".join(line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                     for line in lines if line.strip())  # cue text is markup; "-->" cannot survive escaping
    end = seconds + 10
    return (f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"
            f"00:00:00.000 --> 00:{end // 60:02d}:{end % 60:02d}.000 line:85%\n{text}\n").encode("utf-8")


def master_playlist(lang: str, title: str, media_url: str, subtitles_url: str) -> bytes:
    """An HLS master playlist: the notice video with a default, forced WebVTT track (RFC 8216 4.3.4.1)."""
    name = title.replace('"', "'")
    return ("#EXTM3U\n#EXT-X-VERSION:3\n"
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="visit",NAME="{name}",LANGUAGE="{lang}",'
            f'DEFAULT=YES,AUTOSELECT=YES,FORCED=YES,URI="{subtitles_url}"\n'
            f'#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION={WIDTH}x{HEIGHT},CODECS="avc1.64001f",SUBTITLES="visit"\n'
            f"{media_url}\n").encode("utf-8")


def subtitles_playlist(cue_url: str, seconds: int = TOTAL_SECONDS) -> bytes:
    """The subtitle rendition's media playlist: one WebVTT file spanning the whole notice video."""
    return ("#EXTM3U\n#EXT-X-VERSION:3\n"
            f"#EXT-X-TARGETDURATION:{seconds}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            f"#EXTINF:{seconds:.3f},\n{cue_url}\n#EXT-X-ENDLIST\n").encode("utf-8")


class VisitVideos:
    """Per-IP renderings of the notice video, bounded in bytes and in renders running at once.

    Memory: at most `cache_bytes` of finished videos (one 12 s MPEG-TS is ~180 kB, an MP4 ~95 kB),
    plus the renders in flight. Used from one event loop only (the listener's)."""

    def __init__(self, cache_bytes: int, renders: int):
        self.cache_bytes = cache_bytes
        self.renders = renders
        self._cache: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
        self._size = 0
        self._running: dict[tuple, asyncio.Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, renders), thread_name_prefix="seized-visit-video") \
            if renders > 0 else None
        self.hits = self.misses = self.refused = 0  # counters for bench/tv_visit.py and the logs

    @property
    def enabled(self) -> bool:
        return self.renders > 0 and self.cache_bytes > 0

    @staticmethod
    def key(ip: str, lines: tuple[str, ...], container: str) -> tuple:
        return ip, container, lines  # the IP first and always: an entry is one visitor's

    def cached(self, ip: str, lines: tuple[str, ...], container: str) -> bytes | None:
        key = self.key(ip, lines, container)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            self.hits += 1
        return data

    async def file(self, ip: str, lines: tuple[str, ...], label: str, container: str) -> bytes | None:
        """The visitor's video, rendered now if needed; None when too many renders are running
        already (the caller answers with the shared video)."""
        data = self.cached(ip, lines, container)
        if data is not None:
            return data
        key = self.key(ip, lines, container)
        running = self._running.get(key)
        if running is None:
            if not self.enabled or len(self._running) >= self.renders:
                self.refused += 1
                return None
            self.misses += 1
            loop = asyncio.get_running_loop()
            running = self._running[key] = loop.run_in_executor(self._pool, render_visit, lines, label, ip, container)
            running.add_done_callback(lambda future: self._finished(key, future))
        # shield: a visitor who leaves does not cancel a render that another request may be waiting on
        return await asyncio.shield(running)

    def _finished(self, key: tuple, future: asyncio.Future) -> None:
        self._running.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return
        data = future.result()
        if len(data) > self.cache_bytes:
            return
        self._cache[key] = data
        self._size += len(data)
        while self._size > self.cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._size -= len(evicted)
