"""Every port, both address families: the public listener on several addresses at once, the
default `[::]:PORT` taking IPv4 and IPv6 on one port, and each hit recording the local address and
port it arrived on."""

import socket

from helpers import free_port


def get(family: int, address: tuple, target: str) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(address)
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_several_public_addresses_and_both_families_on_one_port(fresh_server):
    dual, second = free_port(), free_port()
    server = fresh_server(public=[f"[::]:{dual}", f"127.0.0.1:{second}"])
    server.public_port = second  # what the helpers' requests use
    server.start()
    answers = {
        "ipv4-on-dual": get(socket.AF_INET, ("127.0.0.1", dual), "/ipv4-on-dual"),
        "ipv6-on-dual": get(socket.AF_INET6, ("::1", dual), "/ipv6-on-dual"),
        "second-port": get(socket.AF_INET, ("127.0.0.1", second), "/second-port"),
    }
    assert all(b" 451 " in a.split(b"\r\n", 1)[0] or b" 200 " in a.split(b"\r\n", 1)[0] for a in answers.values()), answers
    rows = {r["path"].strip("/"): r for r in server.wait_rows("path IN ('/ipv4-on-dual', '/ipv6-on-dual', '/second-port')", count=3)}
    assert (rows["ipv4-on-dual"]["client_ip"], rows["ipv4-on-dual"]["server_ip"], rows["ipv4-on-dual"]["server_port"]) == (
        "127.0.0.1", "127.0.0.1", dual)  # IPv4 through the dual-stack socket, recorded as IPv4
    assert (rows["ipv6-on-dual"]["client_ip"], rows["ipv6-on-dual"]["server_ip"], rows["ipv6-on-dual"]["server_port"]) == (
        "::1", "::1", dual)
    assert (rows["second-port"]["server_ip"], rows["second-port"]["server_port"]) == ("127.0.0.1", second)
    assert server.stop() == 0
