"""Investigators: imported subscriber records of a seized panel, and the hits matched to them."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from ..subjects import SubjectsFileError, account_report, case_domains, parse_subjects, subjects_list, subjects_report
from .auth import ERRORS, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"], responses=ERRORS,
                   dependencies=[Depends(require("investigator"))])


class Subject(BaseModel):
    case_ref: str
    account: str
    attributes: dict[str, str | None]
    imported_at: str
    hits: int
    first_seen: str | None
    last_seen: str | None


class Tuple(BaseModel):
    client_ip: str | None
    client_port: int | None
    timestamp_utc: str


class Isp(BaseModel):
    asn: int | None
    as_org: str | None
    hits: int


class AccountHits(BaseModel):
    account: str
    hits: int
    distinct_ips: int
    first_seen: str | None
    last_seen: str | None
    tuples: list[Tuple]
    isps: list[Isp]
    domains: list[str]  # the domains of the records' cases: only their hits are matched
    outside_chain: int  # rows of those domains with an id below 1 (outside the hash chain): not counted
    records: list[dict]


class Unmatched(BaseModel):
    account: str
    hits: int
    distinct_ips: int
    first_seen: str | None
    last_seen: str | None


class CaseReport(BaseModel):
    case: str
    domains: list[str]  # the case's domains: only their hits are matched
    note: str | None  # why nothing can match (a case without domains), else null
    subjects: list[dict]
    unmatched_accounts: list[Unmatched]
    outside_chain: int  # rows of the case's domains with an id below 1 (outside the hash chain): not counted


class Repeated(BaseModel):
    line: int
    same_as_line: int


class Imported(BaseModel):
    case: str
    format: str  # "csv" or "json"
    records: int
    added: int
    changed: int
    unchanged: int
    repeated_rows: list[Repeated]  # rows identical to an earlier one, imported once


MAX_IMPORT = 64 * 1024 * 1024  # bytes in one import body
IMPORT_TYPES = {"text/csv": "csv", "application/json": "json"}
CSV_EXAMPLE = "account,email,payment_ref\nalice,alice@example.org,PAY-1\n00-1A-79-01-C3-0F,box@example.org,PAY-2\n"
IMPORT_BODY = {"requestBody": {"required": True, "description": "the panel's records, as `seized subjects import` reads a file", "content": {
    "text/csv": {"schema": {"type": "string", "description": "UTF-8 CSV with an 'account' column; the other columns are kept"},
                 "example": CSV_EXAMPLE},
    "application/json": {"schema": {"type": "array", "items": {"type": "object", "required": ["account"], "properties": {
        "account": {"type": ["string", "integer"]}}, "additionalProperties": True}},
        "example": [{"account": "alice", "email": "alice@example.org"}, {"account": "00:1a:79:01:c3:0f", "plan": None}]},
}}}


@router.get("", response_model=list[Subject], operation_id="list_subjects")
async def list_subjects(request: Request, store: StoreDep, case: Annotated[str | None, Query(description="case reference")] = None) -> list[Subject]:
    """Imported records with their hit counts and first/last seen, matched as the case report
    matches them: only the hits of the record's own case's domains, MACs in any notation."""
    rows = await subjects_list(store, case)
    request.state.audit_rows = len(rows)
    return [Subject(**{**row, "attributes": json.loads(row["attributes"])}) for row in rows]


@router.get("/report", response_model=CaseReport, operation_id="get_case_report", responses={422: problem("missing case")})
async def case_report(request: Request, store: StoreDep, case: Annotated[str, Query(description="case reference")]) -> CaseReport:
    """Every imported account of the case with its hits, (IP, port, time) tuples, ISPs, first and
    last seen, and the accounts in hits that match no imported record."""
    report = await subjects_report(store, case)
    request.state.audit_rows = sum(s["hits"] for s in report["subjects"]) + sum(u["hits"] for u in report["unmatched_accounts"])
    return CaseReport(**report)


@router.get("/{account}/hits", response_model=AccountHits, operation_id="get_subject_hits", responses={404: problem("no imported record for this account")})
async def subject_hits(request: Request, store: StoreDep, account: str,
                       case: Annotated[str | None, Query(description="only this case's record and domains")] = None,
                       limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many tuples")] = 10_000) -> AccountHits:
    """The account's hits on the domains of the cases whose records name it (MACs in any notation),
    as the case report matches them."""
    report = await account_report(store, account, case, limit)
    if report is None:
        raise HTTPException(404, f"no imported record for account {account!r}" + (f" in case {case!r}" if case else ""))
    request.state.audit_rows = report["hits"]
    return AccountHits(**report)


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 past MAX_IMPORT bytes (before reading them all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT:
        raise HTTPException(413, f"the body is {int(declared):,} bytes; an import takes at most {MAX_IMPORT:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT:
            raise HTTPException(413, f"the body is over {MAX_IMPORT:,} bytes; an import takes at most {MAX_IMPORT:,}")
    return bytes(body)


@router.post("/import", response_model=Imported, operation_id="import_subjects", openapi_extra=IMPORT_BODY, responses={
    413: problem(f"the body is over {MAX_IMPORT:,} bytes"), 415: problem("the body is neither text/csv nor application/json"),
    422: problem("a file that cannot be imported as it is (short or long rows, an account twice with other values, "
                 "a value over 64 KiB, not UTF-8...), or a case that no domain carries; nothing imported")})
async def import_subjects(request: Request, store: StoreDep,
                          case: Annotated[str, Query(min_length=1, max_length=200, description="case reference the records belong to")]) -> Imported:
    """A seized panel's subscriber records, as `seized subjects import FILE --case C` loads them:
    the same parser and rules (the file is imported whole or refused whole, saying why), CSV or JSON
    by the Content-Type. Idempotent: says how many records it added, changed and left unchanged.
    The case must be carried by at least one domain (its `case_ref`), else nothing could match."""
    media, _, parameters = request.headers.get("content-type", "").partition(";")
    kind = IMPORT_TYPES.get(media.strip().lower())
    if kind is None:
        raise HTTPException(415, f"the body must be text/csv or application/json, not {media.strip() or 'without a Content-Type'}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8", "us-ascii"):
            raise HTTPException(415, f"the body must be UTF-8, not {value.strip()}")
    case = case.strip()
    if not case:
        raise HTTPException(422, "the case reference is empty")
    if not await case_domains(store, case):
        raise HTTPException(422, f"case {case!r} has no domains (no domain's case_ref is {case!r}): its records could match "
                                 "no hit; set the case_ref of its domains first (PATCH /api/v1/domains/NAME)")
    data = await read_body(request)
    try:
        parsed = await asyncio.to_thread(parse_subjects, data, f"body.{kind}")  # parsing off the event loop the listeners share
    except SubjectsFileError as error:
        raise HTTPException(422, str(error)) from None
    added, changed = await store.import_subjects(case, parsed.records)
    request.state.audit_rows = len(parsed.records)
    return Imported(case=case, format=parsed.format, records=len(parsed.records), added=added, changed=changed,
                    unchanged=len(parsed.records) - added - changed,
                    repeated_rows=[Repeated(line=line, same_as_line=first) for line, first in parsed.identical_duplicates])
