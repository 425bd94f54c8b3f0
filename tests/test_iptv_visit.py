"""Issue 14: what a box shows without playing anything (its channel list, categories, guide and
messages) carries the visit itself: that the service was seized, the visitor's IP and, where a
title has room, the source port and time of this very request. Every protocol is asked through a
trusted proxy (the proxied server), so each visit has an IP and port the test chose; answers are
read with the parsers the suite has (m3u-ipytv, py-xmltv, JSON, ElementTree)."""

import base64
import html
import itertools
import json
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from ipytv import playlist
from xmltv.models import Tv
from xsdata.formats.dataclass.parsers import XmlParser

from app.notice.iptv import IptvNotice, stalker, visit_texts
from app.notice.texts import load_languages
from helpers import request

HOST = "seized-iptv.example"
AGENCY = "Test Police Cyber Unit"
IPV6 = "2001:db8:85a3::8a2e:370:7334"
PORTS = itertools.count(41001)  # a fresh source port per visit, so each answer is told apart by it


def visit(server, target, ip=IPV6, port=None, language=None):
    """One request as a trusted proxy forwards it: (response, its hit, the client port claimed)."""
    headers = [("X-Forwarded-For", ip)]
    if port != "none":
        port = port or next(PORTS)
        headers.append(("X-Real-Port", str(port)))
    if language:
        headers.append(("Accept-Language", language))
    response = request(server.public_port, "GET", target, host=HOST, headers=headers)
    assert response.status == 200
    return response, server.row_for_port(response.local_port, by="peer_port"), None if port == "none" else port


def shown_time(row) -> str:
    """The hit's time as the notice shows it: '2026-11-23 06:00:25.123 UTC' (stored: ...T06:00:25.123456Z)."""
    date, _, clock = row["received_at"].partition("T")
    return f"{date} {clock[:12]} UTC"


def b64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


class Shown(list):
    """What one protocol shows, read with a parser: (kind, text, the hit of the answer it is in, the
    port that visit claimed). Kinds: name (an entry of a list: channel, category, genre, bouquet),
    title (a programme's), text (a description or message), page (a MAG page's HTML), address."""

    def __init__(self, server, **visit_options):
        super().__init__()
        self.server, self.options = server, visit_options

    def get(self, target):
        response, row, port = visit(self.server, target, **self.options)
        self.row, self.port = row, port
        return response

    def add(self, kind, *texts):
        self.extend((kind, text, self.row, self.port) for text in texts)

    def of(self, kind):
        return [entry for entry in self if entry[0] == kind]


def xtream(shown):
    def ask(action):
        return json.loads(shown.get(f"/player_api.php?username=v&password=p&action={action}").body)

    for action in ("get_live_categories", "get_vod_categories", "get_series_categories"):
        shown.add("name", *(c["category_name"] for c in ask(action)))
    for action in ("get_live_streams", "get_vod_streams"):
        shown.add("name", *(s["name"] for s in ask(action)))
    series = ask("get_series")
    shown.add("name", *(s["name"] for s in series))
    shown.add("text", *(s["plot"] for s in series))
    info = ask("get_series_info&series_id=3")
    shown.add("name", info["info"]["name"], info["seasons"][0]["name"])
    shown.add("title", *(e["title"] for e in info["episodes"]["1"]))
    shown.add("text", info["info"]["plot"], info["episodes"]["1"][0]["info"]["plot"])
    vod = ask("get_vod_info&vod_id=2")
    shown.add("name", vod["info"]["name"], vod["movie_data"]["name"])
    shown.add("text", vod["info"]["plot"])
    for action in ("get_short_epg&stream_id=1&limit=4", "get_simple_data_table&stream_id=1"):
        listings = ask(action)["epg_listings"]
        shown.add("title", *(b64(p["title"]) for p in listings))
        shown.add("text", *(b64(p["description"]) for p in listings))
    shown.add("text", ask("")["user_info"]["message"])


def m3u(shown):
    channel = playlist.loads(shown.get("/get.php?username=v&password=p&type=m3u_plus&output=ts").text)[0]
    shown.add("name", channel.name, channel.attributes["tvg-name"], channel.attributes["group-title"])


def bouquet(shown):
    lines = shown.get("/get.php?username=v&password=p&type=enigma22_script").text.splitlines()
    # #NAME, the channel's service name and its #DESCRIPTION (what the receiver lists), a marker with the address.
    shown.add("name", lines[0].removeprefix("#NAME "), lines[1].split(":", 11)[11])
    shown.add("title", lines[2].removeprefix("#DESCRIPTION "))
    shown.add("address", lines[4].removeprefix("#DESCRIPTION "))


