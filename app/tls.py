"""HTTPS visitors, the parts that need no socket: reading a TLS ClientHello, its JA4 fingerprint,
and the certificates the TLS listener answers with. Not wired to the listener here (issue 12).

ClientHello. `parse_client_hello(data)` takes the bytes a connection has sent so far and says:
None (not a TLS handshake: the first record is not a handshake record 0x16 0x03..), NEED_MORE (a
ClientHello has begun and is not complete yet), or the `ClientHello` read from it. A ClientHello may
be spread over several handshake records (RFC 8446 5.1); they are put back together, and the whole
(record headers included) must fit in the first `MAX_CLIENT_HELLO` (64 KiB) bytes, so a listener
never buffers more than that before deciding. Anything that starts as a TLS handshake and then does
not add up (lengths that overrun, a record of another type in the middle, a handshake message that
is not a ClientHello, an extension whose body does not parse) raises `MalformedClientHello` with
why; no other exception leaves the parser, whatever the bytes (tests/unit/test_tls.py throws random,
truncated and bit-flipped ClientHellos at it). An SSLv2-compatible hello (first byte 0x80) is None.

What is kept, in the order the client sent it and with GREASE values (RFC 8701) left in place:
the record and legacy versions, supported_versions (extension 43), the SNI host_name (extension 0),
the ALPN protocols (16), cipher suites, extension types, signature algorithms (13) and supported
groups (10). `as_dict()` gives the fields as a hit records them (hex strings, names, the JA4).

JA4 (FoxIO, technical_details/JA4.md): `ja4(hello)` is e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1":
  t, the TLS version ("13": highest of supported_versions, else the legacy version; "00" unknown),
  d/i (SNI extension present or not), the number of cipher suites and of extensions (two digits,
  at most 99, GREASE not counted, SNI and ALPN counted), the first and last characters of the first
  ALPN value ("00" without one; the hex digits if either byte is not alphanumeric);
  _ the first 12 hex digits of SHA-256 over the cipher suites sorted (4 hex digits each, comma-joined);
  _ the same over the extension types sorted, SNI (0000) and ALPN (0010) left out, then "_" and
  the signature algorithms in the order sent ("_" and the list left out when there are none).
  GREASE is ignored everywhere; an empty list hashes to "000000000000". `ja4(hello, raw=True)` gives
  the lists instead of their hashes (JA4_r), `original=True` the order sent with SNI and ALPN kept
  (JA4_o / JA4_ro).

Certificates. `CertificateStore(cert_dir)` holds one server-side `ssl.SSLContext` (TLS 1.2 and
later, ALPN http/1.1) per name; `context_for(server_name)` picks the one for an SNI:
  - cert_dir holds a pair per name: `<name>.crt` (PEM: the certificate, then any intermediates)
    and `<name>.key` (PEM private key, unencrypted), e.g. `www.example.tv.crt` + `www.example.tv.key`.
    A wildcard pair is spelled with `_` for the `*` (`_.example.tv.crt`, `_.example.tv.key`; a literal
    `*.example.tv.crt` is read too) and covers exactly one label: a.example.tv, not example.tv nor
    a.b.example.tv. The exact name wins over a wildcard. All pairs are loaded when the store is made;
    a certificate without its key, or a pair that does not load, stops it with ValueError naming the file.
  - any other name gets a self-signed certificate made for it on the spot (EC P-256, subject CN and
    SAN the name, valid a year from an hour ago; one key, made with the store, signs them all), kept in a bounded LRU cache (`cache_size`, default
    1024 names) so a returning name costs a dictionary lookup. Python's ssl can load a certificate only
    from a file: the PEM is written to a private (0600) temporary file for the load and removed.
    Making one costs ~2-3 ms, so a flood of made-up names costs CPU (never memory): `accept`, a
    predicate on the normalised name (e.g. "falls under a seized domain"), limits the names that get
    their own certificate; the others get the default one.
  - names are normalised first: lower case, one trailing dot dropped, Unicode names to their IDNA
    A-label (xn--...). No SNI, or one that is no host name (over 253 bytes, a label over 63, empty
    labels, characters other than letters, digits, '-' and '_'), gets the default certificate: the
    self-signed one for no name (CN "seized", no SAN), never an error.
`server_context()` is a context whose SNI callback switches the connection to `context_for(name)`,
for a listener that lets OpenSSL read the ClientHello; one that reads it itself (to record it) calls
`context_for(hello.server_name)` and wraps the socket with that."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import ssl
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MAX_CLIENT_HELLO = 64 * 1024  # bytes of records (headers included) the ClientHello must fit in
NEED_MORE = "need more"

HANDSHAKE = 22
CLIENT_HELLO = 1
MAX_RECORD = 2**14 + 256  # a plaintext record's fragment is at most 2^14; a little slack, as OpenSSL allows

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B

VERSION_NAMES = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0",
                 0x0300: "SSL 3.0", 0x0002: "SSL 2.0", 0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3"}
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


class MalformedClientHello(ValueError):
    """Bytes that begin as a TLS handshake but are no well-formed ClientHello (the message says why)."""


def is_grease(value: int) -> bool:
    """RFC 8701's reserved values 0x0a0a, 0x1a1a ... 0xfafa (cipher suites, extensions, versions, groups, signatures)."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def version_name(value: int) -> str:
    return VERSION_NAMES.get(value) or ("GREASE" if is_grease(value) else f"0x{value:04x}")


