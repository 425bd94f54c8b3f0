"""Every IPTV client sees the notice in its own form; the identifiers that link a hit to a
subscriber are stored, passwords never in clear. Bodies are checked with real parsers."""

import base64
import hashlib
import hmac
import io
import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import av
import m3u8
import pytest

from app.clients import CLIENT_KINDS
from conftest import MATCH_KEY
from helpers import request

HOST = "seized-iptv.example"
# What a client connecting from 127.0.0.1 is shown as a name, and how its programme title begins
# (the port and time follow: tests/test_iptv_visit.py checks them).
NAME = "SEIZED – your IP 127.0.0.1 recorded"
HEADLINE = "SEIZED – recorded: your IP 127.0.0.1, port "
AGENCY = "Test Police Cyber Unit"


def get(server, target, method="GET", headers=None, body=b"", host=HOST):
    response = request(server.public_port, method, target, host=host, headers=headers or [], body=body)
    row = server.row_for_port(response.local_port)
    return response, row


def assert_clean(row, *secrets):
    """No secret anywhere in the stored row, in any column."""
    stored = json.dumps(row)
    for secret in secrets:
        assert secret not in stored, f"{secret!r} stored in clear"


def hmac_of(password: str) -> str:
    return hmac.new(MATCH_KEY.encode(), password.encode(), hashlib.sha256).hexdigest()


# -- Xtream Codes API -------------------------------------------------------------------------

def test_player_api_login_is_a_valid_session_carrying_the_notice(iptv_server):
    response, row = get(iptv_server, "/player_api.php?username=alice&password=s3cret-A")
    assert response.status == 200 and response.header("content-type").startswith("application/json")
    data = json.loads(response.body)
    user, server = data["user_info"], data["server_info"]
    assert user["auth"] == 1 and user["status"] == "Active" and user["username"] == "alice"
    assert AGENCY in user["message"] and "127.0.0.1" in user["message"]
    assert user["password"] == "" and b"s3cret-A" not in response.body
    assert int(user["exp_date"]) > server["timestamp_now"]
    assert server["timezone"] == "UTC" and isinstance(server["timestamp_now"], int)
    assert len(server["time_now"]) == 19 and server["url"] == HOST
    assert (row["client_kind"], row["account"], row["status"]) == ("xtream_api", "alice", 200)
    assert row["password_hmac"] == hmac_of("s3cret-A")
    assert row["query"] == "username=alice&password=[REDACTED]"
    assert_clean(row, "s3cret-A")


@pytest.mark.parametrize("action", ["", "nonsense", "get_account_info"])
def test_unknown_or_missing_action_gets_the_login_answer(iptv_server, action):
    response, _ = get(iptv_server, f"/player_api.php?username=u&password=p&action={action}")
    assert json.loads(response.body)["user_info"]["auth"] == 1


@pytest.mark.parametrize("action, check", [
    ("get_live_categories", lambda d: d[0]["category_name"] == NAME and isinstance(d[0]["parent_id"], int)),
    ("get_vod_categories", lambda d: d[0]["category_name"] == NAME),
    ("get_series_categories", lambda d: d[0]["category_name"] == NAME),
    ("get_live_streams", lambda d: d[0]["name"] == NAME and d[0]["stream_type"] == "live" and d[0]["epg_channel_id"] == "notice"),
    ("get_vod_streams", lambda d: d[0]["name"] == NAME and d[0]["container_extension"] == "mp4"),
    ("get_series", lambda d: d[0]["name"] == NAME and AGENCY in d[0]["plot"]),
    ("get_series_info&series_id=3",
     lambda d: d["episodes"]["1"][0]["title"].startswith(HEADLINE) and AGENCY in d["info"]["plot"]),
    ("get_vod_info&vod_id=2", lambda d: d["movie_data"]["name"] == NAME and AGENCY in d["info"]["plot"]),
    ("get_short_epg&stream_id=1&limit=4",
     lambda d: base64.b64decode(d["epg_listings"][0]["title"]).decode().startswith(HEADLINE)
     and AGENCY in base64.b64decode(d["epg_listings"][0]["description"]).decode()),
    ("get_simple_data_table&stream_id=1",
     lambda d: d["epg_listings"][0]["now_playing"] == 1 and AGENCY in base64.b64decode(d["epg_listings"][0]["description"]).decode()),
])
def test_player_api_actions(iptv_server, action, check):
    response, row = get(iptv_server, f"/player_api.php?username=bob&password=pw-B&action={action}")
    assert response.status == 200
    assert check(json.loads(response.body))
    assert row["client_kind"] == "xtream_api" and row["account"] == "bob"


