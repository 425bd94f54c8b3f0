"""app/tls.py: ClientHellos from real clients (Python's ssl, openssl s_client, curl) and hostile bytes,
JA4 against the specification's published values, and the certificate store in real handshakes."""

import datetime
import functools
import hashlib
import random
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings, strategies as st

from app.tls import (MAX_CLIENT_HELLO, NEED_MORE, CertificateStore, ClientHello, MalformedClientHello, is_grease, ja4,
                     normalise_server_name, parse_client_hello)

JA4_FORM = re.compile(r"^t(1[0-3]|s3|00)[di]\d{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$")


# ---------------------------------------------------------------- building ClientHellos


def u8(b: bytes) -> bytes:
    return bytes([len(b)]) + b


def u16(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def u16s(values) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + u16(body)


def sni_ext(name: bytes) -> bytes:
    return ext(0, u16(b"\x00" + u16(name)))


def alpn_ext(*names: bytes) -> bytes:
    return ext(16, u16(b"".join(u8(n) for n in names)))


def hello_message(ciphers, extensions: list[bytes] | None, version=0x0303, session_id=b"\x11" * 32) -> bytes:
    body = struct.pack("!H", version) + bytes(range(32)) + u8(session_id) + u16(u16s(ciphers)) + u8(b"\x00")
    if extensions is not None:
        body += u16(b"".join(extensions))
    return b"\x01" + len(body).to_bytes(3, "big") + body


def records(message: bytes, sizes=None, version=0x0301) -> bytes:
    """The handshake message in records of the given fragment sizes (one record by default)."""
    out, at = b"", 0
    for size in sizes or [len(message)]:
        chunk = message[at:at + size]
        if chunk:
            out += struct.pack("!BHH", 22, version, len(chunk)) + chunk
        at += size
    if at < len(message):
        out += struct.pack("!BHH", 22, version, len(message) - at) + message[at:]
    return out


# The JA4 specification's example (technical_details/JA4.md): its lists in the order sent, with GREASE
# added (which JA4 ignores), give its published fingerprints.
SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
                0x009D, 0x002F, 0x0035]
SPEC_EXTENSIONS = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012, 0x002B,
                   0xFF01, 0x000B, 0x000A, 0x0015]
SPEC_SIGNATURES = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def spec_like(ciphers=SPEC_CIPHERS, extensions=SPEC_EXTENSIONS, signatures=SPEC_SIGNATURES, name=b"example.tv",
              alpn=(b"h2", b"http/1.1"), grease=True) -> bytes:
    bodies = {0x0000: sni_ext(name), 0x0010: alpn_ext(*alpn), 0x000D: ext(13, u16(u16s(signatures))),
              0x002B: ext(43, u8(u16s(([0x3A3A] if grease else []) + [0x0304, 0x0303]))),
              0x000A: ext(10, u16(u16s(([0x2A2A] if grease else []) + [0x001D, 0x0017])))}
    extensions = [bodies.get(kind, ext(kind, b"")) for kind in extensions]
    if grease:
        extensions = [ext(0x0A0A, b"")] + extensions + [ext(0xFAFA, b"\x00")]
        ciphers = [0x5A5A] + list(ciphers)
    return records(hello_message(ciphers, extensions))


def parsed(data: bytes) -> ClientHello:
    hello = parse_client_hello(data)
    assert isinstance(hello, ClientHello), hello
    return hello


# ---------------------------------------------------------------- JA4 against the specification


def test_ja4_of_the_specification_example():
    hello = parsed(spec_like())
    assert ja4(hello) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert ja4(hello, original=True) == "t13d1516h2_acb858a92679_18f69afefd3d"
    assert ja4(hello, raw=True) == (
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
        "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601")
    assert ja4(hello, raw=True, original=True) == (
        "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
        "001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_"
        "0403,0804,0401,0503,0805,0501,0806,0601")
    assert hello.grease and hello.version == 0x0304 and hello.server_name == "example.tv"


def test_ja4_extension_hash_without_signature_algorithms():
    # The specification: with no signature algorithms the list is hashed alone, no trailing "_".
    extensions = [e for e in SPEC_EXTENSIONS if e != 0x000D] + [0x000D]
    hello = parsed(spec_like(extensions=extensions, signatures=[]))
    assert ja4(hello).endswith("_6d807ffa2a79")


