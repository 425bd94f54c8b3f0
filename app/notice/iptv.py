"""The notice in the forms IPTV clients show: Xtream Codes API JSON, M3U and Enigma2 bouquets,
XMLTV, Enigma2 XML, Stalker/Ministra JSON for MAG boxes. Every answer is a *valid* session whose
one channel, category, programme and message is the notice (a failed login would only show the
client's own "invalid password"); the names, the programme and the messages carry the visit itself
(the visitor's IP, source port and time), so a box that shows nothing but a channel list and a guide
still shows the visitor that their connection was recorded. Always 200: players treat anything else as their own error.
Field names and types follow what the clients' own source code reads (tests/test_iptv_clients.py drives
third-party clients against the real server)."""

from __future__ import annotations

import base64
import html
import json
import secrets
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

from ..clients import account_query

JSON = [(b"content-type", b"application/json; charset=utf-8")]
# Every IPTV answer: not cached, and never sniffed into HTML by a browser that is shown one.
NO_STORE = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
# What JSON may hold unescaped but a page or script that mistakes it for markup must not see raw
# (the username is echoed from the request): as \uXXXX escapes, which every JSON parser reads back.
JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
CHANNEL_ID = "notice"
DAY, HOUR = 86_400, 3_600
ENIGMA_TYPES = ("enigma", "dreambox", "gigablue", "octagon", "spark", "zorro", "gst", "ariva", "fortec", "geant", "mediastar", "starlive")


@dataclass(frozen=True, slots=True)
class IptvNotice:
    """What one answer needs: the notice's texts for this visit (see visit_texts), where our URLs
    point, and whose they are (every URL handed out carries the account, never the password). Built
    per request, never shared: the texts hold one visitor's IP."""

    message: str  # in full: authority, case, the visitor's IP, port and time (descriptions, plots, pop-ups)
    name: str  # short, for lists: seized and the visitor's IP (channel, category, genre and bouquet names)
    headline: str  # a programme title: seized, IP, port and time
    address: str  # the IP and port on a line of their own (XMLTV sub-title, an Enigma2 marker line)
    base_url: str  # e.g. http://seized-iptv.example:8080, built from a validated Host
    host: str
    port: int
    scheme: str
    lang: str
    now: int  # epoch seconds
    account: str | None = None  # Xtream username or Stalker MAC of the request answered

    def url(self, path: str) -> str:
        """A link we hand out: the player requests it as given, so it names the account itself."""
        return self.base_url + path + account_query(self.account, "&" if "?" in path else "?")

    @property
    def logo(self) -> str:
        return self.url("/_seized/seal.png")

    def stream_url(self, extension: str = "ts") -> str:
        return self.url(f"/_seized/video/{self.lang}.{extension}")


def visit_texts(texts: dict[str, str], agency: str, case_ref: str | None, ip: str | None, port: int | None,
                when: str) -> dict[str, str]:
    """An IptvNotice's texts for one visit, in one language (`texts`: a languages/*.toml); `when` is
    the visit's time as the HTML notice shows it. A port that is not known is left out."""
    values = {"ip": ip or "?", "port": "" if port is None else texts["iptv_port"].format(port=port), "time": when}
    case = texts["iptv_case"].format(case_ref=case_ref) if case_ref else ""
    address = f"{texts['your_ip']}: {values['ip']}" + ("" if port is None else f" · {texts['your_port']}: {port}")
    return {"message": texts["iptv_visit"].format(agency=agency, case=case, **values),
            "name": texts["iptv_name"].format(**values), "headline": texts["iptv_headline"].format(**values),
            "address": address}


def _json(value) -> tuple[int, list, bytes]:
    # Outside strings these characters never occur in JSON, so the translation only touches string contents.
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in JSON_ESCAPES:  # str.replace, not str.translate: a guide of 24 programmes is ~15 kB
        text = text.replace(raw, escaped)
    return 200, [*JSON, *NO_STORE], text.encode("utf-8", "backslashreplace")  # a lone surrogate: a JSON escape


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