def test_smarters_style_form_post(iptv_server):
    form = b"username=carol&password=form-secret&action=get_live_streams"
    response, row = get(iptv_server, "/player_api.php", "POST", [("Content-Type", "application/x-www-form-urlencoded")], form)
    assert json.loads(response.body)[0]["name"] == NAME
    assert (row["account"], row["password_hmac"]) == ("carol", hmac_of("form-secret"))
    assert_clean(row, "form-secret")


def test_head_gets_headers_only(iptv_server):
    response, row = get(iptv_server, "/player_api.php?username=dave&password=x", "HEAD")
    assert response.status == 200 and response.body == b"" and int(response.header("content-length")) > 100
    assert row["method"] == "HEAD" and row["account"] == "dave"


def test_panel_api(iptv_server):
    response, row = get(iptv_server, "/panel_api.php?username=erin&password=p")
    data = json.loads(response.body)
    assert data["user_info"]["auth"] == 1 and data["categories"]["live"][0]["category_name"] == NAME
    assert data["available_channels"]["1"]["name"] == NAME
    epg = json.loads(get(iptv_server, "/panel_api.php?username=erin&password=p&action=get_epg&stream_id=1")[0].body)
    assert base64.b64decode(epg[0]["title"]).decode().startswith(HEADLINE)
    assert row["client_kind"] == "xtream_api" and row["account"] == "erin"


@pytest.mark.parametrize("kind", ["get_live_categories", "get_live_streams"])
def test_enigma2_php_is_xml_with_base64_titles(iptv_server, kind):
    response, row = get(iptv_server, f"/enigma2.php?username=frank&password=p&type={kind}&cat_id=1")
    root = ET.fromstring(response.body)
    assert root.tag == "items"
    channel = root.find("channel")
    assert base64.b64decode(channel.findtext("title")).decode() == NAME
    assert AGENCY in base64.b64decode(channel.findtext("description")).decode()
    url = channel.findtext("stream_url") or channel.findtext("playlist_url")
    assert url.startswith(f"http://{HOST}/")
    assert (row["client_kind"], row["account"]) == ("enigma2", "frank")


# -- playlists and EPG ------------------------------------------------------------------------

EXTINF = r'^#EXTINF:-1( [a-z-]+="[^"]*")*,[^,"]+$'


def test_m3u_plus_playlist(iptv_server):
    import re
    response, row = get(iptv_server, "/get.php?username=gina&password=pl-pass&type=m3u_plus&output=ts")
    assert response.status == 200 and "mpegurl" in response.header("content-type")
    lines = response.text.splitlines()
    assert lines[0].startswith("#EXTM3U ") and f'x-tvg-url="http://{HOST}/xmltv.php?account=gina"' in lines[0]
    extinf = [line for line in lines if line.startswith("#EXTINF")]
    assert len(extinf) == 1 and re.match(EXTINF, extinf[0])
    assert 'tvg-id="notice"' in extinf[0] and extinf[0].endswith("," + NAME)
    url = lines[lines.index(extinf[0]) + 1]
    assert url == f"http://{HOST}/_seized/video/en.ts?account=gina"  # the link names its account (test_iptv_links.py)
    assert AGENCY in response.text  # the comment line, for whoever opens the file
    assert (row["client_kind"], row["account"], row["password_hmac"]) == ("playlist", "gina", hmac_of("pl-pass"))
    assert_clean(row, "pl-pass")


def test_m3u8_output_links_hls(iptv_server):
    response, _ = get(iptv_server, "/get.php?username=g&password=p&type=m3u&output=m3u8")
    assert f"http://{HOST}/_seized/video/en.m3u8?account=g" in response.text.splitlines()