@dataclass(frozen=True, slots=True)
class ClientHello:
    length: int  # bytes of the stream the ClientHello's records took (what a listener has consumed)
    record_version: int  # the first record header's version (0x0301 from most clients)
    legacy_version: int  # the ClientHello's own version field (0x0303 for TLS 1.2 and 1.3)
    supported_versions: tuple[int, ...]  # extension 43, as sent (() without it)
    server_name: str | None  # the first SNI host_name, UTF-8 with undecodable bytes as \\xNN; None without one
    alpn: tuple[bytes, ...]  # ALPN protocol names offered, as sent
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]  # extension types in the order sent
    signature_algorithms: tuple[int, ...]  # extension 13, in order
    supported_groups: tuple[int, ...]  # extension 10, in order
    grease: bool  # a GREASE value among the suites, extensions, versions, groups or signatures

    @property
    def version(self) -> int:
        """The highest version offered: supported_versions' greatest non-GREASE value, else the legacy version."""
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.legacy_version

    def as_dict(self) -> dict:
        """The hello as a hit records it: plain JSON values, GREASE kept (as "GREASE" among versions)."""
        return {
            "sni": self.server_name,
            "alpn": [p.decode("utf-8", "backslashreplace") for p in self.alpn],
            "version": version_name(self.version),
            "legacy_version": version_name(self.legacy_version),
            "supported_versions": [version_name(v) for v in self.supported_versions],
            "cipher_suites": [f"{v:04x}" for v in self.cipher_suites],
            "extensions": [f"{v:04x}" for v in self.extensions],
            "signature_algorithms": [f"{v:04x}" for v in self.signature_algorithms],
            "supported_groups": [f"{v:04x}" for v in self.supported_groups],
            "grease": self.grease,
            "ja4": ja4(self),
        }


def parse_client_hello(data: bytes, limit: int = MAX_CLIENT_HELLO) -> ClientHello | str | None:
    """None: not a TLS handshake; NEED_MORE: a ClientHello so far; else the ClientHello.
    Raises MalformedClientHello, and nothing else, for anything that starts as TLS and is not one."""
    try:
        return _parse(bytes(data), limit)
    except MalformedClientHello:
        raise
    except (IndexError, ValueError, UnicodeError) as error:  # a check missed below: still only ours leaves
        raise MalformedClientHello(f"unreadable ClientHello ({type(error).__name__})") from None


