"""app/clients.py: which client sent a request, which responder answers, and the identifiers."""

import pytest
from hypothesis import given, settings, strategies as st

from app.clients import (BROWSER, ENIGMA2, EPG, OTHER, PLAYLIST, STALKER, STREAM, XTREAM, classify,
                         credential_segments, redact_path)

PROPERTY = settings(deadline=None, database=None)
MAC_COOKIE = [(b"cookie", b"mac=00%3A1a%3A79%3Aaa%3Abb%3Acc; stb_lang=en; timezone=Europe%2FRome")]
HTML = [(b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")]


def info(path: bytes, query: bytes = b"", form: bytes | None = None, headers=()):
    i = classify(path, query, form, list(headers))
    return i.kind, i.route, i.account, i.password, i.extension


@pytest.mark.parametrize("path, query, form, expected", [
    # Xtream Codes API and its relatives: credentials in the query (or a form body, as Smarters-lineage apps POST)
    (b"/player_api.php", b"username=alice&password=s3cret", None, (XTREAM, "xtream", "alice", "s3cret", "")),
    (b"/player_api.php", b"username=alice&password=s3cret&action=get_live_streams&category_id=3", None,
     (XTREAM, "xtream", "alice", "s3cret", "")),
    (b"/player_api.php", b"", b"username=alice&password=s3cret&action=get_vod_categories", (XTREAM, "xtream", "alice", "s3cret", "")),
    (b"/player_api.php", b"username=query&password=fromquery", b"username=form&password=fromform",
     (XTREAM, "xtream", "query", "fromquery", "")),  # the query wins, as PHP's $_REQUEST
    (b"/player_api.php", b"USERNAME=alice&Password=s3cret", None, (XTREAM, "xtream", "alice", "s3cret", "")),
    (b"/player_api.php", b"username=&password=", None, (XTREAM, "xtream", None, None, "")),
    (b"/player_api.php", b"", None, (XTREAM, "xtream", None, None, "")),
    (b"/PLAYER_API.PHP/", b"username=alice", None, (XTREAM, "xtream", "alice", None, "")),
    (b"/panel_api.php", b"username=alice&password=s3cret", None, (XTREAM, "panel", "alice", "s3cret", "")),
    (b"/get.php", b"username=alice&password=s3cret&type=m3u_plus&output=ts", None, (PLAYLIST, "playlist", "alice", "s3cret", "")),
    (b"/get.php", b"username=alice&password=s3cret&type=enigma22_script&output=mpegts", None,
     (PLAYLIST, "playlist", "alice", "s3cret", "")),
    (b"/xmltv.php", b"username=alice&password=s3cret", None, (EPG, "xmltv", "alice", "s3cret", "")),
    (b"/enigma2.php", b"username=alice&password=s3cret&type=get_live_categories", None,
     (ENIGMA2, "enigma2", "alice", "s3cret", "")),
    (b"/streaming/timeshift.php", b"username=alice&password=s3cret&stream=7&start=2026-11-23:06-00&duration=60", None,
     (STREAM, "stream", "alice", "s3cret", "ts")),
    # percent-encoding, in the query and in the path
    (b"/player_api.php", b"username=al%20ice&password=p%26q%3D", None, (XTREAM, "xtream", "al ice", "p&q=", "")),
    (b"/player_api.php", b"username=al+ice&password=a+b", None, (XTREAM, "xtream", "al ice", "a b", "")),
    (b"/player_api.php", b"username=%C3%A9lodie&password=%E2%82%AC", None, (XTREAM, "xtream", "\u00e9lodie", "\u20ac", "")),
    (b"/player%5Fapi.php", b"username=alice", None, (XTREAM, "xtream", "alice", None, "")),
    (b"/get%2Ephp", b"username=alice", None, (PLAYLIST, "playlist", "alice", None, "")),
])
def test_api_and_playlist_paths(path, query, form, expected):
    assert info(path, query, form) == expected


@pytest.mark.parametrize("path, expected", [
    (b"/live/alice/s3cret/1234.ts", ("alice", "s3cret", "ts")),
    (b"/live/alice/s3cret/1234.m3u8", ("alice", "s3cret", "m3u8")),
    (b"/LIVE/alice/s3cret/1234.TS", ("alice", "s3cret", "ts")),
    (b"/movie/alice/s3cret/5678.mkv", ("alice", "s3cret", "mkv")),
    (b"/series/alice/s3cret/91011.mp4", ("alice", "s3cret", "mp4")),
    (b"/timeshift/alice/s3cret/60/2026-11-23:06-00/1234.ts", ("alice", "s3cret", "ts")),
    (b"/alice/s3cret/1234", ("alice", "s3cret", "ts")),  # a bare id is MPEG-TS
    (b"/alice/s3cret/1234.ts", ("alice", "s3cret", "ts")),
    (b"/alice/s3cret/1234.m3u8", ("alice", "s3cret", "m3u8")),
    (b"/hls/alice/s3cret/1234/index.m3u8", ("alice", "s3cret", "m3u8")),
    (b"/hlsr/TOKEN/alice/s3cret/1234/seg1.ts", ("alice", "s3cret", "ts")),
    (b"/live/al%40ice/p%40ss/1234.ts", ("al@ice", "p@ss", "ts")),
    (b"/live/alice/s3cret/1234.ts/", ("alice", "s3cret", "ts")),
    (b"/play/SOMETOKEN", (None, None, "ts")),
    (b"/play/SOMETOKEN/index.m3u8", (None, None, "m3u8")),
    (b"/hls/short", (None, None, "ts")),
    (b"/hlsr/short/x", (None, None, "ts")),
])
def test_stream_paths(path, expected):
    kind, route, account, password, extension = info(path)
    assert (kind, route) == (STREAM, "stream")
    assert (account, password, extension) == expected


@pytest.mark.parametrize("path, extension", [(b"/_seized/video/en.ts", "ts"), (b"/_seized/video/it.mp4", "mp4"),
                                             (b"/_seized/video/en.m3u8", "m3u8"), (b"/_seized/video/en/seg1.ts", "ts")])
def test_our_own_video_links(path, extension):
    assert info(path) == (STREAM, "video", None, None, extension)


def test_stalker_handshake_by_mac_cookie():
    i = classify(b"/portal.php", b"type=stb&action=handshake&token=&JsHttpRequest=1-xml", None, MAC_COOKIE)
    assert (i.kind, i.route, i.account, i.password, i.device) == (STALKER, "stalker", "00:1A:79:AA:BB:CC", None, None)


@pytest.mark.parametrize("path", [b"/portal.php", b"/server/load.php", b"/stalker_portal/server/load.php",
                                  b"/stalker_portal/server/load.php/"])
def test_stalker_api_paths(path):
    assert info(path, b"type=stb&action=get_profile", headers=MAC_COOKIE)[:3] == (STALKER, "stalker", "00:1A:79:AA:BB:CC")


def test_stalker_device_fields():
    query = b"type=stb&action=get_profile&sn=062014N012345&device_id=AB12&device_id2=CD34&stb_type=MAG250&mac=00:1a:79:00:00:01"
    headers = [(b"x-user-agent", b"Model: MAG250; Link: WiFi"), *MAC_COOKIE]
    i = classify(b"/stalker_portal/server/load.php", query, None, headers)
    assert i.account == "00:1A:79:00:00:01"  # the query's mac wins over the cookie's
    assert i.device == {"sn": "062014N012345", "device_id": "AB12", "device_id2": "CD34", "stb_type": "MAG250", "model": "MAG250"}


def test_stalker_sn_header_and_do_auth():
    i = classify(b"/portal.php", b"type=stb&action=do_auth&login=bob&password=pin1234", None, [(b"sn", b"SERIAL9")])
    assert (i.account, i.password, i.device) == (None, "pin1234", {"sn": "SERIAL9", "login": "bob"})
    # a password outside do_auth is not taken as the subscriber's
    assert classify(b"/portal.php", b"action=get_profile&password=x", None, []).password is None
    assert classify(b"/portal.php", b"action=DO_AUTH&password=x", None, []).password == "x"


@pytest.mark.parametrize("mac, account", [("00:1a:79:aa:bb:cc", "00:1A:79:AA:BB:CC"), ("00-1a-79-aa-bb-cc", "00-1A-79-AA-BB-CC"),
                                          ("not-a-mac", "not-a-mac"), ("", None)])
def test_stalker_mac_upper_cased_only_when_it_is_a_mac(mac, account):
    assert classify(b"/portal.php", f"mac={mac}".encode(), None, []).account == account


@pytest.mark.parametrize("path", [b"/c", b"/c/", b"/c/index.html", b"/stalker_portal/c/", b"/stalker_portal/c/version.js"])
def test_stalker_pages_get_the_html_notice(path):
    assert info(path, headers=MAC_COOKIE)[:3] == (STALKER, "html", "00:1A:79:AA:BB:CC")


@pytest.mark.parametrize("path, headers, kind", [
    (b"/", HTML, BROWSER), (b"/", [], OTHER), (b"/index.php", [(b"accept", b"*/*")], OTHER),
    (b"/favicon.ico", [], OTHER), (b"", [], OTHER), (b"*", [], OTHER), (b"//alice/s3cret/1.ts", [], OTHER),
    (b"/live/alice/s3cret", [], OTHER),  # too short for a stream path
    (b"/alice/s3cret/1234.toolongext", [], OTHER), (b"/_seized/x/1234", [], OTHER), (b"/a/b/c/d/e", HTML, BROWSER),
    (b"/player_api.php.bak", [], OTHER), (b"/wp-login.php", HTML, BROWSER),
])
def test_everything_else_is_html(path, headers, kind):
    assert info(path, headers=headers) == (kind, "html", None, None, "")


def test_user_agent_is_never_consulted():
    for ua in (b"VLC/3.0.20 LibVLC/3.0.20", b"IPTVSmartersPro", b"Mozilla/5.0"):
        assert info(b"/live/a/b/1.ts", headers=[(b"user-agent", ua)]) == info(b"/live/a/b/1.ts")


@pytest.mark.parametrize("segments, expected", [
    ([], None), ([""], None),
    (["live", "u", "p", "1.ts"], (1, 2)), (["movie", "u", "p", "1.mp4"], (1, 2)), (["Series", "u", "p", "1"], (1, 2)),
    (["timeshift", "u", "p", "60", "start", "1.ts"], (1, 2)), (["live", "u", "p"], None),
    (["hls", "u", "p", "x"], (1, 2)), (["hls", "u", "p"], None), (["hlsr", "t", "u", "p", "x"], (2, 3)), (["hlsr", "t", "u", "p"], None),
    (["u", "p", "1"], (0, 1)), (["u", "p", "1.ts"], (0, 1)), (["u", "p", "1.m3u8"], (0, 1)), (["u", "p", "1.abcdef"], None),
    (["u", "p", "x1"], None), (["u", "p", "1", "2"], None), (["_seized", "video", "1"], None), (["c", "u", "1"], None),
    (["stalker_portal", "c", "1"], None), (["C", "u", "1"], (0, 1)),  # exact case: a user "C" may hide a password
    (["c", "u", "1.ts"], (0, 1)), (["c", "0000", "77.m3u8"], (0, 1)),  # a stream extension: user "c" (issue 12)
    (["c", "img", "1.png"], None), (["images", "2024", "1.png"], None), (["static", "v2", "1.css"], None),  # no stream
    (["u", "p", "1.MKV"], (0, 1)), (["u", "p", "1.mp4"], (0, 1)),
])
def test_credential_segments(segments, expected):
    assert credential_segments(segments) == expected


@pytest.mark.parametrize("path, redacted", [
    ("/live/alice/s3cret/1.ts", "/live/alice/M/1.ts"), ("/alice/s3cret/1.ts", "/alice/M/1.ts"),
    ("/timeshift/alice/s3cret/60/x/1.ts", "/timeshift/alice/M/60/x/1.ts"), ("/hlsr/t/alice/s3cret/1/s.ts", "/hlsr/t/alice/M/1/s.ts"),
    ("/live/alice/p%40ss/1.ts", "/live/alice/M/1.ts"), ("/live/alice//1.ts", "/live/alice/M/1.ts"),
    ("/player_api.php", "/player_api.php"), ("/a/b", "/a/b"), ("/", "/"), ("", ""), ("/_seized/video/1", "/_seized/video/1"),
    ("/c/u/1", "/c/u/1"), ("/x/y/z/w", "/x/y/z/w"), ("/live/alice/s3cret", "/live/alice/s3cret"),
])
def test_redact_path(path, redacted):
    assert redact_path(path, "M") == redacted


# ASCII: classify decodes raw bytes as UTF-8 where valid, record.py likewise (see test_raw_utf8_credentials... below)
SEGMENT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="/%?#"), min_size=1, max_size=12)
MASK = "[REDACTED]"


