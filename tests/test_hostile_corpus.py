"""A hostile corpus over a plain socket: request smuggling shapes, absolute- and asterisk-form
targets, HTTP/0.9, the HTTP/2 preface, a WebSocket upgrade and a 50 MB body. Each: no 5xx, the
service still answers afterwards, and the connection's hit is logged exactly once, its bytes made
safe (no NUL, no raw control bytes in any stored text)."""

import socket

import pytest

from helpers import SENT, raw_request, utc_stamp

CORPUS = {
    "cl-te": b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "te-cl": b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
    "te-te": (b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
              b"\r\n5\r\nhello\r\n0\r\n\r\n"),
    "te-space": b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-obfuscated": b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "cl-twice": b"POST / HTTP/1.1\r\nHost: seized-iptv.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "absolute-form": b"GET http://evil.example/steal?x=1 HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n",
    "absolute-form-https": b"GET https://seized-iptv.example:443/live/u/p/1.ts HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    "asterisk-form": b"OPTIONS * HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n",
    "connect": b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    "http-0.9": b"GET /\r\n",
    "h2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x00\x01\x00\x00",
    "websocket": (b"GET /chat HTTP/1.1\r\nHost: seized-iptv.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
    "h2c-upgrade": (b"GET / HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
    "nul-and-controls": b"GET /a\x00b HTTP/1.1\r\nHost: seized\x01-iptv.example\r\nX-A: \x1b[31mred\x7f\r\n\r\n",
    "bare-lf": b"GET /lf HTTP/1.1\nHost: seized-iptv.example\nConnection: close\n\n",
    "tls-to-http": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00",
}


def exchange(port: int, data: bytes, timeout: float = 20) -> tuple[int, bytes]:
    """Send `data`, half-close, read whatever comes back until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        local_port = conn.getsockname()[1]
        SENT[local_port] = utc_stamp()
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return local_port, b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    return [int(line.split(b" ")[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.") and line[9:12].isdigit()]


def still_serving(server) -> None:
    assert raw_request(server.public_port, b"GET /still-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status in (200, 451)


def stored_text_is_safe(row: dict) -> None:
    for name, value in row.items():
        if isinstance(value, str):
            assert "\x00" not in value, name
            assert not any(ord(c) < 0x20 and c not in "\t" for c in value if name not in ("headers", "device")), (name, value)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_hostile_request_is_answered_without_5xx_and_logged_once(server, name):
    local_port, answer = exchange(server.public_port, CORPUS[name])
    assert not any(s >= 500 for s in statuses(answer)), answer[:300]
    rows = server.wait_rows("peer_port = ? AND received_at >= ?", (local_port, SENT[local_port]))
    assert len(rows) == 1, [(r["method"], r["path"], r["status"], r["error"]) for r in rows]
    stored_text_is_safe(rows[0])
    still_serving(server)


def test_a_50_mb_body_is_taken_logged_once_and_the_service_goes_on(server):
    size = 50 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.public_port), timeout=60) as conn:
        local_port = conn.getsockname()[1]
        SENT[local_port] = utc_stamp()
        conn.sendall(f"POST /upload HTTP/1.1\r\nHost: seized-iptv.example\r\nContent-Length: {size}\r\n"
                     f"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n".encode())
        block, sent = b"\xab" * 65536, 0
        try:
            while sent < size:
                conn.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the body is all there: it read what it needed
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert not any(s >= 500 for s in statuses(answer))
    [row] = server.wait_rows("peer_port = ? AND received_at >= ?", (local_port, SENT[local_port]))
    assert row["path"] == "/upload" and row["body_size"] <= size
    still_serving(server)


def test_a_stream_request_from_a_client_that_leaves_at_once_is_logged(fresh_server):
    """The video a stream URL gets is read or rendered first: a client gone meanwhile (half-closed,
    or gone) is logged all the same, with what was sent: nothing (status 0) when it left first."""
    server = fresh_server().start()
    with socket.create_connection(("127.0.0.1", server.public_port), timeout=10) as conn:
        gone_port = conn.getsockname()[1]
        conn.sendall(b"GET /live/leaver/secret/1.ts HTTP/1.1\r\nHost: seized-iptv.example\r\n\r\n")
    local_port, answer = exchange(server.public_port, b"GET /live/halfway/secret/2.ts HTTP/1.1\r\nHost: seized-iptv.example\r\n"
                                                     b"Connection: close\r\n\r\n", timeout=60)
    assert statuses(answer) == [200]  # a half-closed client still gets its answer
    [gone] = server.wait_rows("peer_port = ?", (gone_port,))
    assert gone["path"] == "/live/leaver/[REDACTED]/1.ts"
    # sent (200) if its video was ready before the close was read, else logged as not answered (0)
    assert gone["status"] == 200 or (gone["status"] == 0 and "before its video was ready" in gone["error"])
    [half] = server.wait_rows("peer_port = ?", (local_port,))
    assert half["status"] == 200 and half["error"] is None
    assert server.stop() == 0
