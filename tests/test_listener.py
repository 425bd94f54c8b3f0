"""The public listener's HTTP/1.1 (app/listener.py) over raw sockets: keep-alive, pipelining in
order, HEAD, Expect: 100-continue, HTTP/1.0, and a stream answer queued behind by a later one."""

import re
import socket

from helpers import SENT, utc_stamp


def read_response(conn: socket.socket, buffer: bytearray, head_only: bool = False) -> tuple[int, dict, bytes]:
    """One response off a keep-alive connection: (status, headers, body)."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        assert chunk, "connection closed before a response"
        buffer += chunk
    head = bytes(buffer[:buffer.index(b"\r\n\r\n")])
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if head_only or status in (100, 204, 304) else int(headers.get("content-length", 0))
    start = len(head) + 4
    while len(buffer) < start + length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed inside a body"
        buffer += chunk
    body = bytes(buffer[start:start + length])
    del buffer[:start + length]
    return status, headers, body


def connect(server) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.public_port), timeout=10)
    SENT[conn.getsockname()[1]] = utc_stamp()
    return conn


def test_keep_alive_answers_every_request_on_one_connection_and_logs_each(server):
    with connect(server) as conn:
        buffer = bytearray()
        for i in range(3):
            conn.sendall(f"GET /keepalive/{i}-x HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n".encode())
            status, headers, body = read_response(conn, buffer)
            assert status == 451 and b"seized-iptv.example" in body
            assert headers.get("connection") != "close"
        port = conn.getsockname()[1]
    rows = server.wait_rows("client_port = ? AND path LIKE '/keepalive/%'", (port,), count=3)
    assert [r["path"] for r in rows] == [f"/keepalive/{i}-x" for i in range(3)]


def test_pipelined_requests_are_answered_in_order(server):
    hosts = ["seized-iptv.example", "iptv-pirata.example", "plain200.example"]
    with connect(server) as conn:
        conn.sendall(b"".join(f"GET /pipelined-{i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
                              for i, host in enumerate(hosts)))
        buffer = bytearray()
        answers = [read_response(conn, buffer) for _ in hosts]
        port = conn.getsockname()[1]
    assert [status for status, _, _ in answers] == [451, 451, 200]
    for (_, _, body), host in zip(answers, hosts):
        assert host.encode() in body
    rows = server.wait_rows("client_port = ? AND path LIKE '/pipelined-%'", (port,), count=3)
    assert [(r["path"], r["host"]) for r in rows] == [(f"/pipelined-{i}", host) for i, host in enumerate(hosts)]


def test_a_stream_answer_keeps_its_place_before_a_later_page(server):
    """The first answer (the notice video, rendered or read from disk in a task) takes longer than
    the second (a page from memory): the page still comes second."""
    with connect(server) as conn:
        conn.settimeout(120)  # the first video of a server is rendered now
        conn.sendall(b"GET /live/u/p/77.ts HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n"
                     b"GET /after-stream HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n")
        buffer = bytearray()
        first = read_response(conn, buffer)
        second = read_response(conn, buffer)
    assert first[0] == 200 and first[1]["content-type"] == "video/mp2t" and first[2][:1] == b"G"  # MPEG-TS sync byte
    assert second[0] == 451 and b"seized-iptv.example" in second[2]


def test_head_gets_the_headers_and_length_without_a_body(server):
    with connect(server) as conn:
        buffer = bytearray()
        conn.sendall(b"HEAD /head-check HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n"
                     b"GET /head-check HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n")
        head_status, head_headers, head_body = read_response(conn, buffer, head_only=True)
        get_status, get_headers, get_body = read_response(conn, buffer)
    assert head_status == get_status == 451
    assert head_body == b""
    assert int(head_headers["content-length"]) == len(get_body) > 0  # the GET came right after: no body in between


def test_expect_100_continue_is_answered_before_the_body(server):
    body = b"username=alice&password=secret1"
    with connect(server) as conn:
        conn.sendall(b"POST /player_api.php HTTP/1.1\r\nHost: seized-iptv.example\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
        buffer = bytearray()
        interim = read_response(conn, buffer)
        assert interim[0] == 100
        conn.sendall(body)
        status, headers, answer = read_response(conn, buffer)
        port = conn.getsockname()[1]
    assert status == 200 and headers["content-type"].startswith("application/json")
    row = server.wait_rows("client_port = ? AND path = '/player_api.php'", (port,))[0]
    assert row["account"] == "alice" and "secret1" not in str(row)


def test_http_1_0_without_keep_alive_is_closed_after_its_answer(server):
    with connect(server) as conn:
        conn.sendall(b"GET /old-client HTTP/1.0\r\nHost: seized-iptv.example\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    assert re.match(rb"HTTP/1\.1 451 ", data)
    assert b"\r\nconnection: close\r\n" in data.lower()
