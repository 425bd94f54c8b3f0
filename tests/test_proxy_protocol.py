"""PROXY protocol on the public listener, with real proxies from Debian in front of it on loopback:
nginx in `stream` mode with `proxy_protocol on` (v1) and HAProxy with `send-proxy-v2` (v2). The
client's own address and source port, and the address and port it connected to, are recorded;
from a peer that is not a trusted proxy the header is not believed."""

import shutil
import socket
import subprocess
import time

import pytest

from helpers import free_port, raw_request, wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("haproxy")),
                                reason="needs nginx (with libnginx-mod-stream) and haproxy: make test installs them")
NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"


def via(port: int, target: str) -> tuple[int, bytes]:
    """A request through the proxy on `port`: the client's own source port, and the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        local_port = conn.getsockname()[1]
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return local_port, b"".join(chunks)


def wait_listening(port: int) -> None:
    def accepting():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(accepting, timeout=20, message=f"nothing listening on {port}")


def nginx_config(directory, port: int, upstream: int) -> str:
    static = "--with-stream " in subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
    return (("" if static else f"load_module {NGINX_STREAM};\n")
            + f"daemon off; pid {directory}/nginx-{port}.pid; error_log {directory}/nginx-{port}.err;\nevents {{}}\n"
            f"stream {{ server {{ listen 127.0.0.1:{port}; proxy_pass 127.0.0.1:{upstream}; proxy_protocol on; }} }}\n")


def haproxy_config(directory, port: int, upstream: int) -> str:
    return (f"defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
            f"frontend public\n    bind 127.0.0.1:{port}\n    default_backend seized\n"
            f"backend seized\n    server seized 127.0.0.1:{upstream} send-proxy-v2\n")


PROXIES = {  # kind -> (its config, its command line given the config file and the directory)
    "nginx": (nginx_config, lambda conf, directory: ["nginx", "-c", str(conf), "-p", str(directory)]),
    "haproxy": (haproxy_config, lambda conf, directory: ["haproxy", "-f", str(conf), "-db"]),
}


@pytest.fixture
def proxy_in_front(tmp_path):
    """`proxy_in_front(kind, upstream)`: that proxy on a port of its own, sending the PROXY header
    to `upstream`; its port. Stopped after the test."""
    started = []

    def start(kind: str, upstream: int) -> int:
        port = free_port()
        config, command = PROXIES[kind]
        conf = tmp_path / f"{kind}-{port}.conf"
        conf.write_text(config(tmp_path, port, upstream))
        started.append(subprocess.Popen(command(conf, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        wait_listening(port)
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("proxy", ["nginx", "haproxy"])
def test_a_proxy_protocol_header_from_a_trusted_proxy_names_the_client(fresh_server, proxy_in_front, proxy):
    server = fresh_server(trusted_proxies=["127.0.0.0/8"]).start()
    port = proxy_in_front(proxy, server.public_port)
    client_port, answer = via(port, f"/via-{proxy}")
    assert answer.startswith(b"HTTP/1.1 ") and b"seized" in answer.lower()
    [row] = server.wait_rows(f"path = '/via-{proxy}'")
    assert (row["client_ip"], row["client_port"]) == ("127.0.0.1", client_port)  # the client's own port, not the proxy's
    assert (row["server_ip"], row["server_port"]) == ("127.0.0.1", port)  # where the client connected: the proxy's port
    assert row["peer_ip"] == "127.0.0.1" and row["peer_port"] != client_port  # the TCP peer: the proxy
    # the proxy's health checks (v2 LOCAL) and plain requests from the same trusted peer still work
    assert raw_request(server.public_port, b"GET /direct HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status in (200, 451)


def test_a_proxy_protocol_header_from_anyone_else_is_not_believed(fresh_server):
    server = fresh_server().start()  # no trusted proxies
    forged = b"PROXY TCP4 6.6.6.6 198.51.100.1 1234 443\r\nGET /forged HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.public_port), timeout=10) as conn:
        local_port = conn.getsockname()[1]
        conn.sendall(forged)
        while conn.recv(65536):
            pass
    time.sleep(0.5)
    rows = server.wait_rows("client_port = ?", (local_port,))
    assert all(r["client_ip"] == "127.0.0.1" for r in rows) and not server.rows("client_ip = '6.6.6.6'")