@pytest.mark.parametrize("kind", ["enigma22_script", "enigma16", "dreambox"])
def test_enigma_bouquet(iptv_server, kind):
    response, row = get(iptv_server, f"/get.php?username=hank&password=p&type={kind}&output=ts")
    lines = response.text.splitlines()
    assert lines[0] == f"#NAME {NAME}"
    assert lines[1].startswith("#SERVICE 4097:0:1:") and lines[1].endswith(":" + NAME)
    assert f"http%3a//{HOST}/_seized/video/en.ts" in lines[1]
    assert lines[2].startswith(f"#DESCRIPTION {HEADLINE}{response.local_port}, ") and lines[2].endswith(" UTC")
    # A marker (a line of text in the channel list) with the address alone.
    address = f"Your IP address: 127.0.0.1 · Source port: {response.local_port}"
    assert lines[3:] == [f"#SERVICE 1:64:1:0:0:0:0:0:0:0::{address}", f"#DESCRIPTION {address}"]
    assert row["client_kind"] == "playlist"


def test_xmltv(iptv_server):
    response, row = get(iptv_server, "/xmltv.php?username=ivan&password=p")
    root = ET.fromstring(response.body)
    assert root.tag == "tv"
    assert root.find("channel").get("id") == "notice"
    programme = root.find("programme")
    assert programme.get("channel") == "notice"
    assert programme.findtext("title").startswith(HEADLINE) and AGENCY in programme.findtext("desc")
    from datetime import datetime, timezone
    start = datetime.strptime(programme.get("start"), "%Y%m%d%H%M%S %z")
    stop = datetime.strptime(programme.get("stop"), "%Y%m%d%H%M%S %z")
    now = datetime.now(timezone.utc)
    assert start < now < stop and (stop - start).total_seconds() == 2 * 86400
    assert (row["client_kind"], row["account"]) == ("epg", "ivan")


# -- streams ----------------------------------------------------------------------------------

def probe(data: bytes):
    container = av.open(io.BytesIO(data))
    stream = container.streams.video[0]
    frames = sum(1 for _ in container.decode(video=0))
    return container.format.name, stream.codec_context.name, stream.width, stream.height, frames


@pytest.mark.parametrize("path, container", [
    ("/live/jack/live-pass/1.ts", "mpegts"),
    ("/jack/live-pass/1", "mpegts"),
    ("/jack/live-pass/1.ts", "mpegts"),
    ("/timeshift/jack/live-pass/60/2026-11-23:06-00/1.ts", "mpegts"),
    ("/streaming/timeshift.php?username=jack&password=live-pass&stream=1&start=2026-11-23:06-00&duration=60", "mpegts"),
    ("/movie/jack/live-pass/2.mp4", "mp4"),
    ("/series/jack/live-pass/3.mkv", "mp4"),
    ("/play/abcdef0123", "mpegts"),
])
def test_stream_urls_play_the_notice_video(iptv_server, path, container):
    response, row = get(iptv_server, path)
    assert response.status == 200
    assert response.header("content-type") == ("video/mp4" if container == "mp4" else "video/mp2t")
    name, codec, width, height, frames = probe(response.body)
    assert container in name and codec == "h264" and (width, height) == (1280, 720) and frames >= 250
    assert row["client_kind"] == "stream"
    if "jack" in path:
        assert row["account"] == "jack" and row["password_hmac"] == hmac_of("live-pass")
        assert_clean(row, "live-pass")
        assert "[REDACTED]" in row["path"] + row["query"]


def decode_timestamps(ts: bytes) -> list[int]:
    """The DTS of every video packet of an MPEG-TS, as PyAV's FFmpeg demuxer reads them (90 kHz)."""
    import io

    import av

    with av.open(io.BytesIO(ts), format="mpegts") as container:
        return [packet.dts for packet in container.demux(container.streams.video[0]) if packet.dts is not None]


