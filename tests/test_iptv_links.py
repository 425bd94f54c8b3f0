"""Issue 14, links keep the subscriber: every URL the IPTV answers hand out (stream, HLS, logo,
guide) carries the account and never the password, so the player's later requests are stored with
that account too; hostile usernames still give well-formed answers. Answers are read with real
parsers (m3u-ipytv, m3u8, ElementTree, json, pyxtream) and the links are then requested as a player
would, FFmpeg's own HLS client among them."""

import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlsplit

import av
import m3u8
import pytest
from hypothesis import given, settings, strategies as st
from ipytv import playlist as ipytv_playlist
from pyxtream import XTream

from app.clients import ACCOUNT_MAX, account_query, classify
from helpers import request

HOST = "seized-iptv.example"
PASSWORD = "link-s3cret"
MAC = "00:1A:79:12:34:56"
MAG = [("Cookie", "mac=00:1a:79:12:34:56; stb_lang=en"), ("X-User-Agent", "Model: MAG254; Link: Ethernet")]


def get(server, target, host=HOST, headers=()):
    response = request(server.public_port, "GET", target, host=host, headers=list(headers))
    assert response.status == 200, (target, response.status)
    return response, server.row_for_port(response.local_port)


def follow(server, url, headers=()):
    """Request a link exactly as handed out: its own host, path and query."""
    parts = urlsplit(url)
    return get(server, parts.path + (f"?{parts.query}" if parts.query else ""), host=parts.netloc, headers=headers)


def account_of(url: str) -> str:
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("account")
    assert values is not None and len(values) == 1, f"no single account in {url!r}"
    return values[0]


def assert_carries(url: str, account: str):
    assert account_of(url) == account[:ACCOUNT_MAX], url
    assert PASSWORD not in url and "password" not in url.lower(), url


def handed_out(server, username: str) -> dict[str, str]:
    """Every URL of every answer for this username, by where it came from (each answer parsed by a real parser)."""
    q = f"username={quote(username)}&password={PASSWORD}"
    urls = {}
    m3u = ipytv_playlist.loads(get(server, f"/get.php?{q}&type=m3u_plus&output=ts")[0].text)
    urls["m3u x-tvg-url"] = m3u.get_attributes()["x-tvg-url"]
    urls["m3u stream"], urls["m3u tvg-logo"] = m3u[0].url, m3u[0].attributes["tvg-logo"]
    urls["m3u hls stream"] = ipytv_playlist.loads(get(server, f"/get.php?{q}&type=m3u&output=m3u8")[0].text)[0].url

    def player_api(action):
        return json.loads(get(server, f"/player_api.php?{q}&action={action}")[0].body)
    urls["live stream_icon"] = player_api("get_live_streams")[0]["stream_icon"]
    urls["vod stream_icon"] = player_api("get_vod_streams")[0]["stream_icon"]
    urls["series cover"] = player_api("get_series")[0]["cover"]
    series = player_api("get_series_info&series_id=3")
    urls["series info cover"], urls["season cover"] = series["info"]["cover"], series["seasons"][0]["cover_big"]
    urls["episode movie_image"] = series["episodes"]["1"][0]["info"]["movie_image"]
    urls["vod info movie_image"] = player_api("get_vod_info&vod_id=2")["info"]["movie_image"]
    panel = json.loads(get(server, f"/panel_api.php?{q}")[0].body)
    urls["panel stream_icon"] = panel["available_channels"]["1"]["stream_icon"]
    for answer in (*player_api("get_live_streams"), *player_api("get_vod_streams"), panel["available_channels"]["1"]):
        assert answer["direct_source"] == ""  # no direct source: a client builds /live/U/P/ID itself (tested below)

    categories = ET.fromstring(get(server, f"/enigma2.php?{q}&type=get_live_categories")[0].body)
    urls["enigma2 playlist_url"] = categories.find("channel").findtext("playlist_url")
    streams = ET.fromstring(get(server, f"/enigma2.php?{q}&type=get_live_streams&cat_id=1")[0].body)
    urls["enigma2 stream_url"] = streams.find("channel").findtext("stream_url")
    urls["enigma2 desc_image"] = streams.find("channel").findtext("desc_image")
    bouquet = get(server, f"/get.php?{q}&type=enigma22_script&output=ts")[0].text.splitlines()
    service = bouquet[1].removeprefix("#SERVICE ").split(":")
    # Enigma2 reads field 10 and decodes every %XX in it (eServiceReference): the link as it plays it.
    urls["bouquet service"] = unquote_to_bytes(service[10]).decode("utf-8")
    guide = ET.fromstring(get(server, f"/xmltv.php?{q}")[0].body)
    urls["xmltv icon"] = guide.find("channel/icon").get("src")
    return urls


# -- every link carries the account, and its request is stored with it ------------------------

