"""app/redact.py: what is redacted before anything is stored, and that nothing else is altered."""

import base64
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

import pytest
from hypothesis import assume, given, settings, strategies as st

from app.clients import OUR_AND_PORTAL_DIRECTORIES
from app.redact import PASSWORD_KEYS, REDACTED, redact_authorization, redact_form, redact_header, redact_url

PROPERTY = settings(deadline=None, database=None)
R = REDACTED


@pytest.mark.parametrize("encoded, expected", [
    ("a=1&password=x", f"a=1&password={R}"),
    ("username=alice&password=s3cret&action=get_live_streams", f"username=alice&password={R}&action=get_live_streams"),
    ("pass=1&pwd=2&passwd=3&Password=4&PASS=5", f"pass={R}&pwd={R}&passwd={R}&Password={R}&PASS={R}"),
    ("pass%77ord=x", f"pass%77ord={R}"), ("+password+=x", f"+password+={R}"), ("%20pwd=x", f"%20pwd={R}"),
    ("password=a=b=c", f"password={R}"), ("password=a%26b", f"password={R}"),
    ("password=x&password=y", f"password={R}&password={R}"),
    ("password=", "password="), ("password", "password"), ("", ""), ("&&", "&&"), ("a=1", "a=1"),
    ("passwords=x&mypassword=y&password_hint=z", "passwords=x&mypassword=y&password_hint=z"),
    ("username=password&x=pass", "username=password&x=pass"),  # a value named like a key is a value
    ("a=1;password=x", "a=1;password=x"),  # `;` is not a separator (Python 3.10+, as parse_qsl)
])
def test_redact_form(encoded, expected):
    assert redact_form(encoded) == expected


KEY = st.one_of(st.sampled_from(["username", "action", "type", "output", "stream", "a", "passwordx"]),
                st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
PASSWORD_KEY = st.builds(lambda key, spaces: spaces[0] + key + spaces[1],
                         st.sampled_from(sorted(PASSWORD_KEYS)).flatmap(
                             lambda k: st.sampled_from([k, k.upper(), k.title(), k.swapcase()])),
                         st.tuples(st.sampled_from(["", " "]), st.sampled_from(["", " "])))
VALUE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16)


@PROPERTY
@given(pairs=st.lists(st.tuples(st.one_of(KEY, PASSWORD_KEY), VALUE), max_size=6),
       encode=st.sampled_from([quote_plus, quote, lambda s: quote(s, safe="=+ ")]))
def test_no_password_value_survives_a_form(pairs, encode):
    """Whatever the keys, values and their encoding, a parser of the redacted form finds every
    password-like key holding only the mask, and every other pair as it was."""
    encoded = "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
    parsed = parse_qsl(redact_form(encoded), keep_blank_values=True)
    original = parse_qsl(encoded, keep_blank_values=True)
    assert len(parsed) == len(original)
    for (key, value), (_, before) in zip(parsed, original, strict=True):
        if key.strip().lower() in PASSWORD_KEYS:
            assert value in (R, "")
        else:
            assert value == before


@PROPERTY
@given(password=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1), other=st.dictionaries(KEY, VALUE, max_size=4))
def test_urlencoded_passwords_never_survive(password, other):
    other = {k: v for k, v in other.items() if k.strip().lower() not in PASSWORD_KEYS}
    encoded = urlencode({**other, "password": password})
    redacted = redact_form(encoded)
    # everything before it unchanged, and of the password nothing but the mask
    assert redacted == encoded.rpartition("password=")[0] + f"password={R}"


@pytest.mark.parametrize("value, expected", [
    ("Basic " + base64.b64encode(b"alice:s3cret").decode(), f"Basic alice:{R}"),
    ("basic   " + base64.b64encode(b"alice:s3:cr:et").decode() + "  ", f"basic alice:{R}"),
    ("Basic " + base64.b64encode("\u00e9lodie:p\u00e4ss".encode()).decode(), f"Basic \u00e9lodie:{R}"),
    ("Basic " + base64.b64encode(b":s3cret").decode(), f"Basic :{R}"),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), f"Basic {R}"),  # not UTF-8: nothing of it kept
    ("Basic not!base64", f"Basic {R}"), ("Basic YWxpY2U6czNjcmV0", f"Basic alice:{R}"), ("Basic YWxpY2U6czNjcmV", f"Basic {R}"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", f"Bearer {R}"), ("Digest username=\"a\", response=\"b\"", f"Digest {R}"),
    ("Token", R), ("", ""), ("   ", "   "), ("sz_abc_secret", R), ("Bearer\tsecret", R),
])
def test_redact_authorization(value, expected):
    assert redact_authorization(value) == expected


USER = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=":"), max_size=12)
SECRET = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24)