def test_hls_playlist_and_segments(iptv_server):
    response, row = get(iptv_server, "/live/kate/hls-pass/1.m3u8")
    assert response.header("content-type") == "application/vnd.apple.mpegurl"
    master = m3u8.loads(response.text)  # the video and the visit's subtitles (tests/test_tv_picture.py)
    media, _ = get(iptv_server, master.playlists[0].uri.split(HOST, 1)[1])
    playlist = m3u8.loads(media.text)
    assert playlist.is_endlist and playlist.target_duration == 4 and len(playlist.segments) == 3
    total, timestamps = 0, []
    for segment in playlist.segments:
        assert segment.uri.startswith(f"http://{HOST}/_seized/video/en/seg")
        path = segment.uri.split(HOST, 1)[1]
        piece, piece_row = get(iptv_server, path)
        assert piece.header("content-type") == "video/mp2t" and piece_row["client_kind"] == "stream"
        total += probe(piece.body)[4]
        timestamps += decode_timestamps(piece.body)
    assert total >= 3 * 4 * 25 - 5
    # One timeline across the segments: each picks up where the one before ended (a player, or
    # ffmpeg reading the playlist, sees decode timestamps that only grow, never a restart).
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    assert (row["account"], row["path"]) == ("kate", "/live/kate/[REDACTED]/1.m3u8")


def test_mp4_range_requests(iptv_server):
    whole, _ = get(iptv_server, "/movie/u/p/2.mp4")
    size = len(whole.body)
    assert whole.header("accept-ranges") == "bytes"
    part, row = get(iptv_server, "/movie/u/p/2.mp4", headers=[("Range", "bytes=100-1099")])
    assert part.status == 206 and part.body == whole.body[100:1100]
    assert part.header("content-range") == f"bytes 100-1099/{size}"
    tail, _ = get(iptv_server, "/movie/u/p/2.mp4", headers=[("Range", "bytes=-500")])
    assert tail.status == 206 and tail.body == whole.body[-500:]
    beyond, _ = get(iptv_server, "/movie/u/p/2.mp4", headers=[("Range", f"bytes={size}-")])
    assert beyond.status == 416 and beyond.header("content-range") == f"bytes */{size}"
    assert row["status"] == 206
    head, _ = get(iptv_server, "/live/u/p/1.ts", "HEAD")
    assert head.status == 200 and head.body == b"" and int(head.header("content-length")) > 10_000


def test_italian_domain_gets_italian_video_and_texts(iptv_server):
    response, _ = get(iptv_server, "/player_api.php?username=u&password=p&action=get_live_streams", host="iptv-pirata.example")
    assert json.loads(response.body)[0]["name"] == "SEQUESTRATO – il tuo IP 127.0.0.1 registrato"
    playlist, _ = get(iptv_server, "/get.php?username=u&password=p", host="iptv-pirata.example")
    assert "http://iptv-pirata.example/_seized/video/it.ts" in playlist.text


# -- Stalker / Ministra ----------------------------------------------------------------------

MAG = [("Cookie", "mac=00:1A:79:AB:CD:EF; stb_lang=en; timezone=Europe/Rome"),
       ("X-User-Agent", "Model: MAG254; Link: Ethernet"), ("SN", "SN0123456789"),
       ("User-Agent", "Mozilla/5.0 (QtEmbedded; U; Linux; C) AppleWebKit/533.3 (KHTML, like Gecko) MAG200 stbapp ver: 2 rev: 250 Safari/533.3")]