# -- Xtream Codes ----------------------------------------------------------------------------

def user_info(n: IptvNotice, username: str) -> dict:
    return {
        "username": username, "password": "",  # never echoed
        # A date a year ahead, not null: some clients (pyxtream) need a number, some treat the past as expired.
        "message": n.message, "auth": 1, "status": "Active", "exp_date": str(n.now + 365 * DAY), "is_trial": "0",
        "active_cons": "0", "created_at": str(n.now - DAY), "max_connections": "1",
        "allowed_output_formats": ["ts", "m3u8"],
    }


def server_info(n: IptvNotice) -> dict:
    return {
        "url": n.host, "port": str(n.port), "https_port": "443", "server_protocol": n.scheme, "rtmp_port": "0",
        "timezone": "UTC", "timestamp_now": n.now, "time_now": _stamp(n.now), "process": True,
    }


# One category per content type, each with its own id: clients look categories up by id alone.
LIVE, MOVIES, SERIES = "1", "2", "3"


def categories(n: IptvNotice, category_id: str = LIVE) -> list[dict]:
    return [{"category_id": category_id, "category_name": n.name, "parent_id": 0}]


def live_streams(n: IptvNotice) -> list[dict]:
    return [{"num": 1, "name": n.name, "stream_type": "live", "stream_id": 1, "stream_icon": n.logo,
             "epg_channel_id": CHANNEL_ID, "added": str(n.now), "is_adult": 0, "category_id": LIVE, "category_ids": [1],
             "custom_sid": "", "tv_archive": 0, "direct_source": "", "tv_archive_duration": 0}]


def vod_streams(n: IptvNotice) -> list[dict]:
    return [{"num": 1, "name": n.name, "title": n.name, "stream_type": "movie", "stream_id": 2, "stream_icon": n.logo,
             "rating": "0", "rating_5based": 0, "added": str(n.now), "is_adult": 0, "category_id": MOVIES, "category_ids": [2],
             "container_extension": "mp4", "custom_sid": "", "direct_source": ""}]


def series_list(n: IptvNotice) -> list[dict]:
    return [{"num": 1, "name": n.name, "title": n.name, "series_id": 3, "cover": n.logo, "plot": n.message, "cast": "",
             "director": "", "genre": "", "releaseDate": "", "last_modified": str(n.now), "rating": "0",
             "rating_5based": 0, "backdrop_path": [], "youtube_trailer": "", "episode_run_time": "0",
             "category_id": SERIES, "category_ids": [3]}]


def series_info(n: IptvNotice) -> dict:
    info = {"name": n.name, "title": n.name, "cover": n.logo, "plot": n.message, "cast": "", "director": "",
            "genre": "", "releaseDate": "", "last_modified": str(n.now), "rating": "0", "rating_5based": 0,
            "backdrop_path": [], "youtube_trailer": "", "episode_run_time": "0", "category_id": SERIES}
    episode = {"id": "3", "episode_num": 1, "title": n.headline, "container_extension": "mp4",
               "info": {"plot": n.message, "movie_image": n.logo, "duration_secs": 12, "duration": "00:00:12"},
               "custom_sid": "", "added": str(n.now), "season": 1, "direct_source": ""}
    season = {"air_date": "", "episode_count": 1, "id": 1, "name": n.name, "overview": n.message,
              "season_number": 1, "cover": n.logo, "cover_big": n.logo}
    return {"seasons": [season], "info": info, "episodes": {"1": [episode]}}


