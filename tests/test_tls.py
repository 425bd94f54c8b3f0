"""HTTPS visitors: the TLS listener (tls_listener.py). Every TLS connection is a hit: a client
that completes the handshake (curl -k, openssl s_client) gets the notice with scheme https and its
ClientHello recorded; one that rejects our certificate (plain curl) is logged all the same, with
its SNI, JA4 and why the handshake failed. Certificates from tls_cert_dir, else self-signed for the
name asked."""

import json
import shutil
import subprocess

import pytest

from helpers import free_port, wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")


def tls_rows(server, where: str = "true") -> list[dict]:
    return server.rows(f"scheme = 'https' AND {where}")


def pseudo(row: dict) -> dict:
    return {name: value for name, value in json.loads(row["headers"]) if name.startswith(":tls-")}


def curl(port: int, *options, name: str = "seized-iptv.example", path: str = "/") -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *options, "--resolve", f"{name}:{port}:127.0.0.1",
                           f"https://{name}:{port}{path}"], capture_output=True, text=True, timeout=60)


@pytest.fixture
def tls_server(fresh_server):
    port = free_port()
    server = fresh_server(tls=[f"127.0.0.1:{port}"]).start()
    server.tls_port = port
    return server


def test_curl_k_gets_the_notice_over_tls_and_the_hit_says_https(tls_server):
    answer = curl(tls_server.tls_port, "-k", "-A", "TLS-Test/1", path="/tls-notice")
    assert answer.returncode == 0 and "seized" in answer.stdout.lower(), answer.stderr
    [row] = wait_for(lambda: tls_rows(tls_server, "path = '/tls-notice'"), message="no TLS hit")
    assert row["status"] == 451 and row["user_agent"] == "TLS-Test/1" and row["server_port"] == tls_server.tls_port
    tls = pseudo(row)
    assert tls[":tls-sni"] == "seized-iptv.example" and tls[":tls-outcome"] == "ok"
    assert tls[":tls-version"] in ("TLSv1.3", "TLSv1.2") and tls[":tls-ja4"].startswith(("t13d", "t12d"))
    assert row["domain"] == "seized-iptv.example"


def test_plain_curl_rejects_our_certificate_and_is_logged_with_its_sni(tls_server):
    answer = curl(tls_server.tls_port, name="iptv-pirata.example")
    assert answer.returncode != 0  # curl refuses the self-signed certificate
    [row] = wait_for(lambda: tls_rows(tls_server, "host = 'iptv-pirata.example'"), message="the failed handshake left no hit")
    tls = pseudo(row)
    assert row["status"] == 0 and row["method"] == "" and "handshake" in row["error"].lower()
    assert tls[":tls-sni"] == "iptv-pirata.example" and tls[":tls-outcome"] != "ok" and tls[":tls-ja4"]
    assert tls[":tls-alpn"]  # what curl offered


def test_openssl_s_client_completes_and_speaks_http(tls_server):
    request = b"GET /s-client HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n"
    answer = subprocess.run(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{tls_server.tls_port}",
                             "-servername", "seized-iptv.example", "-alpn", "http/1.1"],
                            input=request, capture_output=True, timeout=60)
    assert b"HTTP/1.1 451" in answer.stdout, answer.stderr[-500:]
    [row] = wait_for(lambda: tls_rows(tls_server, "path = '/s-client'"), message="no hit")
    assert pseudo(row)[":tls-alpn"] == "http/1.1"


def test_plain_http_on_the_tls_port_is_still_answered_and_logged(tls_server):
    answer = subprocess.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{tls_server.tls_port}/plain-on-tls",
                             "-H", "Host: seized-iptv.example"], capture_output=True, text=True, timeout=60)
    assert "seized" in answer.stdout.lower()
    wait_for(lambda: tls_server.rows("path = '/plain-on-tls' AND scheme = 'http'"), message="no hit")


def test_a_certificate_from_tls_cert_dir_is_served_for_its_name(fresh_server, tmp_path):
    """A client that trusts only the certificate put in tls_cert_dir completes its handshake with it."""
    import datetime
    import socket
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seized-iptv.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("seized-iptv.example")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "seized-iptv.example.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (certs / "seized-iptv.example.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    port = free_port()
    server = fresh_server(tls=[f"127.0.0.1:{port}"], tls_cert_dir=str(certs)).start()
    context = ssl.create_default_context(cafile=str(certs / "seized-iptv.example.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname="seized-iptv.example") as conn:  # verified: our file's certificate
            conn.sendall(b"GET /own-cert HTTP/1.1\r\nHost: seized-iptv.example\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 451")
    wait_for(lambda: tls_rows(server, "path = '/own-cert'"), message="no hit")


def test_links_handed_out_over_tls_say_https(tls_server):
    """A player that came in over HTTPS is sent HTTPS links: the playlist's stream and the HLS
    playlists' own links (master, media and subtitle playlists, segments, cue file)."""
    base = f"https://seized-iptv.example:{tls_server.tls_port}/"
    playlist = curl(tls_server.tls_port, "-k", path="/get.php?username=tlsuser&password=x&type=m3u_plus")
    [stream] = [line for line in playlist.stdout.splitlines() if line and not line.startswith("#")]
    assert stream.startswith(base + "_seized/video/") and "account=tlsuser" in stream, playlist.stdout
    pending, seen = [base + "_seized/video/en.m3u8"], []
    while pending:
        url = pending.pop()
        answer = curl(tls_server.tls_port, "-k", path=url[len(base) - 1:])
        assert answer.returncode == 0, answer.stderr
        links = [line for line in answer.stdout.splitlines() if line and not line.startswith("#")]
        links += [part.split('"')[1] for part in answer.stdout.split("URI=")[1:]]
        assert all(link.startswith(base) for link in links), answer.stdout
        seen.append(url)
        pending += [link for link in links if link.split("?")[0].endswith(".m3u8") and link not in seen]
    assert len(seen) >= 3  # the master, the video's media playlist, the subtitles' playlist
