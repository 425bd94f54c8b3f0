"""Seized subscriber records (the panel's own accounts: e-mail, payment reference, MAC...),
imported per case and matched to hits by account, for the report investigators take to ISPs
and prosecutors.

The import (`parse_subjects`) takes CSV or JSON and refuses, whole, any file it cannot read
without guessing: nothing in a seized record is dropped, merged or shifted silently. The report
(`subjects_report`) counts only the hits of the case's own domains, and matches MAC addresses
whatever their notation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import csv
import io
import json
import re

from .query import HitFilter

if TYPE_CHECKING:
    from .store import Store

MAX_FIELD = 64 * 1024  # characters in one value: a subscriber record's field is never this long
LISTED = 20  # line numbers listed per kind of problem in one message (then "and N more")

# A MAC address in the usual notations: six pairs separated by ':' or '-' (one separator throughout),
# three groups of four separated by '.' (Cisco), or twelve hex digits together.
MAC_NOTATIONS = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{12}",
                           re.IGNORECASE)


def normalise_mac(value: str) -> str | None:
    """'00-1a-79-01-c3-0f', '001A7901C30F', '001a.7901.c30f' -> '00:1A:79:01:C3:0F'; None if no MAC."""
    value = value.strip()
    if not MAC_NOTATIONS.fullmatch(value):
        return None
    digits = re.sub(r"[^0-9A-Fa-f]", "", value).upper()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def normalise_account(account: str) -> str:
    """An account as records and hits are matched on: a MAC address in any notation as
    '00:1A:79:01:C3:0F', anything else (a username) as it is, without surrounding space."""
    account = account.strip()
    return normalise_mac(account) or account


class SubjectsFileError(ValueError):
    """A file of subscriber records that cannot be imported as it is; the message says why, on one line."""


@dataclass
class Parsed:
    """What an import file holds: (account, attributes JSON) sorted by account, the format read, and
    the rows that repeat an earlier row exactly (same account, same attributes): imported once,
    reported as (line, line of the first)."""
    records: list[tuple[str, str]]
    format: str
    identical_duplicates: list[tuple[int, int]] = field(default_factory=list)


def listing(lines: list, what=str) -> str:
    shown = ", ".join(what(line) for line in lines[:LISTED])
    return shown + (f" and {len(lines) - LISTED} more" if len(lines) > LISTED else "")


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def with_values(row: tuple[int, int]) -> str:
    return f"{row[0]} ({plural(row[1], 'value', 'values')})"


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (a leading byte-order mark dropped); anything else is refused, not guessed."""
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise SubjectsFileError("the file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SubjectsFileError("the file is UTF-16 text; save it as UTF-8 (CSV UTF-8 or JSON)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SubjectsFileError(f"the file is binary (a NUL byte at offset {nul}), not CSV or JSON text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SubjectsFileError(f"line {line}: not UTF-8 (byte 0x{data[error.start]:02x}); save the file as UTF-8") from None


def file_format(name: str, text: str) -> str:
    """'json' for a .json file, 'csv' for a .csv file; otherwise JSON if the text starts with '['."""
    suffix = Path(name).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix[1:]
    return "json" if text.lstrip().startswith("[") else "csv"


def parse_subjects(data: bytes, name: str = "") -> Parsed:
    """A file of subscriber records (its bytes and its name, for the format) -> Parsed, or
    SubjectsFileError naming what is wrong and where."""
    text = decode(data)
    kind = file_format(name, text)
    records, identical = collect(json_rows(text) if kind == "json" else csv_rows(text), kind.upper())
    return Parsed(records, kind, identical)


def too_long(line: int, name: str, value: str) -> SubjectsFileError:
    return SubjectsFileError(f"line {line}: the value of {name!r} is {len(value):,} characters long "
                             f"(at most {MAX_FIELD:,}); is this the right file?")


def csv_rows(text: str) -> Iterator[tuple[int, str, dict[str, str | None]]]:
    """(line where the record starts, account, attributes) per CSV record. Short rows (fewer values
    than the header has columns) and long rows (more) are collected and refused together, with
    their lines: in an export, they mean a value moved to another column or a record cut in two."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as error:
        raise SubjectsFileError(f"line {reader.line_num}: not readable as CSV ({error})") from None
    names = [name.strip() for name in header]
    accounts = [i for i, name in enumerate(names) if name.lower() == "account"]
    if not accounts:
        raise SubjectsFileError("the CSV needs an 'account' column")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if len(name) > MAX_FIELD:
            raise too_long(1, f"column {i + 1}", name)
        if name.lower() in seen:
            raise SubjectsFileError(f"line 1: column {i + 1} ({header[i].strip()!r}) has the same name as column "
                                    f"{seen[name.lower()] + 1}; which one is meant cannot be told")
        if name:
            seen[name.lower()] = i
    account_at = accounts[0]
    short, long = [], []
    line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
    while True:
        try:
            values = next(reader, None)
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise SubjectsFileError(f"line {line}: a value over {csv.field_size_limit():,} characters long "
                                        f"(at most {MAX_FIELD:,}); is this the right file?") from None
            raise SubjectsFileError(f"line {line}: not readable as CSV ({error})") from None
        if values is None:
            break
        start, line = line, reader.line_num + 1
        if not values:
            continue  # a blank line
        if len(values) < len(header):
            short.append((start, len(values)))
            continue
        if len(values) > len(header):
            long.append((start, len(values)))
            continue
        for name, value in zip(names, values):
            if len(value) > MAX_FIELD:
                raise too_long(start, name, value)
        attributes: dict[str, str | None] = {}
        for i, (name, value) in enumerate(zip(names, values)):
            if i != account_at:
                attributes[name or f"column {i + 1}"] = value
        yield start, values[account_at], attributes
    problems = []
    if short:
        problems.append(f"{plural(len(short), 'short row', 'short rows')} (fewer values than the header's {len(header)}) "
                        f"on line {listing(short, with_values)}")
    if long:
        problems.append(f"{plural(len(long), 'row', 'rows')} with more values than the header's {len(header)} "
                        f"on line {listing(long, with_values)}")
    if problems:
        raise SubjectsFileError("; ".join(problems) + "; nothing imported")


def json_rows(text: str) -> Iterator[tuple[int, str, dict[str, str | None]]]:
    """(line where the object starts, account, attributes) per object of a JSON array. Values
    other than strings and null are kept as their JSON text (12 -> "12", [1, 2] -> "[1, 2]")."""
    def pairs(items):
        keys = set()
        for key, _ in items:
            if key in keys:
                raise SubjectsFileError(f"the key {key!r} appears twice in one object; which value is meant cannot be told")
            keys.add(key)
        return dict(items)

    def constant(name):
        raise SubjectsFileError(f"{name} is not a JSON value")

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=constant)
    surrogate = re.compile(r"[\ud800-\udfff]")

    def unstorable(value: str) -> str | None:
        """Why a JSON string cannot be stored as text (a NUL or a lone UTF-16 surrogate), or None."""
        if "\x00" in value:
            return "a NUL character (\\u0000)"
        found = surrogate.search(value)
        return f"a lone UTF-16 surrogate (\\u{ord(found.group()):04x})" if found else None
    space = re.compile(r"\s*")
    position = space.match(text).end()

    def line_at(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    def fail(offset: int, what: str):
        raise SubjectsFileError(f"line {line_at(offset)}: {what}")

    if text[position:position + 1] != "[":
        fail(position, "a JSON import is an array of objects ([{\"account\": ...}, ...])")
    position = space.match(text, position + 1).end()
    if text[position:position + 1] == "]":
        position += 1
    else:
        while True:
            start = position
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                fail(error.pos, f"not valid JSON ({error.msg})")
            except SubjectsFileError as error:  # a key twice in one object
                fail(start, str(error))
            except RecursionError:
                fail(start, "not valid JSON (nested too deep)")
            except ValueError as error:  # an integer of thousands of digits
                fail(start, f"not valid JSON ({str(error).partition(':')[0]})")
            if not isinstance(item, dict):
                fail(start, f"each element must be an object with an 'account', not {json.dumps(item)[:40]}")
            accounts = [key for key in item if key.strip().lower() == "account"]
            if not accounts:
                fail(start, "an object without an 'account'")
            if len(accounts) > 1:
                fail(start, f"an object with {len(accounts)} account keys ({', '.join(map(repr, accounts))})")
            account = item[accounts[0]]
            if isinstance(account, bool) or not isinstance(account, (str, int)):
                fail(start, f"the account must be text, not {json.dumps(account)[:40]}")
            attributes: dict[str, str | None] = {}
            for key, value in item.items():
                if key == accounts[0]:
                    continue
                text_value = value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                if text_value is not None and len(text_value) > MAX_FIELD:
                    raise too_long(line_at(start), key, text_value)
                name = key.strip()
                for what, string in (("key", key), (f"value of {name!r}", text_value or "")):
                    if why := unstorable(string):
                        fail(start, f"{why} in the {what}, which is not text")
                if name in attributes:
                    fail(start, f"the key {name!r} appears twice in one object (with different spacing)")
                attributes[name] = text_value
            account = str(account)
            if len(account) > MAX_FIELD:
                raise too_long(line_at(start), accounts[0], account)
            if why := unstorable(account):
                fail(start, f"{why} in the account, which is not text")
            yield line_at(start), account, attributes
            position = space.match(text, position).end()
            if text[position:position + 1] == ",":
                position = space.match(text, position + 1).end()
                continue
            if text[position:position + 1] == "]":
                position += 1
                break
            fail(position, "expected ',' or ']' after an object")
    position = space.match(text, position).end()
    if position < len(text):
        fail(position, "text after the end of the JSON array")


def collect(rows: Iterator[tuple[int, str, dict[str, Any]]], kind: str) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """Records by normalised account. An empty account is an error naming its line; the same account
    on two rows with different attributes is refused (which holds the true record is for the
    investigator to say, not for the import to guess), every such pair listed; a row identical to an
    earlier one is imported once and reported."""
    records: dict[str, str] = {}
    first_line: dict[str, int] = {}
    identical: list[tuple[int, int]] = []
    conflicting: list[tuple[int, int, str]] = []
    for line, account, attributes in rows:
        account = account.strip()
        if not account:
            raise SubjectsFileError(f"line {line}: empty account")
        account = normalise_account(account)
        encoded = json.dumps(attributes, ensure_ascii=False, sort_keys=True)
        if account in records:
            if records[account] == encoded:
                identical.append((line, first_line[account]))
            else:
                conflicting.append((line, first_line[account], account))
            continue
        records[account] = encoded
        first_line[account] = line
    if conflicting:
        if len(conflicting) == 1:
            line, first, account = conflicting[0]
            raise SubjectsFileError(f"line {line}: account {account!r} is also on line {first}, with other values; nothing imported")
        raise SubjectsFileError(f"{len(conflicting)} accounts repeated with other values: "
                                + listing(conflicting, lambda c: f"line {c[0]} ({c[2]!r}, also on line {c[1]})")
                                + "; nothing imported")
    if not records:
        raise SubjectsFileError(f"no records in the {kind} file")
    return sorted(records.items()), identical


def parse_subjects_csv(text: str) -> list[tuple[str, str]]:
    """CSV text -> (account, attributes JSON) per record, sorted by account (see parse_subjects)."""
    return parse_subjects(text.encode("utf-8"), "records.csv").records


def hit_accounts(hit: dict) -> tuple[str | None, str | None]:
    """(the hit's account, the MAC address in its device fields), normalised."""
    account = normalise_account(hit["account"]) if hit.get("account") else None
    device = hit.get("device")
    if isinstance(device, str):
        try:
            device = json.loads(device)
        except ValueError:
            device = None
    mac = device.get("mac") if isinstance(device, dict) else None
    return account, normalise_account(mac) if isinstance(mac, str) and mac.strip() else None


class Tally:
    """One account's hits, as the report shows them."""

    def __init__(self, tuple_limit: int = 10_000):
        self.tuple_limit = tuple_limit
        self.hits = 0
        self.ips: set[str | None] = set()
        self.first: str | None = None
        self.last: str | None = None
        self.tuples: set[tuple] = set()
        self.isps: dict[int | None, list] = {}

    def add(self, hit: dict) -> None:
        self.hits += 1
        self.ips.add(hit["client_ip"])
        stamp = hit["received_at"]
        self.first = stamp if self.first is None or stamp < self.first else self.first
        self.last = stamp if self.last is None or stamp > self.last else self.last
        if self.tuple_limit:
            self.tuples.add((stamp, hit["client_ip"], hit["client_port"]))
            if len(self.tuples) > 2 * self.tuple_limit:  # keep the earliest: hits come in time order per domain
                self.tuples = set(self.earliest())
        isp = self.isps.setdefault(hit.get("asn"), [None, 0])
        isp[0] = max(filter(None, (isp[0], hit.get("as_org"))), default=None)
        isp[1] += 1

    def earliest(self) -> list[tuple]:
        return sorted(self.tuples, key=lambda t: (t[0], t[1] or "", t[2] or 0))[:self.tuple_limit]

    def summary(self) -> dict:
        tuples = self.earliest()
        return {
            "hits": self.hits, "distinct_ips": len(self.ips - {None}),
            "first_seen": self.first, "last_seen": self.last,
            "tuples": [{"client_ip": ip, "client_port": port, "timestamp_utc": stamp} for stamp, ip, port in tuples],
            "isps": [{"asn": asn, "as_org": org, "hits": hits}
                     for asn, (org, hits) in sorted(self.isps.items(), key=lambda item: (-item[1][1], item[0] is None, item[0] or 0))],
        }


def case_domains_of(domains: list[dict], case_ref: str) -> list[str]:
    """The domains (active or not) among `domains` (list_domains rows) whose case reference is `case_ref`."""
    return sorted(row["name"] for row in domains if (row.get("case_ref") or "").strip() == case_ref.strip())


async def case_domains(store: Store, case_ref: str) -> list[str]:
    """The domains (active or not) whose case reference is `case_ref`."""
    return case_domains_of(await store.list_domains(), case_ref)


@dataclass
class Matched:
    """What `match` found: a Tally per record's account (as stored), one per account seen in hits
    that matched no record (when asked for), and how many rows outside the chain were left out."""
    subjects: dict[str, Tally]
    unmatched: dict[str, Tally]
    outside_chain: int


async def match(store: Store, domains: list[str], accounts: list[str], tuple_limit: int = 10_000,
                unmatched: bool = True) -> Matched:
    """The one matching of hits to records, for the report, the record list and an account's hits:
    only the hits of `domains` (a case's own); a hit matches a record by its account or by the MAC
    address in its device fields, MAC addresses compared whatever their notation. Rows outside the
    chain (id below 1) are never counted, only their number kept."""
    tallies = {account: Tally(tuple_limit) for account in accounts}
    by_key: dict[str, list[str]] = {}
    for account in accounts:
        by_key.setdefault(normalise_account(account), []).append(account)
    others: dict[str, Tally] = {}
    for domain in domains:
        async for chunk in store.iter_hits_by_time(HitFilter(domain=domain)):  # rows outside the chain left out
            for hit in chunk:
                account, mac = hit_accounts(hit)
                matched = {subject for key in (account, mac) if key in by_key for subject in by_key[key]}
                for subject in matched:
                    tallies[subject].add(hit)
                if unmatched and not matched and account is not None:
                    others.setdefault(account, Tally(0)).add(hit)
    outside = 0  # and counted (ids below 1: an index range)
    for domain in domains:
        outside += await store.outside_chain(HitFilter(domain=domain))
    return Matched(tallies, others, outside)


async def subjects_report(store: Store, case_ref: str, tuple_limit: int = 10_000) -> dict:
    """For each imported account of the case: its hits, (IP, port, UTC time) tuples, ISPs, first and
    last seen; and the accounts seen in hits that match no imported record (see `match`). A case
    without domains matches nothing: every record then shows 0 hits, and `note` says why.
    `outside_chain`: the rows of the case's domains with an id below 1, left out."""
    domains = await case_domains(store, case_ref)
    records = await store.subjects(case_ref)
    found = await match(store, domains, [row["account"] for row in records], tuple_limit)
    subjects = [{"account": row["account"], **found.subjects[row["account"]].summary(),
                 "attributes": json.loads(row["attributes"])} for row in records]
    rows = []
    for account, tally in found.unmatched.items():
        summary = tally.summary()
        rows.append({"account": account, **{k: summary[k] for k in ("hits", "distinct_ips", "first_seen", "last_seen")}})
    rows.sort(key=lambda row: (-row["hits"], row["account"]))
    note = None if domains else (f"case {case_ref!r} has no domains (no domain's case_ref is {case_ref!r}): "
                                 "no hit can be matched, so every record shows 0 hits")
    return {"case": case_ref, "domains": domains, "note": note, "subjects": subjects, "unmatched_accounts": rows,
            "outside_chain": found.outside_chain}


async def subjects_list(store: Store, case_ref: str | None = None) -> list[dict]:
    """The imported records (of one case, or all), each with its hits, first and last seen, matched
    as the report matches them: only the hits of its own case's domains. `attributes` as stored (JSON text)."""
    records = await store.subjects(case_ref)
    all_domains = await store.list_domains()
    counted: dict[tuple[str, str], dict] = {}
    for case in sorted({row["case_ref"] for row in records}):
        accounts = [row["account"] for row in records if row["case_ref"] == case]
        found = await match(store, case_domains_of(all_domains, case), accounts, tuple_limit=0, unmatched=False)
        for account in accounts:
            counted[(case, account)] = found.subjects[account].summary()
    return [{**row, **{k: counted[(row["case_ref"], row["account"])][k] for k in ("hits", "first_seen", "last_seen")}}
            for row in records]


async def account_report(store: Store, account: str, case_ref: str | None = None, tuple_limit: int = 10_000) -> dict | None:
    """One account's hits, matched as the report matches them, over the domains of the cases whose
    records name it (or of `case_ref` only); None when no imported record names it."""
    key = normalise_account(account)
    records = [row for row in await store.subjects(case_ref) if normalise_account(row["account"]) == key]
    if not records:
        return None
    all_domains = await store.list_domains()
    domains = sorted({name for case in {row["case_ref"] for row in records} for name in case_domains_of(all_domains, case)})
    found = await match(store, domains, [key], tuple_limit, unmatched=False)
    return {"account": key, **found.subjects[key].summary(), "domains": domains, "outside_chain": found.outside_chain,
            "records": [{"case_ref": row["case_ref"], "attributes": json.loads(row["attributes"])} for row in records]}
