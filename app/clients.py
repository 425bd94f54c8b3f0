"""What kind of client sent a request, which responder answers it, and the identifiers that link
it to a subscriber (Xtream username, Stalker MAC, device fields, the password to be HMAC'd).
Decided by path and parameters only, never by User-Agent: users change their User-Agent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

# client_kind values, stored with every hit
BROWSER, XTREAM, PLAYLIST, EPG, STREAM, STALKER, ENIGMA2, OTHER = (
    "browser", "xtream_api", "playlist", "epg", "stream", "stalker", "enigma2", "other")
CLIENT_KINDS = (BROWSER, XTREAM, PLAYLIST, EPG, STREAM, STALKER, ENIGMA2, OTHER)

STALKER_API = ("/portal.php", "/server/load.php", "/stalker_portal/server/load.php")
STALKER_PAGES = ("/c", "/stalker_portal/c")
VOD_EXTENSIONS = frozenset({"mp4", "mkv", "avi", "mov", "m4v", "wmv", "flv", "webm", "mpg", "mpeg"})
STREAM_ID = re.compile(r"^\d+(\.[A-Za-z0-9]{1,5})?$")
MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
MODEL = re.compile(r"Model:\s*([^;]+)")
# The query parameter that carries the subscriber on every link we hand out (stream, video, logo,
# guide): players request a URL as given, so each later request is attributed to the same account.
ACCOUNT_PARAM = "account"
ACCOUNT_MAX = 256  # characters of an account kept and carried; no subscriber's name is longer


@dataclass(slots=True)
class ClientInfo:
    kind: str
    route: str  # which responder: html, xtream, panel, enigma2, playlist, xmltv, stream, stalker
    params: dict[str, str] = field(default_factory=dict)  # query and form, keys lower-cased
    account: str | None = None
    password: str | None = None  # plaintext, in memory only: the writer keeps an HMAC, never this
    device: dict[str, str] | None = None
    extension: str = ""  # of a stream URL: ts, m3u8, mp4...


OUR_AND_PORTAL_DIRECTORIES = ("_seized", "stalker_portal")  # exact case: a user "C" is a user
# A Stalker portal's own files sit under /c/ (/c/img/1.png): /c/P/ID is a stream of user "c" only
# when ID names a stream (bare digits, or a stream or video extension).
PORTAL_FILES = "c"
STREAM_EXTENSIONS = frozenset({"ts", "m3u8", "m3u", "mpd", "m4s", "aac", "mp3", "mka", "3gp", "ogv"}) | VOD_EXTENSIONS


def decoded_segments(path: str) -> list[str]:
    """A request path's segments, each percent-decoded on its own (an encoded / stays inside its
    segment, as a PHP panel's router would see it): what classification and redaction both look at."""
    return [unquote(segment) if "%" in segment else segment for segment in path.split("/")[1:]]


def _fully_decoded(segment: str) -> str:
    for _ in range(4):  # %2573 -> %73 -> s: however often a client encoded it
        if "%" not in segment:
            break
        decoded = unquote(segment)
        if decoded == segment:
            break
        segment = decoded
    return segment


def _short_stream_id(segment: str, head: str) -> bool:
    """The ID of /U/P/ID(.ext): digits, with no extension or one a stream or video has."""
    if not STREAM_ID.match(segment):
        return False
    extension = segment.rpartition(".")[2].lower() if "." in segment else ""
    if extension and extension not in STREAM_EXTENSIONS:
        return False
    return not (head == PORTAL_FILES and not extension)  # /c/x/1: a portal file; /c/P/1.ts: user "c"


def credential_segments(segments: list[str]) -> tuple[int, int] | None:
    """Where the username and password sit in a stream path (decoded segments), as indexes into its segments."""
    if not segments:
        return None
    head = segments[0].lower()
    if head in ("live", "movie", "series", "timeshift") and len(segments) >= 4:
        return 1, 2
    if head == "hls" and len(segments) >= 4:  # /hls/U/P/... [unverified layout]
        return 1, 2
    if head == "hlsr" and len(segments) >= 5:  # /hlsr/TOKEN/U/P/... [unverified layout]
        return 2, 3
    if len(segments) == 3 and segments[0] not in OUR_AND_PORTAL_DIRECTORIES and _short_stream_id(segments[2], segments[0]):
        return 0, 1  # /U/P/ID(.ext)
    return None


def redact_path(path: str, mask: str) -> str:
    """The password segment of a stream path replaced by `mask`; any other path unchanged.

    Decided on the percent-decoded segments, as classify() decides (so /%6Cive/U/P/1.ts loses its
    password), and also on segments decoded until nothing changes (a doubly encoded /%256Cive/...):
    a password a server might read is never kept, whatever the encoding."""
    if path.count("/") < 3:  # no stream path is that short
        return path
    raw = path.split("/")[1:]
    where = credential_segments(decoded_segments(path))
    if where is None and "%" in path:
        where = credential_segments([_fully_decoded(segment) for segment in raw])
    if where is None:
        return path
    raw[where[1]] = mask
    return "/" + "/".join(raw)