def vod_info(n: IptvNotice) -> dict:
    return {"info": {"name": n.name, "title": n.name, "plot": n.message, "description": n.message,
                     "movie_image": n.logo, "cover_big": n.logo, "duration_secs": 12, "duration": "00:00:12",
                     "genre": "", "director": "", "cast": "", "releasedate": "", "rating": "0"},
            "movie_data": {"stream_id": 2, "name": n.name, "title": n.name, "added": str(n.now), "category_id": MOVIES,
                           "container_extension": "mp4", "custom_sid": "", "direct_source": ""}}


def epg_listings(n: IptvNotice, simple: bool) -> dict:
    start, stop = n.now - DAY, n.now + DAY
    listing = {"id": "1", "epg_id": "1", "title": _b64(n.headline), "lang": n.lang, "start": _stamp(start),
               "end": _stamp(stop), "description": _b64(n.message), "channel_id": CHANNEL_ID,
               "start_timestamp": str(start), "stop_timestamp": str(stop)}
    if simple:
        listing.update(now_playing=1, has_archive=0)
    return {"epg_listings": [listing]}


def xtream(n: IptvNotice, params: dict[str, str]):
    """player_api.php: unknown or missing actions get the login answer, never an error."""
    action = params.get("action", "").lower()
    answers = {
        "get_live_categories": categories,
        "get_vod_categories": lambda n: categories(n, MOVIES),
        "get_series_categories": lambda n: categories(n, SERIES),
        "get_live_streams": live_streams, "get_vod_streams": vod_streams, "get_series": series_list,
        "get_series_info": series_info, "get_vod_info": vod_info,
        "get_short_epg": lambda n: epg_listings(n, simple=False),
        "get_simple_data_table": lambda n: epg_listings(n, simple=True),
    }
    if action in answers:
        return _json(answers[action](n))
    return _json({"user_info": user_info(n, params.get("username", "")), "server_info": server_info(n)})


def panel(n: IptvNotice, params: dict[str, str]):
    """panel_api.php: the login answer plus categories and channels; action=get_epg lists the programme."""
    if params.get("action", "").lower() == "get_epg":
        return _json(epg_listings(n, simple=False)["epg_listings"])
    return _json({
        "user_info": user_info(n, params.get("username", "")), "server_info": server_info(n),
        "categories": {"live": categories(n), "movie": categories(n, MOVIES), "series": categories(n, SERIES)},
        "available_channels": {"1": live_streams(n)[0], "2": vod_streams(n)[0]},
    })


def enigma2(n: IptvNotice, params: dict[str, str]):
    """enigma2.php (XStreamity and other Enigma2 plugins): XML, titles base64-encoded."""
    if params.get("type", "").lower() in ("get_live_streams", "get_vod_streams", "get_series_streams"):
        item = (f"<channel><title>{_b64(n.name)}</title><description>{_b64(n.message)}</description>"
                f"<desc_image><![CDATA[{n.logo}]]></desc_image><category_id>1</category_id>"
                f"<stream_url><![CDATA[{n.stream_url()}]]></stream_url></channel>")
    else:
        item = (f"<channel><title>{_b64(n.name)}</title><description>{_b64(n.message)}</description>"
                f"<category_id>1</category_id><playlist_url><![CDATA[{n.url('/enigma2.php?type=get_live_streams&cat_id=1')}]]>"
                f"</playlist_url></channel>")
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<items><playlist_name>{xml_escape(n.name)}</playlist_name>{item}</items>\n'
    return 200, [(b"content-type", b"application/xml; charset=utf-8"), *NO_STORE], body.encode("utf-8")


# -- playlists and EPG -----------------------------------------------------------------------

def _m3u_attr(text: str) -> str:
    """Attribute values in #EXTINF lines: no quotes, commas or line breaks (they end the field)."""
    return " ".join(text.replace('"', "'").replace(",", " ").split())