def test_ja4_of_a_published_chrome_fingerprint():
    # A Chrome 143 hello as published with its JA4 (ja4_r/ja4_ro lists, browserleaks' output).
    ciphers = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D,
               0x002F, 0x0035]
    extensions = [0x002D, 0x0033, 0x0010, 0xFE0D, 0x0017, 0x44CD, 0x0000, 0x000B, 0x000A, 0x002B, 0xFF01, 0x0023,
                  0x0012, 0x0005, 0x000D, 0x001B]
    hello = parsed(spec_like(ciphers=ciphers, extensions=extensions))
    assert ja4(hello) == "t13d1516h2_8daaf6152771_d8a2da3f94cd"
    assert ja4(hello, original=True) == "t13d1516h2_acb858a92679_f96a17c57971"


def test_ja4_with_a_grease_signature_algorithm():
    # FoxIO's sigalg-grease.pcapng (its JA4_ro lists, GREASE put back among the signature algorithms);
    # JA4 as in their Rust snapshot, JA4_o as in their Python test output.
    ro = ("t13d1517h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
          "fe0d,0010,0017,0033,44cd,ff01,000a,000d,0023,002b,000b,ca34,002d,0000,0005,001b,0012_"
          "0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601")
    ciphers, extensions, signatures = ([int(v, 16) for v in part.split(",")] for part in ro.split("_")[1:])
    hello = parsed(spec_like(ciphers=ciphers, extensions=extensions, signatures=[0x8A8A] + signatures))
    assert hello.signature_algorithms[0] == 0x8A8A
    assert ja4(hello) == "t13d1517h2_8daaf6152771_cb7bf5808d99"
    assert ja4(hello, original=True) == "t13d1517h2_acb858a92679_88bf22a3e888"
    assert ja4(hello, raw=True, original=True) == ro


@pytest.mark.parametrize("alpn, expected", [
    ((b"http/1.1",), "h1"), ((b"h2",), "h2"), ((b"h",), "hh"), ((b"\xab",), "ab"), ((b"\xab\xcd",), "ad"),
    ((b"0\xab",), "3b"), ((b"01\xab\xcd",), "3d"), ((b"0\xab\xcd1",), "01"), ((b"",), "00"), ((), "00"),
])
def test_ja4_alpn_characters(alpn, expected):
    extensions = [0x0000, 0x000D] + ([0x0010] if alpn else [])
    hello = parsed(spec_like(extensions=extensions, alpn=alpn, grease=False))
    assert ja4(hello)[8:10] == expected


def test_ja4_counts_versions_and_empty_lists():
    # No SNI ("i"), TLS 1.2 from the legacy version (no supported_versions), over 99 suites counted as 99.
    hello = parsed(records(hello_message(list(range(1, 120)), [ext(0x0017, b"")])))
    assert ja4(hello).startswith("t12i9901") and ja4(hello).split("_")[1] != "000000000000"
    # No extensions at all (an old client): the extension hash is zeros.
    hello = parsed(records(hello_message([0x002F, 0x5A5A], None, version=0x0301)))
    assert ja4(hello) == "t10i010000_" + hashlib.sha256(b"002f").hexdigest()[:12] + "_000000000000"
    assert hello.grease and hello.extensions == ()
    # Only SNI and ALPN: nothing left to hash after removing them.
    hello = parsed(records(hello_message([0x1301], [sni_ext(b"a.tv"), alpn_ext(b"h2")])))
    assert ja4(hello).endswith("_000000000000") and ja4(hello).startswith("t12d0102h2")
    hello = parsed(records(hello_message([0x1301], [ext(43, u8(u16s([0xFEFD])))])))
    assert ja4(hello).startswith("td2i")
    hello = parsed(records(hello_message([0x1301], [ext(43, u8(u16s([0x7F1C])))])))
    assert ja4(hello).startswith("t00i")


# ---------------------------------------------------------------- the parser


def test_fields_in_order_with_grease():
    hello = parsed(spec_like() + b"rest of the stream")
    assert hello.cipher_suites[:3] == (0x5A5A, 0x1301, 0x1302)
    assert hello.extensions[0] == 0x0A0A and hello.extensions[-1] == 0xFAFA and hello.extensions[1:-1] == tuple(SPEC_EXTENSIONS)
    assert hello.supported_versions == (0x3A3A, 0x0304, 0x0303) and hello.legacy_version == 0x0303
    assert hello.record_version == 0x0301 and hello.signature_algorithms == tuple(SPEC_SIGNATURES)
    assert hello.alpn == (b"h2", b"http/1.1") and hello.supported_groups == (0x2A2A, 0x001D, 0x0017)
    assert hello.length == len(spec_like())
    fields = hello.as_dict()
    assert fields["version"] == "TLS 1.3" and fields["supported_versions"] == ["GREASE", "TLS 1.3", "TLS 1.2"]
    assert fields["alpn"] == ["h2", "http/1.1"] and fields["sni"] == "example.tv" and fields["ja4"] == ja4(hello)
    assert fields["cipher_suites"][:2] == ["5a5a", "1301"]
    assert not parsed(spec_like(grease=False)).grease