def _parse(data: bytes, limit: int) -> ClientHello | str | None:
    if not data:
        return NEED_MORE
    if data[0] != HANDSHAKE or (len(data) > 1 and data[1] != 3):
        return None
    message = bytearray()
    needed = None  # the handshake message's whole length once its 4-byte header is in
    offset = 0
    record_version = None
    while needed is None or len(message) < needed:
        if offset + 5 > len(data):
            return _need_more(offset + 5, limit)
        kind, major, minor = data[offset], data[offset + 1], data[offset + 2]
        size = int.from_bytes(data[offset + 3:offset + 5], "big")
        if kind != HANDSHAKE:
            raise MalformedClientHello(f"record of type {kind} inside the ClientHello")
        if major != 3 or minor > 4:
            raise MalformedClientHello(f"record version {major}.{minor}")
        if size == 0:
            raise MalformedClientHello("empty handshake record")
        if size > MAX_RECORD:
            raise MalformedClientHello(f"record of {size} bytes")
        if record_version is None:
            record_version = major << 8 | minor
        if offset + 5 + size > limit:
            raise MalformedClientHello(f"ClientHello over {limit} bytes")
        if offset + 5 + size > len(data):
            return NEED_MORE
        message += data[offset + 5:offset + 5 + size]
        offset += 5 + size
        if needed is None and len(message) >= 4:
            if message[0] != CLIENT_HELLO:
                raise MalformedClientHello(f"handshake message of type {message[0]}, not ClientHello")
            needed = 4 + int.from_bytes(message[1:4], "big")
            if needed > limit:
                raise MalformedClientHello(f"ClientHello of {needed - 4} bytes, over {limit}")
    if len(message) > needed:
        # The records carry more than the ClientHello: another handshake message right behind it.
        # No client sends that before the server has answered; what follows is not read.
        message = message[:needed]
    return _client_hello(_Reader(bytes(message[4:])), offset, record_version)


def _need_more(would_reach: int, limit: int) -> str:
    if would_reach > limit:
        raise MalformedClientHello(f"ClientHello over {limit} bytes")
    return NEED_MORE


class _Reader:
    __slots__ = ("data", "at", "end")

    def __init__(self, data: bytes, at: int = 0, end: int | None = None):
        self.data, self.at, self.end = data, at, len(data) if end is None else end

    def left(self) -> int:
        return self.end - self.at

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.at:
            raise MalformedClientHello(f"{what}: {n} bytes announced, {self.end - self.at} left")
        self.at += n
        return self.data[self.at - n:self.at]

    def take_all(self) -> bytes:
        return self.take(self.end - self.at, "")

    def number(self, width: int, what: str) -> int:
        return int.from_bytes(self.take(width, what), "big")

    def block(self, width: int, what: str) -> _Reader:
        """A length-prefixed block (length of `width` bytes) as a reader of its own."""
        n = self.number(width, what)
        self.take(n, what)
        return _Reader(self.data, self.at - n, self.at)

    def u16_list(self, width: int, what: str) -> tuple[int, ...]:
        body = self.block(width, what)
        if body.left() % 2:
            raise MalformedClientHello(f"{what}: odd length {body.left()}")
        raw = body.take(body.left(), what)
        return tuple(int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2))

    def done(self, what: str) -> None:
        if self.at != self.end:
            raise MalformedClientHello(f"{what}: {self.end - self.at} bytes left over")


def _client_hello(body: _Reader, length: int, record_version: int) -> ClientHello:
    legacy_version = body.number(2, "version")
    body.take(32, "random")
    session_id = body.block(1, "session id")
    if session_id.left() > 32:
        raise MalformedClientHello(f"session id of {session_id.left()} bytes")
    cipher_suites = body.u16_list(2, "cipher suites")
    if not cipher_suites:
        raise MalformedClientHello("no cipher suites")
    if not body.block(1, "compression methods").left():
        raise MalformedClientHello("no compression methods")
    extensions: list[int] = []
    fields: dict[str, object] = {}
    if body.left():  # a hello without extensions (SSL 3.0, old TLS 1.0 clients) ends here
        block = body.block(2, "extensions")
        body.done("ClientHello")
        while block.left():
            kind = block.number(2, "extension type")
            ext = block.block(2, f"extension {kind}")
            extensions.append(kind)
            reader = _EXTENSIONS.get(kind)
            if reader is not None and reader[0] not in fields:  # a repeated extension: the first one counts
                fields[reader[0]] = reader[1](ext)
    supported_versions = fields.get("supported_versions", ())
    signature_algorithms = fields.get("signature_algorithms", ())
    supported_groups = fields.get("supported_groups", ())
    grease = any(is_grease(v) for values in (cipher_suites, extensions, supported_versions, signature_algorithms,
                                              supported_groups) for v in values)
    return ClientHello(
        length=length, record_version=record_version, legacy_version=legacy_version,
        supported_versions=supported_versions, server_name=fields.get("server_name"), alpn=fields.get("alpn", ()),
        cipher_suites=cipher_suites, extensions=tuple(extensions), signature_algorithms=signature_algorithms,
        supported_groups=supported_groups, grease=grease)


