"""What a request tells us about its sender, taken on the request path: only cheap work here
(redaction, decoding and JSON happen later, in the ingest process; see record.py)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .config import Network

FORM_TYPE = b"application/x-www-form-urlencoded"


@dataclass(slots=True)
class Hit:
    """One request as received. Bytes stay bytes until the writer turns them into a stored row."""

    received_at_ns: int
    node: str
    host: bytes
    domain: str | None
    scheme: str
    method: str
    raw_path: bytes
    query: bytes
    http_version: str
    client_ip: str | None
    client_port: int | None
    peer_ip: str | None
    peer_port: int | None
    server_ip: str | None  # the local address the connection arrived at (sockname): behind a proxy, the proxy-facing one
    server_port: int | None
    headers: list[tuple[bytes, bytes]]
    body_size: int = 0
    body_sha256: str | None = None
    # Form bodies are kept (up to the cap) so the writer can redact passwords before hashing.
    form_body: bytes | None = None
    status: int = 0
    duration_ms: float = 0.0
    # Set when the HTTP parser rejected the request before the app saw it (see protocol.py).
    error: str | None = None
    client_kind: str | None = None
    account: str | None = None
    device: dict | None = None
    # Plaintext, in memory only: the writer stores HMAC(match_key, password) and drops this.
    password: str | None = None
    uid: str | None = None


def make_uid(received_at_ns: int, source: str, sequence: int) -> str:
    """32 hex digits: the time first, so uids sort roughly by time."""
    return f"{received_at_ns:016x}{source}{sequence & 0xFFFFFFFF:08x}"


# What a listener worker writes to the journal for each hit, in this order (journal.py): the
# request as received and what was answered. `source` (random per worker process) and `sequence`
# (its counter) make the hit's uid, with its time: unique across workers, nodes and restarts.
# `headers` is journal.pack_headers() of the (name, value) list. Everything derived (client kind, account, redaction,
# HMAC, GeoIP, the chain) is done by the ingest process, off the request path.
JOURNAL_FIELDS = (
    "source", "sequence", "received_at_ns", "node", "host", "domain", "scheme", "method", "raw_path", "query", "http_version",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_ip", "server_port", "headers", "body_size", "body_sha256",
    "form_body", "status", "duration_ms", "error",
)
# The records of versions before server_ip (one field fewer), which a journal may still hold at an
# upgrade: ingest reads them too, with server_ip None. Frozen: what those versions wrote.
JOURNAL_FIELDS_WITHOUT_SERVER_IP = (
    "source", "sequence", "received_at_ns", "node", "host", "domain", "scheme", "method", "raw_path", "query", "http_version",
    "client_ip", "client_port", "peer_ip", "peer_port", "server_port", "headers", "body_size", "body_sha256",
    "form_body", "status", "duration_ms", "error",
)


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen through a dual-stack socket is that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def unmapped(ip: str) -> str:
    """An IPv4 address seen through a dual-stack socket ('::ffff:192.0.2.1') as itself; any other unchanged."""
    if ip.startswith("::ffff:"):
        address = parse_ip(ip)
        return str(address) if address is not None else ip
    return ip


FORWARDED_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only: "²".isdigit() is true and int("²") fails


def parse_port(text: str | bytes) -> int | None:
    """A TCP port as a proxy writes it, else None (no sign, no spaces inside, no non-ASCII digits)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if not PORT.fullmatch(text):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def parse_node(node: str) -> tuple[str | None, int | None]:
    """A Forwarded `for=` node or an X-Forwarded-For entry -> (ip, port), (None, None) if unusable."""
    node = node.strip().strip('"').strip()
    port = None
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        if rest.startswith(":"):
            port = parse_port(rest[1:])
    elif node.count(":") == 1:
        host, _, port_text = node.partition(":")
        port = parse_port(port_text)
    else:
        host = node
    address = parse_ip(host)
    if address is None:
        return None, None
    return str(address), port