def playlist(n: IptvNotice, params: dict[str, str]):
    """get.php: an M3U playlist, or an Enigma2 bouquet for satellite-receiver types."""
    kind = params.get("type", "m3u_plus").lower()
    extension = "m3u8" if params.get("output", "").lower() in ("m3u8", "hls") else "ts"
    stream = n.stream_url(extension)
    if kind.startswith(ENIGMA_TYPES):
        name, headline, address = (" ".join(text.split()) for text in (n.name, n.headline, n.address))
        service = stream.replace("%", "%25").replace(":", "%3a")  # as Enigma2 encodes it: it decodes every %XX
        # #DESCRIPTION is what the receiver lists as the channel's name; the marker (1:64) is a
        # line of text in the list, for the address alone (an IPv6 one would not fit beside the rest).
        body = (f"#NAME {name}\n#SERVICE 4097:0:1:1:0:0:0:0:0:0:{service}:{name}\n#DESCRIPTION {headline}\n"
                f"#SERVICE 1:64:1:0:0:0:0:0:0:0::{address}\n#DESCRIPTION {address}\n")
        return 200, [(b"content-type", b"text/plain; charset=utf-8"), *NO_STORE], body.encode("utf-8")
    title = _m3u_attr(n.name)
    body = (f'#EXTM3U x-tvg-url="{n.url("/xmltv.php")}" url-tvg="{n.url("/xmltv.php")}"\n'
            f"# {' '.join(n.message.split())}\n"  # for whoever reads the file itself; players skip comments
            f'#EXTINF:-1 tvg-id="{CHANNEL_ID}" tvg-name="{title}" tvg-logo="{n.logo}" group-title="{title}",{title}\n'
            f"{stream}\n")
    headers = [(b"content-type", b"audio/x-mpegurl; charset=utf-8"),
               (b"content-disposition", b'attachment; filename="playlist.m3u"'), *NO_STORE]
    return 200, headers, body.encode("utf-8")


def xmltv(n: IptvNotice, params: dict[str, str]):
    """xmltv.php: one channel (the playlist's tvg-id) with one programme spanning now +-24 h."""
    def stamp(epoch: int) -> str:
        return time.strftime("%Y%m%d%H%M%S +0000", time.gmtime(epoch))
    name, headline, address, message = (xml_escape(text) for text in (n.name, n.headline, n.address, n.message))
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<tv generator-info-name="seized">\n'
            f'  <channel id="{CHANNEL_ID}"><display-name>{name}</display-name><icon src="{xml_escape(n.logo)}"/></channel>\n'
            f'  <programme start="{stamp(n.now - DAY)}" stop="{stamp(n.now + DAY)}" channel="{CHANNEL_ID}">'
            f'<title lang="{n.lang}">{headline}</title><sub-title lang="{n.lang}">{address}</sub-title>'
            f'<desc lang="{n.lang}">{message}</desc></programme>\n</tv>\n')
    return 200, [(b"content-type", b"application/xml; charset=utf-8"), *NO_STORE], body.encode("utf-8")


# -- Stalker / Ministra (MAG boxes) ----------------------------------------------------------

def _count(params: dict[str, str], key: str, default: int, most: int) -> int:
    """A small positive count from the query (a guide's period or size), within 1..most."""
    value = params.get(key, "")
    return max(1, min(most, int(value))) if value.isdigit() else default


def _stalker_programmes(n: IptvNotice, count: int) -> list[dict]:
    """`count` hour-long programmes from the current hour on, each the notice: a guide shows one
    whatever window it asks for (pvr.stalker keeps only programmes wholly inside its window).
    Fields as Ministra's epg rows, with its computed start/stop timestamps and HH:MM times."""
    first = n.now - n.now % HOUR
    starts = [first + i * HOUR for i in range(count + 1)]
    stamps = [_stamp(start) for start in starts]  # each hour's start is the one before's end
    return [{"id": str(i + 1), "ch_id": "1", "time": stamps[i], "time_to": stamps[i + 1], "duration": HOUR,
             "name": n.headline, "descr": n.message, "real_id": f"1_{starts[i]}", "start_timestamp": starts[i],
             "stop_timestamp": starts[i + 1], "t_time": stamps[i][11:16], "t_time_to": stamps[i + 1][11:16],
             "mark_memo": 0, "mark_archive": 0}
            for i in range(count)]