def test_grease_values():
    assert [v for v in range(0x10000) if is_grease(v)] == [0x0A0A + 0x1010 * i for i in range(16)]


def test_reassembled_from_several_records():
    whole = spec_like()
    message = whole[5:]
    for sizes in ([1] * 10, [3, 1, 2], [100, 200], [len(message) - 1], [4], [2, 2]):
        data = records(message, sizes)
        hello = parsed(data)
        assert hello.length == len(data) and ja4(hello) == ja4(parsed(whole)) and hello.server_name == "example.tv"
        for cut in range(len(data)):
            assert parse_client_hello(data[:cut]) == NEED_MORE


def test_a_large_hello_over_several_records():
    padding = ext(0x0015, b"\x00" * 40000)
    message = hello_message([0x1301], [sni_ext(b"big.example"), padding])
    data = records(message, [16384, 16384])
    assert parsed(data).server_name == "big.example" and parsed(data).length == len(data)
    for cut in (5, 16389, len(data) - 1):
        assert parse_client_hello(data[:cut]) == NEED_MORE
    with pytest.raises(MalformedClientHello, match="over"):
        parse_client_hello(records(b"\x01\x01\x00\x00")[:9])  # refused from the announced length alone
    with pytest.raises(MalformedClientHello, match="over"):  # record headers count: 1-byte records
        parse_client_hello(records(hello_message([0x1301], [ext(0x15, b"\x00" * 20000)]), [1] * 20000))


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x01\x00", b"\x80\x2e\x01\x00\x02", b"PROXY TCP4",
                                  b"\x17\x03\x03\x00\x10", b"\x00"])
def test_not_tls(data):
    assert parse_client_hello(data) is None


@pytest.mark.parametrize("data", [b"", b"\x16", b"\x16\x03", b"\x16\x03\x01\x02", b"\x16\x03\x01\x02\x00\x01\x00"])
def test_need_more(data):
    assert parse_client_hello(data) == NEED_MORE


def _message_with(body_tail: bytes) -> bytes:
    body = b"\x03\x03" + bytes(32) + body_tail
    return records(b"\x01" + len(body).to_bytes(3, "big") + body)


@pytest.mark.parametrize("data, said", [
    (b"\x16\x03\x01\x00\x00", "empty handshake record"),
    (b"\x16\x03\x09\x00\x04", "record version"),
    (b"\x16\x03\x01\x7f\xff", "record of"),
    (records(b"\x02\x00\x00\x02ab"), "not ClientHello"),
    (records(hello_message([0x1301], [])[:6], [6]) + b"\x15\x03\x01\x00\x02\x02\x28", "record of type 21"),
    (_message_with(b"\x21" + bytes(33) + u16(u16s([1])) + b"\x01\x00"), "session id of 33"),
    (_message_with(b"\x00" + u16(b"\x13") + b"\x01\x00"), "odd length"),
    (_message_with(b"\x00" + u16(b"") + b"\x01\x00"), "no cipher suites"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x00"), "no compression"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + b"\x00\x05\x00"), "extensions"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(b"") + b"xx"), "left over"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(ext(0, b"\x00\x05\x00\x00\x01a"))), "server_name"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(ext(0, u16(b"\x00" + u16(b""))))), "empty host_name"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(ext(16, u16(b"\x05h2")))), "ALPN"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(ext(43, b"\x03\x03\x04\x03"))), "supported_versions"),
    (_message_with(b"\x00" + u16(u16s([1])) + b"\x01\x00" + u16(ext(13, u16(b"\x04\x03") + b"x"))), "left over"),
])
def test_malformed(data, said):
    with pytest.raises(MalformedClientHello, match=said):
        parse_client_hello(data)


def test_sni_of_odd_bytes_is_kept_readable():
    hello = parsed(records(hello_message([0x1301], [sni_ext(b"b\xc3\xbccher.example\xff\x00")])))
    assert hello.server_name == "bücher.example\\xff\x00"
    assert normalise_server_name(hello.server_name) is None


# ---------------------------------------------------------------- hostile bytes (hypothesis)


def _answer(data: bytes):
    try:
        result = parse_client_hello(data)
    except MalformedClientHello:
        return "malformed"
    assert result is None or result == NEED_MORE or isinstance(result, ClientHello)
    if result == NEED_MORE:
        assert len(data) < MAX_CLIENT_HELLO
    if isinstance(result, ClientHello):
        assert 0 < result.length <= len(data)
        ja4(result)
        result.as_dict()
    return result


FUZZ = settings(deadline=None, database=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda b: b"\x16\x03\x01" + b),
                 st.binary(max_size=600).map(lambda b: b"\x16\x03\x01" + u16(b"\x01" + len(b).to_bytes(3, "big") + b))))