def test_every_url_handed_out_carries_the_account_and_its_request_is_attributed(iptv_server):
    urls = handed_out(iptv_server, "linkuser")
    for where, url in urls.items():
        assert url.startswith(f"http://{HOST}/"), where
        assert_carries(url, "linkuser")
    # Requested like a player: each one a hit of that account, none with a password trace.
    answers = {}
    for where, url in urls.items():
        answers[where], row = follow(iptv_server, url)
        assert row["account"] == "linkuser", (where, row["path"], row["query"])
        assert row["password_hmac"] is None and PASSWORD not in json.dumps(row), where
    logo = answers["m3u tvg-logo"]
    assert logo.header("content-type") == "image/png" and logo.body.startswith(b"\x89PNG")  # the asset, query or not
    assert {answers[where].header("content-type") for where in ("m3u stream", "enigma2 stream_url", "bouquet service")} \
        == {"video/mp2t"}
    assert answers["m3u hls stream"].header("content-type") == "application/vnd.apple.mpegurl"


def test_hls_segments_carry_the_account(iptv_server):
    """The HLS master playlist links a media playlist and a subtitle track, and the media playlist
    segments, all carrying the account, whether it was opened from our link or from a path a
    client built itself (/live/U/P/1.m3u8)."""
    for target, account in [(f"/_seized/video/en.m3u8{account_query('hlsuser')}", "hlsuser"),
                            (f"/live/hlsbuilt/{PASSWORD}/1.m3u8", "hlsbuilt")]:
        response, row = get(iptv_server, target)
        assert row["account"] == account
        master = m3u8.loads(response.text)
        assert master.is_variant and len(master.playlists) == 1 and len(master.media) == 1
        for uri in (master.playlists[0].uri, master.media[0].uri):
            assert_carries(uri, account)
            linked, linked_row = follow(iptv_server, uri)
            assert linked_row["account"] == account
        media, _ = follow(iptv_server, master.playlists[0].uri)
        segments = m3u8.loads(media.text).segments
        assert len(segments) >= 1
        for segment in segments:
            assert_carries(segment.uri, account)
        piece, piece_row = follow(iptv_server, segments[-1].uri)
        assert piece.header("content-type") == "video/mp2t" and piece.body[:1] == b"G"  # MPEG-TS sync byte
        assert (piece_row["client_kind"], piece_row["account"]) == ("stream", account)


def test_ffmpeg_playing_the_hls_link_is_attributed_on_every_request(iptv_server):
    """FFmpeg's own HLS client (PyAV's) opens the playlist link and fetches each segment, as a player does."""
    url = f"http://127.0.0.1:{iptv_server.public_port}/_seized/video/en.m3u8{account_query('ffmpeg user')}"
    with av.open(url, options={"user_agent": "links-test-ffmpeg"}) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
    rows = iptv_server.wait_rows("user_agent = ?", ("links-test-ffmpeg",), count=5)
    paths = sorted(row["path"] for row in rows)
    assert {"/_seized/video/en.m3u8", "/_seized/video/en/notice.m3u8"} <= set(paths), paths
    assert sum(p.startswith("/_seized/video/en/seg") for p in paths) >= 3, paths
    assert {row["account"] for row in rows} == {"ffmpeg user"}


def test_the_vlc_flow_from_the_issue_is_attributed_end_to_end(iptv_server):
    response, playlist_row = get(iptv_server, "/get.php?username=vlcuser&password=x")
    stream = ipytv_playlist.loads(response.text)[0].url
    assert urlsplit(stream).path == "/_seized/video/en.ts" and account_of(stream) == "vlcuser"
    video, stream_row = follow(iptv_server, stream)
    assert video.header("content-type") == "video/mp2t"
    assert (playlist_row["account"], stream_row["account"]) == ("vlcuser", "vlcuser")
    assert stream_row["client_kind"] == "stream" and stream_row["password_hmac"] is None


def test_urls_pyxtream_builds_itself_are_attributed(iptv_server, tmp_path):
    """pyxtream builds /live/U/P/ID.ts, /movie/U/P/ID.mp4 and /series/U/P/ID.mp4 itself, with the
    password from user_info, which we never echo (so P is empty): each stored with the username."""
    base = f"http://127.0.0.1:{iptv_server.public_port}"
    client = XTream("seized", "builder", PASSWORD, base, cache_path=str(tmp_path), reload_time_sec=-1)
    assert client.load_iptv()
    client.get_series_info_by_id(client.series[0])
    episode = next(e for season in client.series[0].seasons.values() for e in season.episodes.values())
    urls = [client.channels[0].url, client.movies[0].url, episode.url]
    assert [urlsplit(url).path.split("/")[1:3] for url in urls] == [[kind, "builder"] for kind in ("live", "movie", "series")]
    for url in urls:
        assert PASSWORD not in url
        _, row = follow(iptv_server, url)
        assert (row["client_kind"], row["account"]) == ("stream", "builder")
    for logo in (client.channels[0].logo, client.movies[0].logo, client.series[0].logo):  # the logos it keeps carry the account
        assert_carries(logo, "builder")