def stalker(n: IptvNotice, params: dict[str, str]):
    """load.php / portal.php. A valid handshake, then a *blocked* profile (status 1) whose
    block_msg (MAG firmware) and msg (Kodi pvr.stalker) are the notice; cut_off_msg, a pushed
    message (the watchdog's send_msg event), the channel, its genre and its guide carry it too.
    The MAG portal puts block_msg, cut_off_msg and pushed messages into its page as HTML: escaped."""
    kind, action = params.get("type", "").lower(), params.get("action", "").lower()
    channel_cmd = f"ffmpeg {n.stream_url()}"
    page_message = html.escape(n.message, quote=False)
    if action == "handshake":
        return _json({"js": {"token": secrets.token_hex(16).upper(), "random": secrets.token_hex(20), "not_valid": 0}})
    if action == "get_localization":
        return _json({"js": {"cut_off_msg": page_message, "blocking_account_reboot": "Reboot"}})
    if action == "do_auth":
        return _json({"js": True})
    if kind == "watchdog" or action == "get_events":
        # The portal's push: the box shows msg in a pop-up (stb.msg), "[send_time]" before it, and
        # polls again every watchdog_timeout seconds; once confirmed, the same event shows again.
        return _json({"js": {"data": {"msgs": 1, "id": 1, "event": "send_msg", "need_confirm": 0, "msg": page_message,
                                      "reboot_after_ok": 0, "auto_hide_timeout": 0, "send_time": _stamp(n.now)}}})
    if action in ("get_all_channels", "get_ordered_list", "get_all_fav_channels"):
        channel = {"id": "1", "name": n.name, "number": "1", "cmd": channel_cmd, "logo": n.logo, "tv_genre_id": "1",
                   "use_http_tmp_link": "0", "censored": 0, "xmltv_id": CHANNEL_ID}
        return _json({"js": {"total_items": 1, "max_page_items": 14, "selected_item": 0, "cur_page": 0, "data": [channel]}})
    if action == "get_genres":
        return _json({"js": [{"id": "1", "title": n.name, "alias": "notice", "censored": 0}]})
    if action == "get_epg_info":  # the whole guide: programmes per channel id, for `period` hours
        return _json({"js": {"data": {"1": _stalker_programmes(n, _count(params, "period", 3, 24))}}})
    if action == "get_short_epg":  # the current programme and the next few
        return _json({"js": _stalker_programmes(n, _count(params, "size", 5, 10))})
    if action == "get_simple_data_table":  # the guide page of one channel (type=epg): its programmes
        programmes = _stalker_programmes(n, 14)
        return _json({"js": {"total_items": len(programmes), "max_page_items": len(programmes), "selected_item": 0,
                             "cur_page": 1, "data": programmes}})
    if action == "get_data_table":  # the guide grid (type=epg): each channel with its programmes
        row = {"ch_id": "1", "name": n.name, "number": "1", "ch_type": "", "epg_container": 1,
               "epg": _stalker_programmes(n, 6)}
        return _json({"js": {"total_items": 1, "max_page_items": 10, "selected_item": 1, "cur_page": 1, "data": [row]}})
    if action == "create_link":
        return _json({"js": {"id": "1", "cmd": channel_cmd}})
    # get_profile and anything else: the blocking profile.
    return _json({"js": {"id": 1, "name": n.name, "status": 1, "msg": n.message, "block_msg": page_message,
                         "watchdog_timeout": 120, "store_auth_data_on_stb": False, "timeslot": 0}})


RESPONDERS = {"xtream": xtream, "panel": panel, "enigma2": enigma2, "playlist": playlist, "xmltv": xmltv, "stalker": stalker}