def forwarded_chain(headers: list[tuple[bytes, bytes]], header: str = "x-forwarded-for") -> tuple[list[str], str | None] | None:
    """Hops from the one forwarding header believed (`header`: x-forwarded-for, forwarded or
    x-real-ip), oldest first, plus the scheme that mechanism reports. None when that header is
    absent; any other forwarding header is ignored here (it is stored with the hit, never believed).

    The scheme: for `forwarded`, only the nearest proxy's element (the last) counts, so a client's own
    `Forwarded: for=...;proto=https` passed along cannot set it; for `x-forwarded-for`, the last
    `X-Forwarded-Proto` (the proxy must set it, e.g. nginx `proxy_set_header X-Forwarded-Proto $scheme`,
    which replaces the client's); `x-real-ip` carries none."""
    if header == "forwarded":
        forwarded = [v for k, v in headers if k == b"forwarded"]
        if not forwarded:
            return None
        hops, proto = [], None
        for element in b",".join(forwarded).decode("latin-1").split(","):
            proto = None  # what counts is the last element's
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                key = key.strip().lower()
                if key == "for":
                    hops.append(value)
                elif key == "proto":
                    proto = value.strip().strip('"').lower()
        return hops, proto
    if header == "x-real-ip":
        real = [v for k, v in headers if k == b"x-real-ip"]
        if not real:
            return None
        return [real[-1].decode("latin-1")], None  # one client address; a repeated header: the last (the proxy's)
    if header != "x-forwarded-for":
        raise ValueError(f"unknown forwarding header: {header!r}")
    xff = [v for k, v in headers if k == b"x-forwarded-for"]
    if xff:
        proto = next((v.decode("latin-1").strip().lower() for k, v in reversed(headers) if k == b"x-forwarded-proto"), None)
        return b",".join(xff).decode("latin-1").split(","), proto
    return None


class ClientResolver:
    """Who the client is: the TCP peer, unless the peer is a trusted proxy, in which case the
    rightmost hop of the one forwarding header configured (`forwarded_header`) that is not itself
    a trusted proxy. Every other forwarding header is stored with the hit and never believed."""

    def __init__(self, trusted: list[Network], port_header: str, forwarded_header: str = "x-forwarded-for"):
        if forwarded_header not in FORWARDED_HEADERS:
            raise ValueError(f"forwarded_header must be one of {', '.join(FORWARDED_HEADERS)}")
        self._trusted = trusted
        self._port_header = port_header.encode("latin-1")
        self._forwarded_header = forwarded_header

    def is_trusted(self, ip: str | None) -> bool:
        if not self._trusted:  # (asked of every new connection: no address parsing when nothing is trusted)
            return False
        address = parse_ip(ip) if ip else None
        return address is not None and any(address in network for network in self._trusted)

    def resolve(self, peer_ip: str | None, peer_port: int | None, headers, scheme: str):
        """-> (client_ip, client_port, scheme)."""
        if peer_ip is not None and peer_ip.startswith("::ffff:"):
            address = parse_ip(peer_ip)
            peer_ip = str(address) if address is not None else peer_ip
        if not self.is_trusted(peer_ip):
            return peer_ip, peer_port, scheme
        chain = forwarded_chain(headers, self._forwarded_header)
        if chain is None:
            return peer_ip, peer_port, scheme
        hops, proto = chain
        if proto in ("http", "https"):
            scheme = proto
        client_ip, client_port = peer_ip, peer_port
        from_nearest_proxy = True
        for hop in reversed(hops):
            ip, port = parse_node(hop)
            if ip is None:
                # An obfuscated or garbled hop: nothing beyond it can be believed.
                break
            client_ip, client_port = ip, port
            if port is None and from_nearest_proxy:
                client_port = self._port_from_header(headers)
            if not self.is_trusted(ip):
                break
            from_nearest_proxy = False
        return client_ip, client_port, scheme

    def _port_from_header(self, headers) -> int | None:
        """The source port the nearest proxy saw, if it sends one (e.g. nginx `$remote_port`)."""
        for name, value in reversed(headers):
            if name == self._port_header:
                return parse_port(value.strip())
        return None
