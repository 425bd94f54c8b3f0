"""The seized domains as the lists ISPs load into their resolvers, so that every name under a seized
domain resolves to this service's nodes. One function per resolver format; each output starts with
a comment header (what made it, when, how many domains, the serial).

Every format covers a domain and all its subdomains, as the notice does (domains.DomainTable):
  rpz        a Response Policy Zone (BIND 9, Knot Resolver, PowerDNS Recursor, Unbound's rpz):
             `name A addr` and `*.name A addr` under the zone's origin, with SOA and NS
  bind       a named.conf fragment: one primary zone per domain, all served from one zone file
  bind-zone  that zone file (`@` and `*` to the addresses), for `bind` without RPZ
  unbound    `local-zone: "name." redirect` with its `local-data` in a `server:` clause
  dnsmasq    `address=/name/addr` (dnsmasq matches subdomains itself)
  hosts      `addr name` and `addr www.name`: a hosts file has no wildcards, so only those two
  csv        one row per domain: the name, the addresses and its notice fields (no comment
             header: CSV has no comments; `seized domains import` reads it back)

Names are written as DNS carries them: IDNA A-labels (xn--…), lower case. A stored name that is no
DNS name (app/tls.normalise_server_name says which) is left out and named in the header.
The serial is the export's time in Unix seconds: each export is newer than the one before, which is
all a secondary or a reload needs (RFC 1982 arithmetic holds until 2106)."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .query import CsvWriter
from .record import utc_text
from .tls import normalise_server_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_ZONE = "rpz.seized"
DEFAULT_TTL = 300
DEFAULT_ZONE_FILE = "/etc/bind/db.seized-redirect"
NOTICE_COLUMNS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by", "notes", "active")


def dns_name(name: str) -> str | None:
    """A domain as DNS writes it (A-labels, lower case, no trailing dot), or None if it is none:
    empty labels, a label over 63 or a name over 253 bytes, characters DNS names do not hold."""
    return normalise_server_name(name)


def parse_addresses(values) -> list[IPAddress]:
    """The node addresses the names are to resolve to: at least one, IPv4 or IPv6, each once, in the
    order given. ValueError names the first that is no address."""
    addresses: list[IPAddress] = []
    for value in values or ():
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise ValueError(f"not an IP address: {value!r}") from None
        if getattr(address, "scope_id", None):  # fe80::1%eth0 means something on one host only, and no resolver takes it
            raise ValueError(f"an address with a zone index is no use to a resolver: {value!r}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ValueError("give at least one address to point the domains at")
    return addresses


def record_type(address: IPAddress) -> str:
    return "A" if address.version == 4 else "AAAA"


@dataclass(frozen=True)
class ResolverList:
    """What every format is made from: the active seized domains (as DNS names) and the addresses."""

    domains: list[dict]  # each a domain row with "name" replaced by its DNS name, sorted, one per name
    skipped: list[str]  # stored names that are no DNS names
    addresses: list[IPAddress]
    zone: str = DEFAULT_ZONE
    ttl: int = DEFAULT_TTL
    zone_file: str = DEFAULT_ZONE_FILE
    serial: int = 0
    generated_at: str = ""

    @classmethod
    def build(cls, rows: list[dict], addresses, *, zone: str = DEFAULT_ZONE, ttl: int = DEFAULT_TTL,
              zone_file: str = DEFAULT_ZONE_FILE, now: float | None = None) -> ResolverList:
        """From store.list_domains() rows: the active ones. ValueError for a bad address, zone or ttl."""
        origin = dns_name(zone)
        if origin is None:
            raise ValueError(f"not a zone name: {zone!r}")
        if not 0 <= ttl <= 2**31 - 1:
            raise ValueError("ttl must lie between 0 and 2147483647 seconds")
        if not zone_file or any(c in zone_file for c in '"\\\n\r;{}') or not zone_file.isprintable():
            raise ValueError(f"not a usable zone file path: {zone_file!r}")
        moment = time.time() if now is None else now
        domains, skipped = {}, []
        for row in sorted(rows, key=lambda r: r["name"]):
            if not row["active"]:
                continue
            name = dns_name(row["name"])
            if name is None:
                skipped.append(row["name"])
            else:
                domains.setdefault(name, {**row, "name": name, "active": True})
        return cls(domains=[domains[name] for name in sorted(domains)], skipped=skipped,
                   addresses=parse_addresses(addresses), zone=origin, ttl=ttl, zone_file=zone_file,
                   serial=int(moment), generated_at=utc_text(datetime.fromtimestamp(moment, timezone.utc)))

    def header(self, comment: str, *extra: str) -> str:
        lines = [f"generated by seized at {self.generated_at}",
                 f"{len(self.domains)} domains, serial {self.serial}, "
                 f"addresses {' '.join(map(str, self.addresses))}",
                 *extra]
        if self.skipped:
            lines.append(f"left out, not DNS names: {' '.join(self.skipped)}")
        return "".join(f"{comment} {line}\n" if line else f"{comment}\n" for line in lines)


def rpz(lists: ResolverList) -> str:
    zone = lists.zone
    head = lists.header(";", "", f"Response Policy Zone {zone}: every name under a seized domain answers with the addresses.",
                        "BIND 9: in options { response-policy { zone \"" + zone + "\"; }; };",
                        f"       and zone \"{zone}\" {{ type primary; file \"/etc/bind/db.{zone}\"; allow-query {{ none; }}; }};",
                        "Knot Resolver, PowerDNS Recursor (rpzFile) and Unbound (an rpz: clause) load the same file.")
    lines = [head, f"$ORIGIN {zone}.\n", f"$TTL {lists.ttl}\n",
             f"@ IN SOA localhost. hostmaster.localhost. {lists.serial} 3600 600 604800 {lists.ttl}\n",
             "@ IN NS localhost.\n"]
    for domain in lists.domains:
        if len(f"*.{domain['name']}.{zone}") > 253:  # under the origin, past DNS's limit: BIND refuses the zone
            lines.append(f"; left out, too long under {zone}: {domain['name']}\n")
            continue
        for owner in (domain["name"], "*." + domain["name"]):
            lines.extend(f"{owner} IN {record_type(a)} {a}\n" for a in lists.addresses)
    return "".join(lines)


def bind_zone(lists: ResolverList) -> str:
    """The one zone file every seized domain's zone in `bind` is served from: names relative to the
    zone, so it fits them all."""
    lines = [lists.header(";", "", f"The zone file every zone of `seized domains export --format bind` reads "
                                   f"({lists.zone_file}).",
                          "Relative names: the same file answers for each seized domain and all its subdomains."),
             f"$TTL {lists.ttl}\n",
             f"@ IN SOA localhost. hostmaster.localhost. {lists.serial} 3600 600 604800 {lists.ttl}\n",
             "@ IN NS localhost.\n"]
    for owner in ("@", "*"):
        lines.extend(f"{owner} IN {record_type(a)} {a}\n" for a in lists.addresses)
    return "".join(lines)


def bind(lists: ResolverList) -> str:
    head = lists.header("//", "", "BIND 9 without RPZ: include this file in named.conf (outside any view, or inside",
                        "each view) and install the zone file from `seized domains export --format bind-zone` at",
                        f"{lists.zone_file}. Each seized domain becomes a zone of its own, answered from that file.",
                        "An RPZ (--format rpz) does the same without a zone per domain.")
    return head + "".join(f'zone "{d["name"]}" {{ type primary; file "{lists.zone_file}"; }};\n' for d in lists.domains)


def unbound(lists: ResolverList) -> str:
    head = lists.header("#", "", "Unbound: include: this file in unbound.conf; each seized domain is a redirect zone,",
                        "so it and every name under it answer with these addresses.")
    lines = [head, "server:\n"]
    for domain in lists.domains:
        name = domain["name"]
        lines.append(f'    local-zone: "{name}." redirect\n')
        lines.extend(f'    local-data: "{name}. {lists.ttl} IN {record_type(a)} {a}"\n' for a in lists.addresses)
    return "".join(lines)


def dnsmasq(lists: ResolverList) -> str:
    head = lists.header("#", "", "dnsmasq: conf-file=this file (or drop it into /etc/dnsmasq.d/); a domain matches",
                        "itself and every name under it, and is never forwarded.")
    return head + "".join(f"address=/{d['name']}/{a}\n" for d in lists.domains for a in lists.addresses)


def hosts(lists: ResolverList) -> str:
    head = lists.header("#", "", "hosts file: it has no wildcards, so only each domain and its www. name are covered;",
                        "use a resolver format (rpz, unbound, dnsmasq, bind) to cover every subdomain.")
    names = {}
    for domain in lists.domains:
        for name in (domain["name"], "www." + domain["name"]):
            if len(name) <= 253:
                names.setdefault(name, None)
    return head + "".join(f"{a} {name}\n" for name in names for a in lists.addresses)


def csv(lists: ResolverList) -> str:
    writer = CsvWriter()
    rows = [("domain", "addresses", *NOTICE_COLUMNS)]
    rows += [(d["name"], " ".join(map(str, lists.addresses)),
              *("true" if c == "active" else d.get(c) for c in NOTICE_COLUMNS)) for d in lists.domains]
    return writer.lines(rows)


@dataclass(frozen=True)
class Format:
    render: object
    media_type: str
    filename: str  # what the API offers to save it as


FORMATS: dict[str, Format] = {
    "rpz": Format(rpz, "text/plain; charset=utf-8", "seized.rpz"),
    "bind": Format(bind, "text/plain; charset=utf-8", "named.conf.seized"),
    "bind-zone": Format(bind_zone, "text/plain; charset=utf-8", "db.seized-redirect"),
    "unbound": Format(unbound, "text/plain; charset=utf-8", "seized-unbound.conf"),
    "dnsmasq": Format(dnsmasq, "text/plain; charset=utf-8", "seized-dnsmasq.conf"),
    "hosts": Format(hosts, "text/plain; charset=utf-8", "seized.hosts"),
    "csv": Format(csv, "text/csv; charset=utf-8", "seized-domains.csv"),
}


def render(fmt: str, lists: ResolverList) -> str:
    return FORMATS[fmt].render(lists)