@PROPERTY
@given(head=st.sampled_from(["live", "movie", "series", "timeshift", "hls", "hlsr", "LIVE", "play", ""]), user=SEGMENT,
       password=SEGMENT, rest=st.lists(st.one_of(SEGMENT, st.from_regex(r"\A[0-9]{1,6}(\.[a-z0-9]{1,5})?\Z")), min_size=1, max_size=3))
def test_the_password_classify_finds_in_a_path_is_what_redact_path_masks(head, user, password, rest):
    """Without percent-encoding, the one segment redact_path changes is the password classify took."""
    segments = ([head] if head else []) + [user, password, *rest]
    path = "/" + "/".join(segments)
    found = classify(path.encode(), b"", None, [])
    redacted = redact_path(path, MASK).split("/")[1:]
    changed = [i for i, (a, b) in enumerate(zip(segments, redacted, strict=True)) if a != b or b == MASK]
    if found.password is None:
        assert changed == [] or segments[changed[0]] == MASK
    else:
        assert len(changed) == 1 and redacted[changed[0]] == MASK and segments[changed[0]] == found.password
        assert found.kind == STREAM


@pytest.mark.parametrize("raw", [b"/%6Cive/alice/s3cret/1.ts", b"/alice/s3cret/1%2Ets", b"/alice/s3cret/%31"])
def test_percent_encoded_stream_path_keeps_no_password(raw):
    assert classify(raw, b"", None, []).password == "s3cret"  # classify sees a stream path with a password...
    assert "s3cret" not in redact_path(raw.decode("latin-1"), "[REDACTED]")  # ...that the stored path keeps