def enigma2_php(shown):
    for kind in ("get_live_categories", "get_live_streams"):
        root = ET.fromstring(shown.get(f"/enigma2.php?username=v&password=p&type={kind}&cat_id=1").body)
        shown.add("name", root.findtext("playlist_name"), b64(root.find("channel").findtext("title")))
        shown.add("text", b64(root.find("channel").findtext("description")))


def xmltv(shown):
    tv = XmlParser().from_string(shown.get("/xmltv.php?username=v&password=p").text, Tv)
    programme = tv.programme[0]
    shown.add("name", *tv.channel[0].display_name[0].content)
    shown.add("title", *programme.title[0].content)
    shown.add("text", *programme.desc[0].content)
    shown.add("address", *programme.sub_title[0].content)


def stalker_portal(shown):
    def ask(query):
        return json.loads(shown.get(f"/portal.php?{query}&JsHttpRequest=1-xml").body)["js"]

    profile = ask("type=stb&action=get_profile&mac=00:1A:79:00:00:20")
    assert profile["status"] == 1
    shown.add("text", profile["msg"])  # Kodi's pvr.stalker shows msg as text
    shown.add("page", profile["block_msg"])
    shown.add("page", ask("type=stb&action=get_localization")["cut_off_msg"])
    event = ask("type=watchdog&action=get_events&cur_play_type=1&event_active_id=0&init=0")["data"]
    assert event["event"] == "send_msg" and event["id"] == 1
    shown.add("page", event["msg"])  # the pushed pop-up
    shown.add("name", *(c["name"] for c in ask("type=itv&action=get_all_channels")["data"]))
    shown.add("name", *(c["name"] for c in ask("type=itv&action=get_ordered_list&genre=*&p=1")["data"]))
    shown.add("name", *(g["title"] for g in ask("type=itv&action=get_genres")))
    short = ask("type=itv&action=get_short_epg&ch_id=1&size=3")
    shown.add("title", *(p["name"] for p in short))
    shown.add("text", *(p["descr"] for p in short))
    guide = ask("type=itv&action=get_epg_info&period=5")["data"]["1"]
    shown.add("title", *(p["name"] for p in guide))
    shown.add("text", *(p["descr"] for p in guide))
    table = ask("type=epg&action=get_simple_data_table&ch_id=1&date=&p=0")["data"]  # one channel's guide page
    shown.add("title", *(p["name"] for p in table))
    grid = ask("type=epg&action=get_data_table&ch_id=1&from_ch_id=1&fav=0")["data"]  # the guide grid
    assert [row["ch_id"] for row in grid] == ["1"]
    shown.add("name", grid[0]["name"])
    shown.add("title", *(p["name"] for p in grid[0]["epg"]))
    assert len(guide) == 5 and len(short) == 3 and table and grid[0]["epg"]
    for programme in guide + short:
        assert isinstance(programme["start_timestamp"], int) and programme["stop_timestamp"] - programme["start_timestamp"] == 3600
    # The first is the programme on when the guide was asked for: what a box shows as "now".
    asked = datetime.fromisoformat(shown.row["received_at"].replace("Z", "+00:00")).timestamp()
    assert guide[0]["start_timestamp"] <= asked < guide[0]["stop_timestamp"]


PROTOCOLS = {"xtream": xtream, "m3u": m3u, "enigma2-bouquet": bouquet, "enigma2.php": enigma2_php, "xmltv": xmltv,
             "stalker": stalker_portal}
# What each has room for (an M3U's guide is xmltv.php; enigma2.php has no programmes).
KINDS = {"xtream": {"name", "title", "text"}, "m3u": {"name"}, "enigma2-bouquet": {"name", "title", "address"},
         "enigma2.php": {"name", "text"}, "xmltv": {"name", "title", "text", "address"},
         "stalker": {"name", "title", "text", "page"}}