def _server_name(ext: _Reader) -> str | None:
    names = ext.block(2, "server_name list")
    ext.done("server_name")
    if not names.left():
        raise MalformedClientHello("server_name: empty list")
    host = None
    while names.left():
        kind = names.number(1, "server_name type")
        name = names.block(2, "server_name").take_all()
        if kind == 0 and host is None:
            if not name:
                raise MalformedClientHello("server_name: empty host_name")
            host = name.decode("utf-8", "backslashreplace")
    return host


def _alpn(ext: _Reader) -> tuple[bytes, ...]:
    names = ext.block(2, "ALPN list")
    ext.done("ALPN")
    protocols = []
    while names.left():
        protocols.append(names.block(1, "ALPN protocol").take_all())
    return tuple(protocols)


def _supported_versions(ext: _Reader) -> tuple[int, ...]:
    versions = ext.u16_list(1, "supported_versions")
    ext.done("supported_versions")
    return versions


def _u16_list_ext(what: str):
    def read(ext: _Reader) -> tuple[int, ...]:
        values = ext.u16_list(2, what)
        ext.done(what)
        return values
    return read


_EXTENSIONS = {
    EXT_SERVER_NAME: ("server_name", _server_name),
    EXT_ALPN: ("alpn", _alpn),
    EXT_SUPPORTED_VERSIONS: ("supported_versions", _supported_versions),
    EXT_SIGNATURE_ALGORITHMS: ("signature_algorithms", _u16_list_ext("signature_algorithms")),
    EXT_SUPPORTED_GROUPS: ("supported_groups", _u16_list_ext("supported_groups")),
}


# ---------------------------------------------------------------- JA4


def _alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _ja4_alpn(hello: ClientHello) -> str:
    if not hello.alpn or not hello.alpn[0]:
        return "00"
    first = hello.alpn[0]
    if _alnum(first[0]) and _alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    digits = first.hex()
    return digits[0] + digits[-1]


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12] if text else "000000000000"


def ja4(hello: ClientHello, *, raw: bool = False, original: bool = False) -> str:
    """The JA4 fingerprint (module docstring). raw: JA4_r (the lists, not their hashes); original:
    JA4_o (cipher suites and extensions in the order sent, SNI and ALPN kept); both: JA4_ro."""
    ciphers = [v for v in hello.cipher_suites if not is_grease(v)]
    extensions = [v for v in hello.extensions if not is_grease(v)]
    signatures = [v for v in hello.signature_algorithms if not is_grease(v)]
    version = _JA4_VERSIONS.get(hello.version, "00")
    sni = "d" if EXT_SERVER_NAME in extensions else "i"
    a = f"t{version}{sni}{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{_ja4_alpn(hello)}"
    if not original:
        ciphers = sorted(ciphers)
        extensions = sorted(v for v in extensions if v not in (EXT_SERVER_NAME, EXT_ALPN))
    b = ",".join(f"{v:04x}" for v in ciphers)
    c = ",".join(f"{v:04x}" for v in extensions)
    if c and signatures:
        c += "_" + ",".join(f"{v:04x}" for v in signatures)
    if raw:
        return f"{a}_{b}_{c}"
    return f"{a}_{_hash12(b)}_{_hash12(c)}"


# ---------------------------------------------------------------- certificates

MAX_NAME = 253
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")


def normalise_server_name(name: str | bytes | None) -> str | None:
    """'WWW.Example.TV.' -> 'www.example.tv', 'Bücher.example' -> 'xn--bcher-kva.example'; None for
    no name or one that is no host name (see the module docstring). Never raises."""
    if name is None:
        return None
    try:
        if isinstance(name, bytes):
            name = name.decode("utf-8")
        if len(name) > 4 * MAX_NAME:
            return None
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        if not name.isascii():
            name = name.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return None
    if not name or len(name) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def _wildcard_of(name: str) -> str | None:
    """'a.example.tv' -> '*.example.tv' (the wildcard covering it); None for a single label."""
    rest = name.partition(".")[2]
    return "*." + rest if rest else None


