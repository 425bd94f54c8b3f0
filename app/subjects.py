"""Seized subscriber records (the panel's own accounts: e-mail, payment reference, MAC...),
imported per case and matched to hits by account, for the report investigators take to ISPs
and prosecutors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import csv
import io
import json

from .clients import MAC

if TYPE_CHECKING:
    from .store import Store


def normalise_account(account: str) -> str:
    """As hits store it: MAC addresses upper-case, usernames as they are."""
    account = account.strip()
    return account.upper() if MAC.match(account) else account


def parse_subjects_csv(text: str) -> list[tuple[str, str]]:
    """CSV with an `account` column (any case) -> (account, attributes JSON) per row, sorted by
    account; the other columns are kept as attributes. A leading UTF-8 byte-order mark is ignored.
    Raises ValueError, naming the line, on a file without that column, a row with an empty account
    and two rows for the same account (after normalise_account): which of them holds the true
    record is for the investigator to say, not for the import to guess."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, [])
    fields = {name.strip().lower(): name for name in header}
    if "account" not in fields:
        raise ValueError("the CSV needs an 'account' column")
    records: dict[str, str] = {}
    first_line: dict[str, int] = {}
    line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
    for values in reader:
        start, line = line, reader.line_num + 1
        if not values:
            continue  # a blank line, as csv.DictReader skips it
        # As csv.DictReader: missing trailing values are None, surplus ones are dropped.
        row = dict(zip(header, values + [None] * (len(header) - len(values))))
        account = (row.get(fields["account"]) or "").strip()
        if not account:
            raise ValueError(f"line {start}: empty account")
        account = normalise_account(account)
        if account in records:
            raise ValueError(f"line {start}: account {account!r} is also on line {first_line[account]}")
        attributes = {name.strip(): value for name, value in row.items() if name and name != fields["account"]}
        records[account] = json.dumps(attributes, ensure_ascii=False, sort_keys=True)
        first_line[account] = start
    return sorted(records.items())


def millis(stamp: str | None) -> str | None:
    return None if stamp is None else stamp[:23] + "Z"


async def account_report(store: Store, account: str, tuple_limit: int = 10_000) -> dict:
    summary = await store.account_summary(account, tuple_limit)
    return {
        "account": account, "hits": summary["hits"], "distinct_ips": summary["distinct_ips"],
        "first_seen": millis(summary["first_seen"]), "last_seen": millis(summary["last_seen"]),
        "tuples": [{"client_ip": t["client_ip"], "client_port": t["client_port"], "timestamp_utc": millis(t["received_at"])}
                   for t in summary["tuples"]],
        "isps": summary["isps"],
    }


async def subjects_report(store: Store, case_ref: str) -> dict:
    """For each imported account of the case: its hits, (IP, port, UTC time) tuples, ISPs, first and
    last seen; and the accounts seen in hits that match no imported record."""
    subjects = []
    for subject in await store.subjects(case_ref):
        report = await account_report(store, subject["account"])
        subjects.append({**report, "attributes": json.loads(subject["attributes"])})
    unmatched = [{**row, "first_seen": millis(row["first_seen"]), "last_seen": millis(row["last_seen"])}
                 for row in await store.unmatched_accounts(case_ref)]
    return {"case": case_ref, "subjects": subjects, "unmatched_accounts": unmatched}