@pytest.mark.parametrize("base", ["/portal.php", "/server/load.php", "/stalker_portal/server/load.php"])
def test_stalker_flow(iptv_server, base):
    def call(query, extra=()):
        response, row = get(iptv_server, f"{base}?{query}&JsHttpRequest=1-xml", headers=[*MAG, *extra])
        assert response.status == 200
        assert row["client_kind"] == "stalker" and row["account"] == "00:1A:79:AB:CD:EF"
        return json.loads(response.body)["js"], row

    handshake, _ = call("type=stb&action=handshake&token=&prehash=0")
    token = handshake["token"]
    assert len(token) == 32
    bearer = [("Authorization", f"Bearer {token}")]
    profile, row = call("type=stb&action=get_profile&sn=SN0123456789&stb_type=MAG254&device_id=DEV-1&device_id2=DEV-2"
                        "&signature=SIG&auth_second_step=0", bearer)
    assert profile["status"] == 1 and AGENCY in profile["block_msg"] and profile["msg"] == profile["block_msg"]
    assert json.loads(row["device"]) == {"sn": "SN0123456789", "stb_type": "MAG254", "device_id": "DEV-1",
                                         "device_id2": "DEV-2", "model": "MAG254"}
    assert token not in json.dumps(row)  # the Bearer token is redacted
    localization, _ = call("type=stb&action=get_localization", bearer)
    assert AGENCY in localization["cut_off_msg"]
    events, _ = call("type=watchdog&action=get_events&cur_play_type=1&event_active_id=0&init=0", bearer)
    assert events["data"]["event"] == "send_msg" and AGENCY in events["data"]["msg"]
    channels, _ = call("type=itv&action=get_all_channels", bearer)
    assert channels["data"][0]["name"] == NAME and channels["data"][0]["cmd"].startswith("ffmpeg http://")
    assert call("type=itv&action=get_ordered_list&genre=*&p=1", bearer)[0]["total_items"] == 1
    assert call("type=itv&action=get_genres", bearer)[0][0]["title"] == NAME
    link, _ = call("type=itv&action=create_link&cmd=ffmpeg%20http://x/1", bearer)
    assert link["cmd"].split(" ", 1)[1].endswith("/_seized/video/en.ts?account=00%3A1A%3A79%3AAB%3ACD%3AEF")
    auth, auth_row = call("type=stb&action=do_auth&login=magUser&password=mag-pass&device_id=DEV-1")
    assert auth is True
    assert auth_row["password_hmac"] == hmac_of("mag-pass") and json.loads(auth_row["device"])["login"] == "magUser"
    assert_clean(auth_row, "mag-pass")


def test_stalker_mac_from_query_and_the_c_page(iptv_server):
    response, row = get(iptv_server, "/stalker_portal/server/load.php?type=stb&action=get_profile&mac=00%3A1a%3A79%3A00%3A00%3A01")
    assert json.loads(response.body)["js"]["status"] == 1
    assert row["account"] == "00:1A:79:00:00:01"
    page, page_row = get(iptv_server, "/c/", headers=MAG)
    assert page.status == 451 and "seized-iptv.example" in page.text
    assert (page_row["client_kind"], page_row["account"]) == ("stalker", "00:1A:79:AB:CD:EF")


# -- classification --------------------------------------------------------------------------