def _account(value: str | None) -> str | None:
    """An account as kept: capped, so the one a link carries is the one its request is stored with."""
    return value[:ACCOUNT_MAX] if value else None


def account_query(account: str | None, separator: str = "?") -> str:
    """`?account=...` for a link handed to this account's player ('' for none): percent-encoded
    whole (no quote, space, line break, '&' or '+' survives), so the link stays one token in any
    M3U, XML or JSON answer and reads back as the same account. Never the password."""
    if not account:
        return ""
    return f"{separator}{ACCOUNT_PARAM}={quote(account[:ACCOUNT_MAX], safe='', errors='replace')}"


def _text(raw: bytes) -> str:
    """Raw bytes as the text a client meant: UTF-8 where valid (as percent-encoded bytes are read),
    else latin-1, so one account sent raw or percent-encoded is the same account."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def param_key(key: str) -> str:
    """A decoded query or form key as compared: classification and redaction use the same rule."""
    return key.strip().lower()


def _params(query: bytes, form: bytes | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for source in (form or b"", query):  # query wins, as PHP's $_REQUEST order would have it
        for key, value in parse_qsl(_text(source), keep_blank_values=True):
            params[param_key(key)] = value
    return params


def _cookie(headers, name: bytes) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.split(b";"):
                k, _, v = part.strip().partition(b"=")
                if k == name:
                    return unquote(v.decode("latin-1"))
    return None


def _header(headers, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in headers if key == name), None)


def classify(raw_path: bytes, query: bytes, form: bytes | None, headers) -> ClientInfo:
    raw = _text(raw_path)
    segments = decoded_segments(raw)
    path = unquote(raw) if "%" in raw else raw
    lower = path.lower().rstrip("/") or "/"

    if lower in ("/player_api.php", "/panel_api.php", "/get.php", "/xmltv.php", "/enigma2.php", "/streaming/timeshift.php"):
        params = _params(query, form)
        kind, route = {
            "/player_api.php": (XTREAM, "xtream"), "/panel_api.php": (XTREAM, "panel"), "/get.php": (PLAYLIST, "playlist"),
            "/xmltv.php": (EPG, "xmltv"), "/enigma2.php": (ENIGMA2, "enigma2"), "/streaming/timeshift.php": (STREAM, "stream"),
        }[lower]
        account = params.get("username") or params.get(ACCOUNT_PARAM)  # ours: the links we hand out carry it
        return ClientInfo(kind, route, params, _account(account), params.get("password") or None,
                          extension="ts" if route == "stream" else "")

    where = credential_segments(segments)
    stalker_page = lower in STALKER_PAGES or lower.startswith(("/c/", "/stalker_portal/c/"))
    if lower in STALKER_API or (stalker_page and where is None):  # /c/P/1.ts: a stream of user "c"
        params = _params(query, form)
        mac = params.get("mac") or _cookie(headers, b"mac")
        device = {k: params[k] for k in ("sn", "device_id", "device_id2", "stb_type", "login") if params.get(k)}
        if "sn" not in device and _header(headers, b"sn"):
            device["sn"] = _header(headers, b"sn")
        model = MODEL.search(_header(headers, b"x-user-agent") or "")
        if model:
            device["model"] = model.group(1).strip()
        route = "stalker" if lower in STALKER_API else "html"
        password = params.get("password") if params.get("action", "").lower() == "do_auth" else None
        return ClientInfo(STALKER, route, params, _account(mac.upper() if mac and MAC.match(mac) else mac), password or None,
                          device or None)

    if lower.startswith("/_seized/"):  # our own links (video, logo), each carrying its account
        account = _account(_params(query, None).get(ACCOUNT_PARAM))
        if lower.startswith("/_seized/video/"):
            return ClientInfo(STREAM, "video", account=account, extension=lower.rpartition(".")[2])
        accept = _header(headers, b"accept") or ""
        return ClientInfo(BROWSER if "text/html" in accept else OTHER, "html", account=account)

    head = segments[0].lower() if segments else ""
    if where is not None or head in ("play", "hls", "hlsr"):
        last = segments[-1]
        extension = last.rpartition(".")[2].lower() if "." in last else "ts"
        username = segments[where[0]] if where else None
        password = segments[where[1]] if where else None
        return ClientInfo(STREAM, "stream", account=_account(username), password=password or None, extension=extension)

    accept = _header(headers, b"accept") or ""
    return ClientInfo(BROWSER if "text/html" in accept else OTHER, "html")