def test_random_bytes(data):
    _answer(data)


def _real_hellos():
    return [spec_like(), spec_like(grease=False, alpn=(b"\xff",)), records(hello_message([0x1301], None)),
            *captured().values()]


@FUZZ
@given(st.data())
def test_truncated_and_bit_flipped_real_hellos(data):
    original = data.draw(st.sampled_from(_real_hellos()))
    cut = data.draw(st.integers(0, len(original)))
    assert parse_client_hello(original[:cut]) == (NEED_MORE if cut < len(original) else parse_client_hello(original))
    flipped = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(flipped) - 1))
        flipped[at] ^= 1 << data.draw(st.integers(0, 7))
    _answer(bytes(flipped))
    _answer(bytes(flipped[:data.draw(st.integers(0, len(flipped)))]))
    at = data.draw(st.integers(0, len(original)))
    _answer(original[:at] + data.draw(st.binary(max_size=40)) + original[at:])


def test_every_single_bit_flip_of_a_real_hello():
    original = captured().get("python") or spec_like()
    outcomes = set()
    for at in range(len(original)):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[at] ^= 1 << bit
            result = _answer(bytes(flipped))
            outcomes.add(type(result).__name__ if not isinstance(result, str) else result)
    assert {"ClientHello", "malformed"} <= outcomes


# ---------------------------------------------------------------- real clients


class Recorder:
    """A plain TCP socket on 127.0.0.1 that reads a connection's first bytes (until they make a whole
    ClientHello, or 2 s pass) and closes it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []

    def capture(self, run) -> bytes:
        got = {}

        def serve():
            conn, _ = self.sock.accept()
            conn.settimeout(2)
            data = b""
            try:
                while parse_client_hello(data) == NEED_MORE:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (OSError, MalformedClientHello):
                pass
            got["data"] = data
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        run(self.port)
        thread.join(10)
        return got["data"]


def python_client(port, name="example.tv", alpn=("h2", "http/1.1")):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            with context.wrap_socket(sock, server_hostname=name):
                pass
        except (ssl.SSLError, OSError):
            pass


def openssl_client(port):
    subprocess.run(["timeout", "10", "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "example.tv",
                    "-alpn", "http/1.1"], stdin=subprocess.DEVNULL, capture_output=True, timeout=15)


def curl_client(port):
    subprocess.run(["timeout", "10", "curl", "-sk", f"https://example.tv:{port}/", "--resolve", f"example.tv:{port}:127.0.0.1"],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=15)


CLIENTS = {"python": python_client, "openssl": openssl_client, "curl": curl_client}
TOOLS = {"openssl": "openssl", "curl": "curl"}


@functools.cache
def captured() -> dict[str, bytes]:
    """Each client's first bytes, twice (once, for the whole module: the hypothesis tests take them as seeds too)."""
    hellos = {}
    recorder = Recorder()
    try:
        for client, run in CLIENTS.items():
            if client in TOOLS and not shutil.which(TOOLS[client]):
                continue
            hellos[client] = recorder.capture(run)
            hellos[client + " again"] = recorder.capture(run)
    finally:
        recorder.sock.close()
    return hellos


