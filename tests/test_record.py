"""Every field of the stored hit, redaction, and client address resolution through proxies."""

import base64
import csv
import hashlib
import io
import json
import re
from datetime import datetime, timezone

import pytest

from helpers import headers_of, raw_request

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_every_field_of_the_record(server):
    body = b'{"hello": "world"}'
    data = (b"POST /panel/player_api.php?username=alice&action=x HTTP/1.1\r\n"
            b"Host: Line.Seized-IPTV.example:8080\r\n"
            b"User-Agent: IPTVSmartersPro/3.1\r\n"
            b"X-Dup: first\r\n"
            b"Accept: */*\r\n"
            b"X-Dup: second\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body)
    before = datetime.now(timezone.utc)
    response = raw_request(server.public_port, data)
    after = datetime.now(timezone.utc)
    row = server.row_for_port(response.local_port)

    assert ISO.match(row["received_at"])
    received = datetime.strptime(row["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before <= received <= after
    assert row["node"] == "test-node"
    assert row["host"] == "Line.Seized-IPTV.example:8080"
    assert row["domain"] == "seized-iptv.example"
    assert row["scheme"] == "http"
    assert row["method"] == "POST"
    assert row["path"] == "/panel/player_api.php"
    assert row["query"] == "username=alice&action=x"
    assert row["http_version"] == "1.1"
    assert (row["client_ip"], row["client_port"]) == ("127.0.0.1", response.local_port)
    assert (row["peer_ip"], row["peer_port"]) == ("127.0.0.1", response.local_port)
    assert (row["server_ip"], row["server_port"]) == ("127.0.0.1", server.public_port)  # the listener's side
    assert headers_of(row) == [
        ["host", "Line.Seized-IPTV.example:8080"], ["user-agent", "IPTVSmartersPro/3.1"], ["x-dup", "first"],
        ["accept", "*/*"], ["x-dup", "second"], ["content-type", "application/json"],
        ["content-length", str(len(body))], ["connection", "close"],
    ]
    assert row["user_agent"] == "IPTVSmartersPro/3.1"
    assert row["body_size"] == len(body)
    assert row["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert row["status"] == 451
    assert 0 <= row["duration_ms"] < 60_000
    assert row["error"] is None
    assert len(row["uid"]) == 32

    # the same server address through every reader: the API's record and both exports
    token = server.new_token("investigator")
    item = server.api("GET", f"/api/v1/hits/{row['id']}", token).json()
    assert (item["server_ip"], item["server_port"]) == ("127.0.0.1", server.public_port)
    mine = f"/api/v1/hits/export?port={response.local_port}&path_prefix=/panel/player_api.php"
    exported = [json.loads(line) for line in server.api("GET", f"{mine}&format=ndjson", token).text.splitlines()]
    assert [(r["server_ip"], r["server_port"]) for r in exported if r["id"] == row["id"]] == [("127.0.0.1", server.public_port)]
    lines = csv.DictReader(io.StringIO(server.api("GET", f"{mine}&format=csv", token).text, newline=""))
    assert [(r["server_ip"], int(r["server_port"])) for r in lines if int(r["id"]) == row["id"]] == \
        [("127.0.0.1", server.public_port)]


def test_body_past_the_cap_is_counted_not_hashed(server):
    body = bytes(range(256)) * 40  # 10,240 bytes; the test server's cap is 4,096
    response = server.request("PUT", "/upload", body=body, headers=[("Content-Type", "application/octet-stream")])
    row = server.row_for_port(response.local_port)
    assert row["body_size"] == 10_240
    assert row["body_sha256"] == hashlib.sha256(body[:4096]).hexdigest()


def test_chunked_body_is_measured(server):
    data = (b"POST /c HTTP/1.1\r\nHost: seized-iptv.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    row = server.row_for_port(raw_request(server.public_port, data).local_port)
    assert row["body_size"] == 11
    assert row["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()


def test_passwords_in_the_query_are_redacted(server):
    target = "/get.php?username=a&password=b&PASS=hunter2&Pwd=s3cret&passwd=x%20y&type=m3u_plus&passport=keep"
    response = server.request(target=target)
    row = server.row_for_port(response.local_port)
    assert row["query"] == ("username=a&password=[REDACTED]&PASS=[REDACTED]&Pwd=[REDACTED]"
                            "&passwd=[REDACTED]&type=m3u_plus&passport=keep")
    stored = json.dumps(row)
    for secret in ("hunter2", "s3cret", "x%20y"):
        assert secret not in stored


def test_passwords_in_a_form_body_are_redacted_before_hashing(server):
    form = b"username=alice&password=hunter2&action=login"
    response = server.request("POST", "/player_api.php", body=form,
                              headers=[("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")])
    row = server.row_for_port(response.local_port)
    assert row["body_size"] == len(form)
    # The stored hash is of the redacted form: a hash of the real one would let guesses be tested.
    assert row["body_sha256"] == hashlib.sha256(b"username=alice&password=[REDACTED]&action=login").hexdigest()
    assert "hunter2" not in json.dumps(row)


# Only an application/x-www-form-urlencoded body is read as a form (redacted before hashing, its
# username taken as the account). Each of these holds "&password=hunter2", which a form reading would
# redact: so a hash of exactly the bytes sent shows none of it was read as one.
MULTIPART = (b'--XyZzy\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n'
             b'--XyZzy\r\nContent-Disposition: form-data; name="login"\r\n\r\nusername=alice&password=hunter2\r\n'
             b'--XyZzy\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
             b'Content-Type: application/octet-stream\r\n\r\n\x00\xff\xfe binary\r\n--XyZzy--\r\n')


@pytest.mark.parametrize("content_type, body", [
    ("application/json", '{"username": "alice", "next": "/get.php?username=alice&password=hunter2", "é": 1}'.encode()),
    ("application/json; charset=utf-8", b"username=alice&password=hunter2"),  # form-shaped, declared JSON
    ("multipart/form-data; boundary=XyZzy", MULTIPART),
], ids=["json", "form-shaped-json", "multipart"])
def test_json_and_multipart_bodies_are_hashed_as_sent_and_not_read_as_forms(server, content_type, body):
    response = server.request("POST", "/player_api.php", body=body, headers=[("Content-Type", content_type)])
    row = server.row_for_port(response.local_port)
    assert row["body_size"] == len(body)
    assert row["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert row["client_kind"] == "xtream_api" and row["account"] is None  # the route is known; no account from the body
    stored = json.dumps(row)
    assert "alice" not in stored and "hunter2" not in stored  # the body itself is not stored, only its hash


@pytest.mark.parametrize("target", ["/%6Cive/alice/SECRETPW2/1.ts", "/%6cive/alice/SECRETPW2/1%2Ets", "/alice/SECRETPW2/%31",
                                    "/%256Cive/alice/SECRETPW2/1.ts", "/c/SECRETPW2/7.m3u8"])
def test_a_percent_encoded_stream_path_is_stored_without_its_password(server, target):
    """Issue 12: the path was classified decoded (a stream for alice) but redacted as sent."""
    response = server.request(target=target, headers=[("Referer", f"http://panel.example{target}"), ("Cookie", "password=SECRETPW2")])
    row = server.row_for_port(response.local_port)
    assert row["path"] == target.replace("SECRETPW2", "[REDACTED]")
    assert "SECRETPW2" not in json.dumps(row)


@pytest.mark.parametrize("target", ["/images/2024/1.png", "/c/img/1.png"])
def test_a_path_that_is_no_stream_is_stored_as_sent(server, target):
    response = server.request(target=target)
    assert server.row_for_port(response.local_port)["path"] == target


def test_authorization_secrets_are_redacted(server):
    basic = base64.b64encode(b"alice:hunter2").decode()
    response = server.request(headers=[
        ("Authorization", f"Basic {basic}"),
        ("Proxy-Authorization", "Bearer tok-abc.def"),
        ("Referer", "http://bob:pw123@panel.example/get.php?username=bob&password=pw456"),
        ("X-Other", "password=stays-as-sent"),
    ])
    row = server.row_for_port(response.local_port)
    headers = dict((k, v) for k, v in headers_of(row))
    assert headers["authorization"] == "Basic alice:[REDACTED]"
    assert headers["proxy-authorization"] == "Bearer [REDACTED]"
    assert headers["referer"] == "http://bob:[REDACTED]@panel.example/get.php?username=bob&password=[REDACTED]"
    assert headers["x-other"] == "password=stays-as-sent"  # nothing else is altered
    stored = json.dumps(row)
    for secret in ("hunter2", basic, "tok-abc", "pw123", "pw456"):
        assert secret not in stored


def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored(server):
    response = server.request(headers=[
        ("X-Forwarded-For", "203.0.113.77"), ("Forwarded", 'for="198.51.100.1:4444"'), ("X-Real-Port", "1234"),
    ])
    assert "203.0.113.77" not in response.text
    row = server.row_for_port(response.local_port)
    assert (row["client_ip"], row["client_port"]) == ("127.0.0.1", response.local_port)
    assert ["x-forwarded-for", "203.0.113.77"] in headers_of(row)  # kept as evidence, not believed


@pytest.mark.parametrize("headers, client_ip, client_port", [
    ([("X-Forwarded-For", "203.0.113.5"), ("X-Real-Port", "51234")], "203.0.113.5", 51234),
    # Rightmost untrusted hop: the left entries could have been written by the client itself.
    ([("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.1.2.3")], "203.0.113.5", None),
    ([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")], "203.0.113.9", None),
    # Only the header chosen in forwarded_header (here the default, x-forwarded-for) is believed: a
    # client's own Forwarded, passed through by the proxy, is stored and ignored (issue 12).
    ([("Forwarded", 'for="6.6.6.6:1234";proto=https'), ("X-Forwarded-For", "192.0.2.99")], "192.0.2.99", None),
    ([("Forwarded", 'for="203.0.113.60:47011";proto=https')], "127.0.0.1", "peer"),
    ([("X-Real-IP", "203.0.113.61")], "127.0.0.1", "peer"),
    # A hidden client behind the proxy: nothing beyond that hop is believed.
    ([("X-Forwarded-For", "unknown")], "127.0.0.1", "peer"),
    ([("X-Forwarded-For", "not-an-ip")], "127.0.0.1", "peer"),
    ([("X-Real-Port", "99999"), ("X-Forwarded-For", "203.0.113.5")], "203.0.113.5", None),
    ([], "127.0.0.1", "peer"),
])
def test_trusted_proxy_headers_give_the_client(proxied_server, headers, client_ip, client_port):
    response = proxied_server.request(headers=headers)
    row = proxied_server.row_for_port(response.local_port, by="peer_port")
    expected_port = response.local_port if client_port == "peer" else client_port
    assert (row["client_ip"], row["client_port"]) == (client_ip, expected_port)
    assert (row["peer_ip"], row["peer_port"]) == ("127.0.0.1", response.local_port)
    # the address the proxy connected to, never taken from its headers
    assert (row["server_ip"], row["server_port"]) == ("127.0.0.1", proxied_server.public_port)
    assert f'id="visitor-ip">{client_ip}<' in response.text


def test_forwarded_proto_sets_the_scheme(proxied_server):
    response = proxied_server.request(headers=[("X-Forwarded-For", "203.0.113.8"), ("X-Forwarded-Proto", "https")])
    row = proxied_server.row_for_port(response.local_port, by="peer_port")
    assert row["scheme"] == "https"


def test_a_forwarded_proto_is_not_believed_beside_x_forwarded_for(proxied_server):
    response = proxied_server.request(headers=[("Forwarded", 'for="6.6.6.6:1234";proto=https'), ("X-Forwarded-For", "203.0.113.9")])
    row = proxied_server.row_for_port(response.local_port, by="peer_port")
    assert (row["client_ip"], row["client_port"], row["scheme"]) == ("203.0.113.9", None, "http")
    assert ["forwarded", 'for="6.6.6.6:1234";proto=https'] in headers_of(row)  # kept as evidence, not believed


def test_hits_cannot_be_edited_in_place(server):
    response = server.request(target="/evidence")
    row = server.row_for_port(response.local_port)
    for statement in ("UPDATE hits SET client_ip = '1.2.3.4' WHERE id = ?", "DELETE FROM hits WHERE id = ?",
                      "UPDATE hit_rows SET client_ip = '1.2.3.4' WHERE id = ?", "DELETE FROM hit_rows WHERE id = ?",
                      "UPDATE header_sets SET headers = '[]' WHERE id = (SELECT header_set FROM hit_rows WHERE id = ?)"):
        with pytest.raises(Exception, match="append-only"):
            server.sql(statement, (row["id"],))
