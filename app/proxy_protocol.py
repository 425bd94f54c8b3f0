"""The PROXY protocol (HAProxy's, versions 1 and 2): the header a TCP proxy (nginx `stream` with
`proxy_protocol on`, HAProxy `send-proxy`/`send-proxy-v2`) sends before the client's bytes, naming
the client's address and port and the address and port the client connected to. Read only from
`trusted_proxies` (listener.py); from anyone else the bytes are the request itself.

    v1: "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\\r\\n" (text, at most 107 bytes), or "PROXY UNKNOWN ...\\r\\n"
    v2: a 12-byte signature, version/command, family/transport, a 2-byte length, then the
        addresses (IPv4: 12 bytes, IPv6: 36) and TLVs, which are skipped.

parse() takes the bytes received so far and says: not a PROXY header, need more bytes, invalid
(with why), or the header's length and what it names (None for LOCAL/UNKNOWN: the proxy's own
connection, a health check)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the specification's figure)
V2_MAX_LENGTH = 4096  # the addresses and TLVs a proxy sends are far shorter; more is refused


@dataclass(frozen=True, slots=True)
class Addresses:
    client_ip: str
    client_port: int
    destination_ip: str
    destination_port: int


@dataclass(frozen=True, slots=True)
class Header:
    length: int  # bytes to drop from the front of the stream
    addresses: Addresses | None  # None: LOCAL (v2) or UNKNOWN (v1), the proxy speaking for itself
    version: int


class Invalid(ValueError):
    """A PROXY header that cannot be read: the connection is closed and the attempt logged."""


NEED_MORE = "need more"


def looks_like(data: bytes) -> bool:
    """Whether `data` (however short) could be the start of a PROXY header."""
    return V2_SIGNATURE.startswith(data[:12]) or V1_PREFIX.startswith(data[:6])


def parse(data: bytes) -> Header | str | None:
    """None: no PROXY header at the front of `data`; NEED_MORE: perhaps, once more has arrived;
    else the Header. Raises Invalid for a header that starts right but is malformed."""
    if data[:12] == V2_SIGNATURE:
        return _v2(data)
    if data[:6] == V1_PREFIX:
        return _v1(data)
    return NEED_MORE if data and looks_like(data) else None


def _v1(data: bytes) -> Header | str:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise Invalid("PROXY v1: no CRLF within 107 bytes")
        return NEED_MORE
    parts = data[:end].split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return Header(end + 2, None, 1)
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise Invalid("PROXY v1: expected PROXY TCP4|TCP6 SRC DST SPORT DPORT")
    version = 4 if parts[1] == b"TCP4" else 6
    client, destination = (_address(p, version) for p in parts[2:4])
    client_port, destination_port = (_port(p) for p in parts[4:6])
    return Header(end + 2, Addresses(client, client_port, destination, destination_port), 1)


def _address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Invalid(f"PROXY v1: {text[:45]!r} is no IP address") from None
    if address.version != version:
        raise Invalid(f"PROXY v1: {address} is not IPv{version}")
    return str(address)


def _port(text: bytes) -> int:
    # ASCII digits only, no sign, no leading zero (the specification's form), 0-65535
    if not (text.isdigit() and text.isascii()) or len(text) > 5 or (len(text) > 1 and text[:1] == b"0"):
        raise Invalid(f"PROXY v1: {text[:8]!r} is no port")
    port = int(text)
    if port > 65535:
        raise Invalid(f"PROXY v1: port {port} out of range")
    return port


def _v2(data: bytes) -> Header | str:
    if len(data) < 16:
        return NEED_MORE
    version_command, family, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if version_command >> 4 != 2:
        raise Invalid(f"PROXY v2: version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise Invalid(f"PROXY v2: command {command}")
    if length > V2_MAX_LENGTH:
        raise Invalid(f"PROXY v2: {length} bytes of addresses")
    if len(data) < 16 + length:
        return NEED_MORE
    body, total = data[16:16 + length], 16 + length
    if command == 0:  # LOCAL: the proxy's own connection; addresses, if any, are ignored
        return Header(total, None, 2)
    if family == 0x11:  # TCP over IPv4
        if length < 12:
            raise Invalid("PROXY v2: short IPv4 addresses")
        src, dst, sport, dport = struct.unpack("!4s4sHH", body[:12])
    elif family == 0x21:  # TCP over IPv6
        if length < 36:
            raise Invalid("PROXY v2: short IPv6 addresses")
        src, dst, sport, dport = struct.unpack("!16s16sHH", body[:36])
    elif family == 0x00:  # UNSPEC: nothing to say about the client
        return Header(total, None, 2)
    else:
        raise Invalid(f"PROXY v2: family/transport 0x{family:02x} (only TCP over IPv4 or IPv6 is served)")
    return Header(total, Addresses(str(ipaddress.ip_address(src)), sport, str(ipaddress.ip_address(dst)), dport), 2)