@PROPERTY
@given(user=USER, password=SECRET, scheme=st.sampled_from(["Basic", "basic", "BASIC"]))
def test_basic_keeps_only_the_username(user, password, scheme):
    value = f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert redact_authorization(value) == f"{scheme} {user}:{R}"


@PROPERTY
@given(scheme=st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}\Z"), credentials=st.from_regex(r"\A[!-~]{1,40}\Z"))
def test_other_schemes_keep_only_their_name(scheme, credentials):
    assume(scheme.lower() != "basic")
    assert redact_authorization(f"{scheme} {credentials}") == f"{scheme} {R}"


@pytest.mark.parametrize("url, expected", [
    ("http://seized.example/player_api.php?username=a&password=s3cret", f"http://seized.example/player_api.php?username=a&password={R}"),
    ("http://alice:s3cret@seized.example:8080/", f"http://alice:{R}@seized.example:8080/"),
    ("http://alice@seized.example/", "http://alice@seized.example/"),
    ("https://alice:p@ss@seized.example/x", f"https://alice:{R}@seized.example/x"),
    ("http://seized.example/live/alice/s3cret/1.ts", f"http://seized.example/live/alice/{R}/1.ts"),
    ("http://seized.example/alice/s3cret/1234", f"http://seized.example/alice/{R}/1234"),
    ("http://seized.example/live/alice/s3cret/1.ts?password=x#frag", f"http://seized.example/live/alice/{R}/1.ts?password={R}#frag"),
    ("http://seized.example/get.php?password=x#pass=y", f"http://seized.example/get.php?password={R}#pass=y"),
    ("http://seized.example?password=x", f"http://seized.example?password={R}"),
    ("/player_api.php?password=x", f"/player_api.php?password={R}"),
    ("http://seized.example/", "http://seized.example/"), ("http://seized.example", "http://seized.example"),
    ("", ""), ("not a url", "not a url"), ("android-app://com.example/", "android-app://com.example/"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize("name, value, expected", [
    ("authorization", "Bearer x", f"Bearer {R}"), ("proxy-authorization", "Basic YWxpY2U6czNjcmV0", f"Basic alice:{R}"),
    ("referer", "http://h/get.php?pwd=x", f"http://h/get.php?pwd={R}"),
    ("cookie", "password=x", f"password={R}"), ("cookie", "mac=00:1A; PASS=x; a=b", f"mac=00:1A; PASS={R}; a=b"),
    ("cookie", "passport=x; sid=1", "passport=x; sid=1"), ("origin", "http://u:pw@h", f"http://u:{R}@h"),
    ("x-original-url", "/get.php?password=x", "/get.php?password=x"),  # only the named headers are redacted
    ("x-forwarded-for", "1.2.3.4", "1.2.3.4"), ("user-agent", "Basic abc", "Basic abc"),
    ("Authorization", "Bearer x", "Bearer x"),  # names arrive lower-cased (listener and protocol.py lower them)
])
def test_redact_header(name, value, expected):
    assert redact_header(name, value) == expected


@PROPERTY
@given(host=st.from_regex(r"\A[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}(:[0-9]{1,5})?\Z"),
       user=st.from_regex(r"\A[A-Za-z0-9._~-]{1,10}\Z"), password=st.from_regex(r"\A[A-Za-z0-9._~!$'()*+,;=-]{4,16}\Z"),
       path=st.sampled_from(["", "/", "/live/{u}/{p}/1.ts", "/{u}/{p}/77.m3u8", "/movie/{u}/{p}/5.mkv", "/get.php?username={u}&password={p}",
                             "/player_api.php?username={u}&password={p}&action=x", "/xmltv.php?username={u}&PWD={p}"]),
       userinfo=st.booleans())
def test_no_password_survives_a_referer(host, user, password, path, userinfo):
    url = f"http://{f'{user}:{password}@' if userinfo else ''}{host}{path.format(u=user, p=password)}"
    assume(password not in f"http://{user}@{host}{path}" and password not in R)
    assume(user not in OUR_AND_PORTAL_DIRECTORIES)  # a leak pinned below (issue 12)
    assert password not in redact_header("referer", url)


def test_a_user_named_like_the_portal_directory_keeps_no_password():
    assert "0000" not in redact_header("referer", "http://host/c/0000/77.m3u8")


def test_a_user_named_like_the_portal_directory_in_capitals_is_a_user():
    assert "0000" not in redact_header("referer", "http://host/C/0000/77.m3u8")


def test_a_relative_referer_keeps_no_stream_password():
    assert "s3cret" not in redact_header("referer", "/live/alice/s3cret/1.ts")


def test_a_query_that_looks_like_userinfo_is_left_alone():
    assert redact_url("http://host?next=a:b@c") == "http://host?next=a:b@c"


# A password never survives in any stored field (issue 12): whatever the percent-encoding (once,
# twice, %6c or %6C), repeated keys or key case, in the path, query, form body (the hash's input)
# and headers (Referer, Origin, Cookie, Authorization).

def _encode(text: str, how: list[int]) -> str:
    """Each character kept (0), percent-encoded in upper (1) or lower case (2), or encoded twice (3)."""
    out = []
    for char, choice in zip(text, how + [0] * len(text)):
        if choice == 0:
            out.append(char)
            continue
        escaped = "".join(f"%{byte:02X}" for byte in char.encode())
        if choice == 2:
            escaped = escaped.lower()
        elif choice == 3:
            escaped = escaped.replace("%", "%25")
        out.append(escaped)
    return "".join(out)


def _fully_unquoted(text: str) -> str:
    from urllib.parse import unquote_plus
    for _ in range(5):
        text = unquote_plus(text)
    return text


ENCODING = st.lists(st.integers(0, 3), max_size=20)
PASSWORD = st.from_regex(r"\AS[a-z0-9]{6,12}\Z")  # a capital no other part of the request has
STREAM_SHAPES = ["/live/{u}/{p}/1.ts", "/LIVE/{u}/{p}/1.m3u8", "/{u}/{p}/77", "/{u}/{p}/77.ts", "/movie/{u}/{p}/5.mkv",
                 "/series/{u}/{p}/9.mp4", "/timeshift/{u}/{p}/60/2026-11-23:06-00/1.ts", "/hls/{u}/{p}/1/index.m3u8",
                 "/hlsr/tok/{u}/{p}/1/s.ts", "/c/{p}/1.ts"]


@PROPERTY
@given(user=st.from_regex(r"\A[a-z]{1,8}\Z"), password=PASSWORD, shape=st.sampled_from(STREAM_SHAPES),
       head_how=ENCODING, user_how=ENCODING, password_how=ENCODING, id_how=ENCODING,
       key=st.sampled_from(["password", "PASSWORD", "Password", "pass", "PASS", "pwd", "Pwd", "passwd", " password", "password[]"]),
       key_how=ENCODING, repeated=st.booleans(), value_how=ENCODING)
def test_no_password_survives_in_any_stored_field(user, password, shape, head_how, user_how, password_how, id_how, key,
                                                  key_how, repeated, value_how):
    import hashlib
    from app.capture import Hit
    from app.clients import classify
    from app.record import RowBuilder, as_dict

    # /c/X/77 (no extension) is a Stalker portal's own file by design (app/clients.py, PORTAL_FILES),
    # not the bare-id stream of a user named "c": nothing in it reads as a password.
    assume(not (user == "c" and shape == "/{u}/{p}/77"))
    segments = shape.format(u=user, p=password).split("/")[1:]
    where = {0: head_how, 1: user_how, 2: password_how}
    path = "/" + "/".join(_encode(segment, where.get(i, id_how if i == len(segments) - 1 else []))
                          for i, segment in enumerate(segments))
    pairs = [f"username={user}", f"{_encode(key, key_how)}={_encode(password, value_how)}"]
    if repeated:
        pairs.insert(1, f"{key}=other")
        pairs.append(f"{_encode(key.upper(), key_how)}={password}")
    query = "&".join(pairs)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = [(b"host", b"seized-iptv.example"), (b"referer", f"http://h{path}?{query}".encode()),
               (b"referer", f"{path}?{query}".encode()), (b"origin", f"http://{user}:{password}@h".encode()),
               (b"cookie", f"mac=00%3A1A; {key.strip()}={password}; x=1".encode()), (b"authorization", f"Basic {basic}".encode()),
               (b"proxy-authorization", f"Bearer {password}".encode())]
    form = query.encode()
    info = classify(path.encode(), query.encode(), form, headers)
    hit = Hit(received_at_ns=1, node="n", host=b"seized-iptv.example", domain=None, scheme="http", method="POST",
              raw_path=path.encode(), query=query.encode(), http_version="1.1", client_ip="203.0.113.5", client_port=1,
              peer_ip="203.0.113.5", peer_port=1, server_ip="192.0.2.1", server_port=80, headers=headers,
              body_size=len(form), form_body=form, client_kind=info.kind, account=info.account, password=info.password)
    row = as_dict(RowBuilder(b"key").row(hit))
    for name, value in row.items():
        if isinstance(value, str) and name != "password_hmac":
            assert password not in value and password not in _fully_unquoted(value), (name, value)
    # the hash is of the redacted form: a hash of a form holding the password would let guesses be tested
    assert row["body_sha256"] == hashlib.sha256(redact_form(query).encode()).hexdigest()
    assert password not in _fully_unquoted(redact_form(query))
