"""The picture carries the visitor's IP (issue 14), checked with Debian's own tools as a player
would meet it: ffmpeg fetches from the real server and decodes; the subtitle text is what ffmpeg
extracts, the picture's text what tesseract reads from a decoded frame. Two visitors behind the
trusted proxy (X-Forwarded-For) each see their own IP and never the other's, cache hits included."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import m3u8
import pytest

from helpers import request

VISITORS = {"203.0.113.7": 40001, "198.51.100.23": 40002}


def proxy_headers(ip: str) -> list[tuple[str, str]]:
    return [("X-Forwarded-For", ip), ("X-Real-Port", str(VISITORS[ip]))]


def ffmpeg(server, ip: str, path: str, *output: str) -> None:
    """ffmpeg reads `path` from the server as visitor `ip` (its headers go on every request it
    makes, the playlist's links included) and writes `output`."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in proxy_headers(ip))
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-headers", headers,
                    "-i", f"http://127.0.0.1:{server.public_port}{path}", *output], check=True, timeout=120)


def other(ip: str) -> str:
    return next(address for address in VISITORS if address != ip)


def test_hls_master_forces_a_subtitle_track_with_the_visitors_ip_and_port(proxied_server, tmp_path):
    for ip in ("203.0.113.7", "198.51.100.23", "203.0.113.7"):
        response = request(proxied_server.public_port, target="/live/tv/pass/1.m3u8", host=f"127.0.0.1:{proxied_server.public_port}",
                           headers=proxy_headers(ip))
        assert response.status == 200 and response.header("content-type") == "application/vnd.apple.mpegurl"
        master = m3u8.loads(response.text)
        assert master.is_variant
        [track] = [media for media in master.media if media.type == "SUBTITLES"]
        assert (track.default, track.forced, track.autoselect) == ("YES", "YES", "YES")
        assert master.playlists[0].stream_info.subtitles == track.group_id
        # Debian 12's ffmpeg (5.1) does not follow a master playlist's subtitle rendition, so it is
        # given the rendition's own playlist, as a player would fetch it after reading the master.
        path = track.uri.split(str(proxied_server.public_port), 1)[1]
        ffmpeg(proxied_server, ip, path, "-map", "0:s:0", "-f", "webvtt", str(tmp_path / "cues.vtt"))
        cues = (tmp_path / "cues.vtt").read_text()
        assert f"Your IP address: {ip}" in cues and f"Source port: {VISITORS[ip]}" in cues
        assert other(ip) not in cues
    # The video of the same master plays: ffmpeg decodes a frame through it.
    ffmpeg(proxied_server, "203.0.113.7", "/live/tv/pass/1.m3u8", "-map", "0:v:0", "-frames:v", "1", str(tmp_path / "hls.png"))
    assert (tmp_path / "hls.png").stat().st_size > 1000


def test_subtitle_cues_are_written_per_request_and_never_stored(proxied_server):
    first = request(proxied_server.public_port, target="/_seized/video/en/visit.vtt", headers=proxy_headers("203.0.113.7"))
    second = request(proxied_server.public_port, target="/_seized/video/en/visit.vtt", headers=proxy_headers("198.51.100.23"))
    assert first.header("content-type").startswith("text/vtt") and first.header("cache-control") == "no-store"
    assert "203.0.113.7" in first.text and "198.51.100.23" not in first.text
    assert "198.51.100.23" in second.text and "203.0.113.7" not in second.text


def test_own_links_keep_their_query_but_never_a_password(proxied_server):
    response = request(proxied_server.public_port, target="/_seized/video/en.m3u8?account=bob&password=hunter2",
                       host=f"127.0.0.1:{proxied_server.public_port}")
    master = m3u8.loads(response.text)
    links = [master.media[0].uri, master.playlists[0].uri]
    assert all(link.endswith("?account=bob") for link in links), links
    assert "hunter2" not in response.text
    media = request(proxied_server.public_port, target="/_seized/video/en/notice.m3u8?account=bob")
    assert all(segment.uri.endswith(".ts?account=bob") for segment in m3u8.loads(media.text).segments)


@pytest.mark.parametrize("path", ["/live/tv/pass/1.ts", "/movie/tv/pass/2.mp4"])
def test_each_visitor_sees_their_own_ip_in_the_picture(proxied_server, tmp_path, path):
    """A, B, then A and B again (answered from the per-IP cache): every frame shows its own
    visitor's IP, read back by OCR, and never the other's."""
    for number, ip in enumerate(["203.0.113.7", "198.51.100.23", "203.0.113.7", "198.51.100.23"]):
        frame = tmp_path / f"frame{number}.png"
        ffmpeg(proxied_server, ip, path, "-frames:v", "1", str(frame))
        text = subprocess.run(["tesseract", str(frame), "stdout"], capture_output=True, text=True, check=True,
                              timeout=120).stdout
        assert ip in text, text
        assert other(ip) not in text


def test_cached_answers_are_the_visitors_own(proxied_server):
    """The bytes a visitor gets again are the ones rendered for them, never another visitor's."""
    bodies = {ip: request(proxied_server.public_port, target="/live/tv/pass/1.ts", headers=proxy_headers(ip)).body
              for ip in VISITORS}
    assert bodies["203.0.113.7"] != bodies["198.51.100.23"]
    for ip in ["198.51.100.23", "203.0.113.7"]:
        again = request(proxied_server.public_port, target="/live/tv/pass/1.ts", headers=proxy_headers(ip))
        assert again.status == 200 and again.body == bodies[ip]


def test_a_crowd_of_new_visitors_each_gets_their_own_ip_or_the_shared_video(proxied_server, tmp_path):
    """Eight new IPs at once, more than the renders allowed at a time: whoever finds no free render
    gets the shared notice video (as rendered on disk), everyone else their own IP, never another's."""
    crowd = [f"192.0.2.{n}" for n in range(10, 18)]

    def fetch(ip: str) -> bytes:
        headers = [("X-Forwarded-For", ip), ("X-Real-Port", "40003")]
        return request(proxied_server.public_port, target="/live/crowd/pass/1.ts", headers=headers).body

    with ThreadPoolExecutor(len(crowd)) as pool:
        bodies = dict(zip(crowd, pool.map(fetch, crowd)))
    shared = {path.read_bytes() for path in (proxied_server.directory / "video").glob("*/notice.ts")}
    own = {ip: body for ip, body in bodies.items() if body not in shared}
    assert own, "no visitor of the crowd got a rendering of their own"
    for ip, body in own.items():
        video = tmp_path / f"{ip}.ts"
        video.write_bytes(body)
        frame = tmp_path / f"{ip}.png"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-frames:v", "1", str(frame)],
                       check=True, timeout=120)
        text = subprocess.run(["tesseract", str(frame), "stdout"], capture_output=True, text=True, check=True,
                              timeout=120).stdout
        assert ip in text and not any(other_ip in text for other_ip in crowd if other_ip != ip), text