@pytest.mark.parametrize("raw", [b"/%6cive/alice/s3cret/1.ts", b"/%4C%49%56%45/alice/s3cret/1.ts", b"/live/alice/s%33cret/1.ts",
                                 b"/%6Cive/alice/%73%33%63%72%65%74/1.ts", b"/alice/s3cret/%31%2E%74%73"])
def test_any_single_percent_encoding_is_redacted_as_classify_reads_it(raw):
    assert classify(raw, b"", None, []).password == "s3cret"
    assert redact_path(raw.decode(), "M").split("/")[-2] == "M"


@pytest.mark.parametrize("raw", [b"/%256Cive/alice/s3cret/1.ts", b"/alice/s3cret/%2531"])
def test_a_doubly_encoded_stream_path_is_redacted_all_the_same(raw):
    """A server decodes once, so classify sees no stream; what is stored keeps no password anyway."""
    assert "s3cret" not in redact_path(raw.decode(), "M")


@pytest.mark.parametrize("path", ["/images/2024/1.png", "/static/v2/1.css", "/c/img/1.png", "/c/u/1", "/_seized/x/1"])
def test_a_path_that_is_no_stream_is_stored_as_sent(path):
    assert classify(path.encode(), b"", None, []).kind != STREAM
    assert redact_path(path, "M") == path


@pytest.mark.parametrize("path, account", [(b"/c/0000/77.m3u8", "c"), (b"/C/s3cret/1", "C"), (b"/c/s3cret/1.ts", "c")])
def test_a_user_named_like_the_portal_directory_is_a_stream_user(path, account):
    """What redact_path masks is what classify takes for the password (and HMACs), for user c too."""
    found = classify(path, b"", None, [])
    assert (found.kind, found.account) == (STREAM, account)
    assert redact_path(path.decode(), "M").split("/")[2] == "M" and path.split(b"/")[2].decode() == found.password


def test_an_encoded_slash_stays_inside_its_segment():
    assert info(b"/live/alice/p%2Fss/1234.ts")[2:4] == ("alice", "p/ss")


@pytest.mark.parametrize("path, query", [(b"/player_api.php", "username=\u00e9lodie&password=p\u00e4ss".encode()),
                                         ("/live/\u00e9lodie/p\u00e4ss/1.ts".encode(), b"")])
def test_raw_utf8_credentials_read_as_their_percent_encoded_form(path, query):
    assert info(path, query)[2:4] == ("\u00e9lodie", "p\u00e4ss")