class CertificateStore:
    """Server-side TLS contexts per name (module docstring): cert_dir pairs, wildcards, else self-signed."""

    DEFAULT_NAME = "seized"  # the no-name certificate's subject CN

    def __init__(self, cert_dir: Path | str | None = None, *, cache_size: int = 1024,
                 alpn: tuple[str, ...] = ("http/1.1",), valid_days: int = 365,
                 accept: Callable[[str], bool] | None = None):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.cache_size = max(1, cache_size)
        self.alpn = tuple(alpn)
        self.valid_days = valid_days
        self.accept = accept  # None: every valid name gets its own certificate; else only those it says yes to
        self.generated = 0  # self-signed certificates made so far (the cache's misses)
        self._lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())  # one key for every self-signed certificate
        self._cache: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._files: dict[str, ssl.SSLContext] = {}
        if cert_dir is not None:
            self._load_dir(Path(cert_dir))
        self.default = self._self_signed(None)

    # -- lookup

    def context_for(self, server_name: str | bytes | None) -> ssl.SSLContext:
        """The context to answer `server_name` (an SNI, however spelled or hostile) with. Never raises
        for a name; the self-signed certificates it makes are cached, least recently used dropped."""
        name = normalise_server_name(server_name)
        if name is None:
            return self.default
        context = self._files.get(name)
        if context is None:
            wildcard = _wildcard_of(name)
            context = self._files.get(wildcard) if wildcard else None
        if context is not None:
            return context
        if self.accept is not None and not self.accept(name):
            return self.default
        with self._lock:
            context = self._cache.get(name)
            if context is not None:
                self._cache.move_to_end(name)
                return context
        context = self._self_signed(name)  # made outside the lock: a race makes one twice, harmlessly
        with self._lock:
            self.generated += 1
            self._cache[name] = context
            self._cache.move_to_end(name)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return context

    def names(self) -> list[str]:
        """The names cert_dir has pairs for (wildcards as '*.example.tv')."""
        return sorted(self._files)

    def cached(self) -> int:
        return len(self._cache)

    def sni_callback(self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                     context: ssl.SSLContext) -> None:
        """For SSLContext.sni_callback: switch the connection to the name's context."""
        ssl_object.context = self.context_for(server_name)

    def server_context(self) -> ssl.SSLContext:
        """A context answering with the default certificate that switches by SNI (`sni_callback`)."""
        context = self._context_from_pem(self._default_pem)
        context.sni_callback = self.sni_callback
        return context

    # -- making contexts

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.alpn:
            context.set_alpn_protocols(list(self.alpn))
        return context

    def _load_dir(self, cert_dir: Path) -> None:
        if not cert_dir.is_dir():
            raise ValueError(f"tls_cert_dir {cert_dir} is not a directory")
        for cert in sorted(cert_dir.glob("*.crt")):
            stem = cert.name[:-len(".crt")]
            key = cert.with_name(stem + ".key")
            if not key.is_file():
                raise ValueError(f"{cert}: no key beside it ({key.name})")
            wildcard = stem.startswith(("_.", "*."))
            name = normalise_server_name(stem[2:] if wildcard else stem)
            if name is None:
                raise ValueError(f"{cert}: {stem!r} is no host name")
            name = "*." + name if wildcard else name
            if name in self._files:
                raise ValueError(f"{cert}: a second pair for {name}")
            context = self._new_context()
            try:
                context.load_cert_chain(cert, key)
            except (ssl.SSLError, OSError) as error:
                raise ValueError(f"{cert}: does not load with {key.name}: {error}") from None
            self._files[name] = context

    def _self_signed(self, name: str | None) -> ssl.SSLContext:
        pem = self._certificate_pem(name)
        if name is None:
            self._default_pem = pem
        return self._context_from_pem(pem)

    def _context_from_pem(self, pem: bytes) -> ssl.SSLContext:
        context = self._new_context()
        # load_cert_chain reads files only: a private temporary file (mkstemp makes it 0600), then gone.
        fd, path = tempfile.mkstemp(prefix="seized-tls-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context

    def _certificate_pem(self, name: str | None) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        common_name = name if name is not None and len(name) <= 64 else self.DEFAULT_NAME
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(subject)
                   .public_key(self._key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=self.valid_days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if name is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        return (certificate.public_bytes(serialization.Encoding.PEM)
                + self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
