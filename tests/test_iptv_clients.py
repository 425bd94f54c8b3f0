"""Real third-party IPTV client code from PyPI, driven against the running server: an Xtream
client (pyxtream), an M3U parser (m3u-ipytv) and an XMLTV parser (py-xmltv). None is ours."""

import json

from ipytv import playlist
from pyxtream import XTream
from xmltv.models import Tv
from xsdata.formats.dataclass.parsers import XmlParser

NAME = "SEIZED – your IP 127.0.0.1 recorded"  # a name as a client on 127.0.0.1 is shown it
HEADLINE = "SEIZED – recorded: your IP 127.0.0.1, port "  # how its programme titles begin


def test_pyxtream_logs_in_and_lists_the_notice(iptv_server, tmp_path):
    base = f"http://127.0.0.1:{iptv_server.public_port}"
    client = XTream("seized", "xclient", "xc-secret", base, cache_path=str(tmp_path), reload_time_sec=-1)
    assert client.state["authenticated"]
    assert client.load_iptv()
    assert [channel.name for channel in client.channels] == [NAME]
    assert [movie.name for movie in client.movies] == [NAME]
    assert [series.name for series in client.series] == [NAME]
    assert NAME in {group.name for group in client.groups}
    client.get_series_info_by_id(client.series[0])
    episodes = [episode for season in client.series[0].seasons.values() for episode in season.episodes.values()]
    assert len(episodes) == 1 and episodes[0].title.startswith(HEADLINE)
    rows = iptv_server.wait_rows("account = 'xclient'", count=8)
    actions = {r["query"].partition("action=")[2].partition("&")[0] for r in rows}
    assert {"", "get_live_categories", "get_live_streams", "get_vod_streams", "get_series"} <= actions
    assert all(r["client_kind"] == "xtream_api" and "xc-secret" not in json.dumps(r) for r in rows)


def test_m3u_ipytv_parses_the_playlist(iptv_server):
    base = f"http://127.0.0.1:{iptv_server.public_port}"
    parsed = playlist.loadu(f"{base}/get.php?username=m3uclient&password=p&type=m3u_plus&output=ts")
    assert parsed.get_attributes()["x-tvg-url"] == f"{base}/xmltv.php?account=m3uclient"
    assert parsed.length() == 1
    channel = parsed[0]
    assert channel.name == NAME
    assert channel.attributes["tvg-id"] == "notice" and channel.attributes["group-title"] == NAME
    assert channel.url == f"{base}/_seized/video/en.ts?account=m3uclient"


def test_py_xmltv_parses_the_guide_and_it_matches_the_playlist(iptv_server):
    from helpers import request
    response = request(iptv_server.public_port, "GET", "/xmltv.php?username=epgclient&password=p", host="seized-iptv.example")
    tv = XmlParser().from_string(response.text, Tv)
    assert [channel.id for channel in tv.channel] == ["notice"]  # the playlist's tvg-id
    assert tv.channel[0].display_name[0].content == [NAME]
    programme = tv.programme[0]
    assert programme.channel == "notice" and programme.title[0].content[0].startswith(HEADLINE + str(response.local_port))
    assert programme.sub_title[0].content == [f"Your IP address: 127.0.0.1 · Source port: {response.local_port}"]
    assert "Test Police Cyber Unit" in programme.desc[0].content[0] and "127.0.0.1" in programme.desc[0].content[0]