SHAPES = [  # method, target, extra headers, body, client_kind, account
    ("GET", "/", [("Accept", "text/html,application/xhtml+xml")], b"", "browser", None),
    ("GET", "/index.html", [("Accept", "text/html")], b"", "browser", None),
    ("GET", "/favicon.ico", [("Accept", "image/*")], b"", "other", None),
    ("GET", "/robots.txt", [], b"", "other", None),
    ("GET", "/wp-login.php", [("Accept", "*/*")], b"", "other", None),
    ("GET", "/player_api.php?username=a1&password=p", [], b"", "xtream_api", "a1"),
    ("GET", "/player_api.php?username=a2&password=p&action=get_live_streams&category_id=5", [], b"", "xtream_api", "a2"),
    ("GET", "/PLAYER_API.PHP?username=a3&password=p", [], b"", "xtream_api", "a3"),
    ("POST", "/player_api.php", [("Content-Type", "application/x-www-form-urlencoded")], b"username=a4&password=p&action=get_vod_streams", "xtream_api", "a4"),
    ("POST", "/player_api.php?action=get_series", [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], b"username=a5&password=p", "xtream_api", "a5"),
    ("HEAD", "/player_api.php?username=a6&password=p", [], b"", "xtream_api", "a6"),
    ("GET", "/player_api.php", [], b"", "xtream_api", None),
    ("GET", "/player_api.php?token=abc", [], b"", "xtream_api", None),
    ("GET", "/panel_api.php?username=a7&password=p", [], b"", "xtream_api", "a7"),
    ("POST", "/panel_api.php", [("Content-Type", "application/x-www-form-urlencoded")], b"username=a8&password=p", "xtream_api", "a8"),
    ("GET", "/get.php?username=b1&password=p&type=m3u_plus&output=ts", [], b"", "playlist", "b1"),
    ("GET", "/get.php?username=b2&password=p&type=m3u", [], b"", "playlist", "b2"),
    ("HEAD", "/get.php?username=b3&password=p&type=m3u_plus", [], b"", "playlist", "b3"),
    ("GET", "/get.php?username=b4&password=p&type=enigma22_script&output=m3u8", [], b"", "playlist", "b4"),
    ("GET", "/get.php?username=b5&password=p&type=dreambox", [], b"", "playlist", "b5"),
    ("GET", "/get.php?username=b%C3%A9&password=p", [], b"", "playlist", "bé"),
    ("GET", "/xmltv.php?username=c1&password=p", [], b"", "epg", "c1"),
    ("POST", "/xmltv.php", [("Content-Type", "application/x-www-form-urlencoded")], b"username=c2&password=p", "epg", "c2"),
    ("GET", "/enigma2.php?username=d1&password=p&type=get_live_categories", [], b"", "enigma2", "d1"),
    ("GET", "/enigma2.php?username=d2&password=p&type=get_live_streams&cat_id=3", [], b"", "enigma2", "d2"),
    ("GET", "/live/e1/p/100.ts", [], b"", "stream", "e1"),
    ("GET", "/live/e2/p/100.m3u8", [], b"", "stream", "e2"),
    ("GET", "/e3/p/100", [], b"", "stream", "e3"),
    ("GET", "/e4/p/100.ts", [], b"", "stream", "e4"),
    ("GET", "/movie/e5/p/200.mp4", [], b"", "stream", "e5"),
    ("GET", "/movie/e6/p/200.mkv", [], b"", "stream", "e6"),
    ("GET", "/series/e7/p/300.mp4", [], b"", "stream", "e7"),
    ("GET", "/timeshift/e8/p/60/2026-11-23:06-00/100.ts", [], b"", "stream", "e8"),
    ("GET", "/streaming/timeshift.php?username=e9&password=p&stream=100&start=2026-11-23:06-00&duration=60", [], b"", "stream", "e9"),
    ("GET", "/hls/f1/p/100/1.ts", [], b"", "stream", "f1"),
    ("GET", "/hlsr/TOKEN/f2/p/100/1.ts", [], b"", "stream", "f2"),
    ("GET", "/play/Zm9vYmFy", [], b"", "stream", None),
    ("GET", "/_seized/video/en.ts", [], b"", "stream", None),
    ("GET", "/_seized/video/en/seg1.ts", [], b"", "stream", None),
    ("GET", "/portal.php?type=stb&action=handshake&mac=00:1A:79:00:00:10", [], b"", "stalker", "00:1A:79:00:00:10"),
    ("GET", "/server/load.php?type=stb&action=get_profile", [("Cookie", "mac=00%3A1A%3A79%3A00%3A00%3A11; stb_lang=en")], b"", "stalker", "00:1A:79:00:00:11"),
    ("GET", "/stalker_portal/server/load.php?type=itv&action=get_all_channels", [("Cookie", "stb_lang=en; mac=00:1a:79:00:00:12")], b"", "stalker", "00:1A:79:00:00:12"),
    ("POST", "/stalker_portal/server/load.php", [("Content-Type", "application/x-www-form-urlencoded")], b"type=stb&action=do_auth&login=l1&password=p&mac=00:1A:79:00:00:13", "stalker", "00:1A:79:00:00:13"),
    ("GET", "/c/", [("Cookie", "mac=00:1A:79:00:00:14")], b"", "stalker", "00:1A:79:00:00:14"),
    ("GET", "/stalker_portal/c/index.html", [], b"", "stalker", None),
    ("GET", "/some/other/page", [("Accept", "text/html")], b"", "browser", None),
    ("GET", "/a/b/c", [], b"", "other", None),
    # The User-Agent never decides: a browser UA on a player path is a player, a player UA on a page is not.
    ("GET", "/player_api.php?username=g1&password=p", [("User-Agent", "Mozilla/5.0 Chrome/120"), ("Accept", "text/html")], b"", "xtream_api", "g1"),
    ("GET", "/", [("User-Agent", "IPTVSmartersPlayer")], b"", "other", None),
]


@pytest.mark.parametrize("method, target, headers, body, kind, account", SHAPES, ids=[s[1][:60] for s in SHAPES])
def test_client_kind_and_account(iptv_server, method, target, headers, body, kind, account):
    response, row = get(iptv_server, target, method, headers, body)
    assert response.status in (200, 451)
    assert (row["client_kind"], row["account"]) == (kind, account)
    if "password=p" in target or b"password=p" in body or (kind == "stream" and account):
        assert row["password_hmac"] == hmac_of("p")