@pytest.mark.parametrize("client", list(CLIENTS))
def test_real_client_hello(client):
    hellos = captured()
    if client not in hellos:
        pytest.skip(f"{TOOLS[client]} is not installed")
    hello = parsed(hellos[client])
    assert hello.server_name == "example.tv"
    assert hello.alpn == ((b"h2", b"http/1.1") if client == "python" else (b"http/1.1",)) or (
        client == "curl" and hello.alpn in ((b"h2", b"http/1.1"), (b"http/1.1",)))
    assert 0x0304 in hello.supported_versions and hello.version == 0x0304 and hello.legacy_version == 0x0303
    assert hello.cipher_suites and 0x1301 in hello.cipher_suites and hello.signature_algorithms
    assert hello.extensions[:1] != () and 0x0000 in hello.extensions and 0x002B in hello.extensions
    assert hello.length == len(hellos[client])
    fingerprint = ja4(hello)
    assert JA4_FORM.match(fingerprint), fingerprint
    assert fingerprint.startswith("t13d") and fingerprint[8:10] == ("h2" if hello.alpn[0] == b"h2" else "h1")
    assert ja4(parsed(hellos[client + " again"])) == fingerprint  # the same client, the same fingerprint
    # JA4_r agrees with the hello's own lists
    _, ciphers, extensions, *signatures = ja4(hello, raw=True).split("_")
    assert ciphers.split(",") == sorted(f"{v:04x}" for v in hello.cipher_suites if not is_grease(v))
    assert signatures == [",".join(f"{v:04x}" for v in hello.signature_algorithms)]


def test_python_client_without_sni():
    recorder = Recorder()
    try:
        data = recorder.capture(lambda port: python_client(port, name=None, alpn=("http/1.1",)))
    finally:
        recorder.sock.close()
    hello = parsed(data)
    assert hello.server_name is None and 0x0000 not in hello.extensions and ja4(hello).startswith("t13i")


# ---------------------------------------------------------------- the certificate store