def shown_by(server, protocol, **visit_options) -> Shown:
    shown = Shown(server, **visit_options)
    PROTOCOLS[protocol](shown)
    return shown


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_names_guide_and_messages_carry_the_visit(proxied_server, protocol):
    shown = shown_by(proxied_server, protocol)
    assert {entry[0] for entry in shown} == KINDS[protocol]
    for kind, text, row, port in shown:
        assert (row["client_ip"], row["client_port"]) == (IPV6, port)  # the visit the answer was for
        if kind == "name":
            assert text == f"SEIZED – your IP {IPV6} recorded"
        elif kind == "title":  # the port and time of the very request the answer was for
            assert text == f"SEIZED – recorded: your IP {IPV6}, port {port}, {shown_time(row)}"
        elif kind == "text":
            assert text == (f"This service has been seized by {AGENCY}. Case CASE-42. Your connection has been "
                            f"recorded: IP address {IPV6}, port {port}, {shown_time(row)}.")
        elif kind == "page":  # HTML-escaped for the MAG page; nothing here needs it
            assert f"IP address {IPV6}, port {port}, {shown_time(row)}." in text and AGENCY in text
        else:
            assert text == f"Your IP address: {IPV6} · Source port: {port}"


@pytest.mark.parametrize("protocol", ["xtream", "xmltv", "stalker"])
def test_the_visitors_language(proxied_server, protocol):
    """An English domain, a visitor whose box asks for Italian: the names and guide are Italian."""
    shown = shown_by(proxied_server, protocol, ip="203.0.113.77", language="it-IT,it;q=0.9")
    assert {text for _, text, _, _ in shown.of("name")} == {"SEQUESTRATO – il tuo IP 203.0.113.77 registrato"}
    for _, text, row, port in shown.of("title"):
        assert text == f"SEQUESTRATO – registrato: il tuo IP 203.0.113.77, porta {port}, {shown_time(row)}"
    for _, text, row, port in shown.of("text"):
        assert text == (f"Questo servizio è stato sequestrato da {AGENCY}. Procedimento CASE-42. La tua connessione "
                        f"è stata registrata: indirizzo IP 203.0.113.77, porta {port}, {shown_time(row)}.")


def test_no_port_known_no_port_shown(proxied_server):
    """Behind a proxy that passes no port, the guide says what is known: the IP and the time."""
    shown = shown_by(proxied_server, "xmltv", ip="198.51.100.4", port="none")
    row = shown.row
    assert row["client_port"] is None
    assert [entry[1] for entry in shown.of("title")] == [f"SEIZED – recorded: your IP 198.51.100.4, {shown_time(row)}"]
    assert [entry[1] for entry in shown.of("address")] == ["Your IP address: 198.51.100.4"]


def test_each_visitor_sees_only_their_own_ip(proxied_server):
    """Two boxes asking the same things in turn: neither answer ever holds the other's IP."""
    first, second = "198.51.100.23", "2001:db8:feed::23"
    for _ in range(3):
        for own, other in ((first, second), (second, first)):
            for target in ("/player_api.php?username=same&password=p&action=get_live_streams",
                           "/get.php?username=same&password=p&type=m3u_plus", "/xmltv.php?username=same&password=p",
                           "/portal.php?type=itv&action=get_epg_info&mac=00:1A:79:00:00:21"):
                response, row, _ = visit(proxied_server, target, ip=own)
                assert row["client_ip"] == own
                assert own in response.text and other not in response.text


def test_direct_client_sees_its_address_and_port(server):
    """No proxy: the TCP peer's own address and source port (the suite's plain server)."""
    response = request(server.public_port, "GET", "/player_api.php?username=d&password=p&action=get_short_epg", host=HOST)
    row = server.row_for_port(response.local_port)
    title = b64(json.loads(response.body)["epg_listings"][0]["title"])
    assert title == f"SEIZED – recorded: your IP 127.0.0.1, port {response.local_port}, {shown_time(row)}"


def test_stalker_page_texts_are_escaped_for_the_mag_page():
    """The MAG portal sets block_msg, cut_off_msg and pushed messages as HTML; an authority's name
    with markup characters reaches the screen as text. Kodi's msg is plain text."""
    texts = visit_texts(load_languages()["en"], "Police <Unit> & Co", None, "192.0.2.9", 4242, "2026-11-23 06:00:25.123 UTC")
    notice = IptvNotice(**texts, base_url="http://h", host="h", port=80, scheme="http", lang="en", now=1_795_000_000)
    profile = json.loads(stalker(notice, {"action": "get_profile"})[2])["js"]
    event = json.loads(stalker(notice, {"type": "watchdog", "action": "get_events"})[2])["js"]["data"]
    cut_off = json.loads(stalker(notice, {"action": "get_localization"})[2])["js"]["cut_off_msg"]
    for shown in (profile["block_msg"], event["msg"], cut_off):
        assert "Police &lt;Unit&gt; &amp; Co" in shown and "<" not in shown
        assert html.unescape(shown) == profile["msg"]
    assert profile["msg"].startswith("This service has been seized by Police <Unit> & Co. Your connection")