def test_shapes_cover_every_client_kind():
    """The table above names every kind the classifier can give, and no other."""
    assert {shape[4] for shape in SHAPES} == set(CLIENT_KINDS)


def test_referer_with_stream_credentials_is_redacted(iptv_server):
    _, row = get(iptv_server, "/_seized/video/en/seg0.ts", headers=[("Referer", f"http://{HOST}/live/zed/ref-pass/1.m3u8")])
    assert_clean(row, "ref-pass")
    assert [k for k, v in json.loads(row["headers"]) if v == f"http://{HOST}/live/zed/[REDACTED]/1.m3u8"] == ["referer"]


def test_hostile_host_is_not_echoed_into_links(iptv_server):
    response, _ = get(iptv_server, "/get.php?username=u&password=p", host='a"b<c>.example')
    assert 'a"b' not in response.text and "<c>" not in response.text
    assert f"http://127.0.0.1:{iptv_server.public_port}/_seized/video/en.ts" in response.text


# -- API ---------------------------------------------------------------------------------------

def test_account_and_client_kind_filters_and_stats(iptv_server):
    get(iptv_server, "/player_api.php?username=stats-user&password=p")
    get(iptv_server, "/live/stats-user/p/1.ts")
    token = iptv_server.tokens["investigator"]
    items = iptv_server.api("GET", "/api/v1/hits?account=stats-user", token).json()["items"]
    assert sorted(item["client_kind"] for item in items) == ["stream", "xtream_api"]
    assert all(item["password_hmac"] == hmac_of("p") for item in items)
    streams = iptv_server.api("GET", "/api/v1/hits?account=stats-user&client_kind=stream", token).json()["items"]
    assert len(streams) == 1 and streams[0]["path"] == "/live/stats-user/[REDACTED]/1.ts"
    by_account = iptv_server.api("GET", "/api/v1/stats?group=account&account=stats-user", token).json()["rows"]
    assert by_account == [{"key": "stats-user", "hits": 2, "distinct_ips": 1}]
    kinds = {row["key"] for row in iptv_server.api("GET", "/api/v1/stats?group=client_kind", token).json()["rows"]}
    assert {"xtream_api", "stream"} <= kinds
    assert iptv_server.api("GET", "/api/v1/hits?client_kind=toaster", token).status_code == 422
    exported = iptv_server.api("GET", "/api/v1/hits/export?format=ndjson&account=stats-user", token).text.splitlines()
    assert {json.loads(line)["account"] for line in exported} == {"stats-user"}


def test_without_a_match_key_no_password_trace_is_kept(server):
    response, row = get(server, "/player_api.php?username=nokey&password=plain-pw")
    assert row["account"] == "nokey" and row["password_hmac"] is None
    assert_clean(row, "plain-pw", hashlib.sha256(b"plain-pw").hexdigest())
    assert quote("plain-pw") not in json.dumps(row)


# -- issue 12: what a browser shown an IPTV answer could make of it ----------------------------

@pytest.mark.parametrize("target", ["/player_api.php?username=u&password=p", "/panel_api.php?username=u&password=p",
                                    "/get.php?username=u&password=p&type=m3u_plus", "/xmltv.php?username=u&password=p",
                                    "/enigma2.php?username=u&password=p", "/portal.php?type=stb&action=handshake",
                                    "/live/u/p/1.ts", "/player_api.php?username=u&password=p&action=get_live_streams",
                                    "/live/u/p/1.m3u8"])
def test_every_iptv_answer_says_nosniff(iptv_server, target):
    response, _ = get(iptv_server, target)
    assert response.status < 500
    assert response.header("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("username", ["<script>alert(1)</script>", "a&b>c", "x\u2028y\u2029z", "\u00e9l\u00f6die\\\"q"])
def test_an_echoed_username_is_escaped_in_json(iptv_server, username):
    response, _ = get(iptv_server, f"/player_api.php?username={quote(username)}&password=p")
    assert response.header("content-type").startswith("application/json")
    assert response.header("x-content-type-options") == "nosniff"
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in response.text
    assert json.loads(response.body)["user_info"]["username"] == username  # still the same value for a JSON parser