def make_pair(directory: Path, file_stem: str, name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .sign(key, hashes.SHA256()))
    (directory / f"{file_stem}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / f"{file_stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    ders = {"exact": make_pair(directory, "www.seized.tv", "www.seized.tv"),
            "wildcard": make_pair(directory, "_.wild.tv", "*.wild.tv")}
    return directory, ders


@pytest.fixture(scope="module")
def store(cert_dir):
    return CertificateStore(cert_dir[0])


class TLSServer:
    """An ssl server socket on 127.0.0.1: peeks at the ClientHello, asks the store for the SNI's context
    (or lets the store's SNI callback choose), completes the handshake and says 'ok'."""

    def __init__(self, store: CertificateStore, by_callback=False):
        self.store, self.by_callback = store, by_callback
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hellos: list[ClientHello] = []
        self.errors: list[Exception] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                if self.by_callback:
                    context = self.store.server_context()
                else:
                    data = b""
                    while (hello := parse_client_hello(data)) == NEED_MORE:
                        data = conn.recv(65536, socket.MSG_PEEK)
                    self.hellos.append(hello)
                    context = self.store.context_for(hello.server_name)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except Exception as error:  # noqa: BLE001 - the client side asserts; kept for a failing test's message
                self.errors.append(error)
                conn.close()

    def close(self):
        self.sock.close()


def fetch_certificate(port: int, name: str | None, **options) -> tuple[x509.Certificate, bytes, str | None]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    for key, value in options.items():
        setattr(context, key, value)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
            assert tls.recv(2) == b"ok"
            return x509.load_der_x509_certificate(der), der, tls.selected_alpn_protocol()


def san(certificate: x509.Certificate) -> list[str] | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return None


@pytest.mark.parametrize("by_callback", [False, True], ids=["peeked", "sni_callback"])
def test_handshakes_get_the_right_certificate(store, cert_dir, by_callback):
    _, ders = cert_dir
    server = TLSServer(store, by_callback)
    try:
        for name, expected in [("www.seized.tv", ders["exact"]), ("WWW.Seized.TV.", ders["exact"]),
                               ("a.wild.tv", ders["wildcard"]), ("xn--bcher-kva.wild.tv", ders["wildcard"])]:
            _, der, alpn = fetch_certificate(server.port, name)
            assert der == expected, name
            assert alpn == "http/1.1"
        for name in ("unknown.example", "b.a.wild.tv", "wild.tv", "seized.tv"):
            certificate, der, _ = fetch_certificate(server.port, name)
            assert san(certificate) == [name] and der not in ders.values()
            assert certificate.issuer == certificate.subject
            assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
            assert certificate.public_key().curve.name == "secp256r1"
            lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
            assert lifetime == datetime.timedelta(days=365)
        certificate, _, _ = fetch_certificate(server.port, None)  # no SNI: the default certificate
        assert san(certificate) is None
        assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "seized"
        assert not server.errors
        if not by_callback:
            assert [h.server_name for h in server.hellos][:2] == ["www.seized.tv", "WWW.Seized.TV."]
    finally:
        server.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_is_refused(store):
    server = TLSServer(store)
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client would speak TLS 1.1: the server must refuse
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            with pytest.raises((ssl.SSLError, OSError)):
                context.wrap_socket(sock, server_hostname="old.example")
        for _ in range(50):
            if server.errors:
                break
            threading.Event().wait(0.05)
        assert server.errors and "UNSUPPORTED_PROTOCOL" in str(server.errors[0]), server.errors
        assert server.hellos[-1].version == 0x0302
        certificate, _, _ = fetch_certificate(server.port, "tls12.example", maximum_version=ssl.TLSVersion.TLSv1_2)
        assert san(certificate) == ["tls12.example"]
    finally:
        server.close()


def test_names_are_normalised():
    assert normalise_server_name("WWW.Example.TV.") == "www.example.tv"
    assert normalise_server_name(b"www.example.tv") == "www.example.tv"
    assert normalise_server_name("Bücher.Example") == "xn--bcher-kva.example"
    assert normalise_server_name("under_score.example") == "under_score.example"
    for hostile in (None, "", ".", "a..b", "a" * 64 + ".tv", ("a" * 62 + ".") * 4 + "tv", "a b.tv", "a/b", "*.example.tv",
                    "example.tv:443", "x\x00y", "\\xff.tv", "a" * 5000, b"\xff\xfe", "..", "a.b.."):
        assert normalise_server_name(hostile) is None, hostile


def test_hostile_names_get_the_default_certificate(store):
    for hostile in ("a" * 300, "a" * 64 + ".tv", "evil\x00.tv", "<script>", "*.wild.tv", "", None, "\\xff.example"):
        assert store.context_for(hostile) is store.default
    assert store.context_for("a" * 63 + ".tv") is not store.default  # a long but valid name


def test_cache_reuse_and_bound(cert_dir):
    store = CertificateStore(cert_dir[0], cache_size=2)
    assert store.names() == ["*.wild.tv", "www.seized.tv"]
    first = store.context_for("one.example")
    assert store.context_for("ONE.example.") is first and store.generated == 1
    assert store.context_for("www.seized.tv") is store.context_for("www.seized.tv") and store.generated == 1
    store.context_for("two.example")
    store.context_for("one.example")  # one is now the most recent
    store.context_for("three.example")  # drops two
    assert store.cached() == 2 and store.generated == 3
    assert store.context_for("one.example") is first and store.generated == 3
    store.context_for("two.example")
    assert store.generated == 4


def test_without_a_cert_dir_every_name_is_self_signed():
    store = CertificateStore(None)
    server = TLSServer(store)
    try:
        certificate, _, _ = fetch_certificate(server.port, "www.seized.tv")
        assert san(certificate) == ["www.seized.tv"]
    finally:
        server.close()


def test_bad_cert_dirs_are_refused(tmp_path):
    make_pair(tmp_path, "a.example", "a.example")
    (tmp_path / "a.example.key").unlink()
    with pytest.raises(ValueError, match="no key"):
        CertificateStore(tmp_path)
    make_pair(tmp_path, "a.example", "a.example")
    other = tmp_path / "other"
    other.mkdir()
    make_pair(other, "b.example", "b.example")
    (tmp_path / "a.example.key").write_bytes((other / "b.example.key").read_bytes())  # a key of another certificate
    with pytest.raises(ValueError, match="does not load"):
        CertificateStore(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        CertificateStore(tmp_path / "missing")
    star = tmp_path / "star"
    star.mkdir()
    make_pair(star, "*.star.tv", "*.star.tv")
    assert CertificateStore(star).names() == ["*.star.tv"]
    make_pair(star, "_.star.tv", "*.star.tv")
    with pytest.raises(ValueError, match="second pair"):
        CertificateStore(star)


def test_many_names_stay_cheap():
    store = CertificateStore(None, cache_size=64)
    names = [f"n{i}.example" for i in range(64)]
    for name in names:
        store.context_for(name)
    made = store.generated
    for name in random.sample(names, 64):
        store.context_for(name)
    assert store.generated == made == 64


def test_accept_limits_the_names_that_get_a_certificate():
    store = CertificateStore(None, accept=lambda name: name == "seized.tv" or name.endswith(".seized.tv"))
    assert store.context_for("www.seized.tv") is not store.default
    assert store.context_for("random-1234.example") is store.default and store.generated == 1