@pytest.mark.parametrize("template", ["/live/{u}/{p}/1.ts", "/live/{u}/{p}/1.m3u8", "/movie/{u}/{p}/2.mp4",
                                      "/series/{u}/{p}/3.mp4", "/timeshift/{u}/{p}/60/2026-11-23:06-00/1.ts",
                                      "/{u}/{p}/1"])
def test_urls_a_client_builds_from_the_typed_login_are_attributed(iptv_server, template):
    """Smarters-style apps build stream URLs from server_info and the username and password the
    user typed: the username is the account, the password is redacted and only its HMAC kept."""
    info = json.loads(get(iptv_server, f"/player_api.php?username=typed&password={PASSWORD}")[0].body)["server_info"]
    base = f"{info['server_protocol']}://{info['url']}:{info['port']}"
    _, row = follow(iptv_server, base + template.format(u="typed", p=PASSWORD))
    assert (row["client_kind"], row["account"]) == ("stream", "typed")
    assert row["password_hmac"] and PASSWORD not in json.dumps(row) and "[REDACTED]" in row["path"]


def test_stalker_links_carry_the_mac(iptv_server):
    def call(action):
        response, row = get(iptv_server, f"/portal.php?type=itv&action={action}&JsHttpRequest=1-xml", headers=MAG)
        assert row["account"] == MAC
        return json.loads(response.body)["js"]
    channel = call("get_all_channels")["data"][0]
    link = call("create_link&cmd=ffmpeg%20http://x/1")["cmd"]
    for url in (channel["cmd"].removeprefix("ffmpeg "), channel["logo"], link.removeprefix("ffmpeg ")):
        assert_carries(url, MAC)
    # The box plays the link without its cookie: the link alone names the box.
    _, row = follow(iptv_server, link.removeprefix("ffmpeg "))
    assert (row["client_kind"], row["account"]) == ("stream", MAC)


# -- hostile usernames: still well-formed answers, a sane stored account ---------------------

HOSTILE = ["crlf\r\n#EXTINF:-1,injected\r\nhttp://evil.example/x.ts", 'quo"te\'s, and <angle> & amp',
           "]]><x/><![CDATA[", "ünïcødé 名前 \u2028 \U0001F4FA", "+plus space%25", "L" * 2000]


@pytest.mark.parametrize("username", HOSTILE, ids=["crlf", "quotes", "cdata", "unicode", "plus-percent", "2000-chars"])
def test_hostile_usernames_keep_answers_valid_and_links_attributed(iptv_server, username):
    kept = username[:ACCOUNT_MAX]
    q = f"username={quote(username)}&password={PASSWORD}"
    response, row = get(iptv_server, f"/get.php?{q}&type=m3u_plus")
    assert row["account"] == kept
    lines = response.text.splitlines()
    assert sum(line.startswith("#EXTINF") for line in lines) == 1
    parsed = ipytv_playlist.loads(response.text)
    assert parsed.length() == 1
    for url in (parsed[0].url, parsed[0].attributes["tvg-logo"], parsed.get_attributes()["x-tvg-url"]):
        assert_carries(url, username)
        assert len(url) < 4096
    assert [line for line in lines if line and not line.startswith("#")] == [parsed[0].url]  # one link, nothing injected
    # XML and JSON answers stay well-formed and give the same link back.
    streams = ET.fromstring(get(iptv_server, f"/enigma2.php?{q}&type=get_live_streams")[0].body)
    assert_carries(streams.find("channel").findtext("stream_url"), username)
    assert_carries(ET.fromstring(get(iptv_server, f"/xmltv.php?{q}")[0].body).find("channel/icon").get("src"), username)
    live = json.loads(get(iptv_server, f"/player_api.php?{q}&action=get_live_streams")[0].body)
    assert_carries(live[0]["stream_icon"], username)
    # The player's request of the link is stored with the very account the playlist was.
    _, stream_row = follow(iptv_server, parsed[0].url)
    assert stream_row["account"] == kept


# -- the link's query, without a server ------------------------------------------------------

@settings(deadline=None, database=None, max_examples=300)
@given(st.text(min_size=1, max_size=400))
def test_an_account_reads_back_from_its_link(account):
    """Whatever the account, its link's query is one printable ASCII token, and classify() reads back
    the same account (capped), on video and logo links alike."""
    query = account_query(account)
    assert query.startswith("?account=") and query.isascii() and query.isprintable() and " " not in query
    assert all(c not in query for c in "\"'<>&#\\")
    expected = account[:ACCOUNT_MAX]
    for path in (b"/_seized/video/en.ts", b"/_seized/seal.png"):
        found = classify(path, query[1:].encode("ascii"), None, []).account
        if any(0xD800 <= ord(c) <= 0xDFFF for c in expected):  # a lone surrogate is no UTF-8: replaced, never a crash
            assert found is not None
        else:
            assert found == expected


def test_no_account_no_query():
    assert account_query(None) == account_query("") == ""
    assert account_query("a b", "&") == "&account=a%20b"
