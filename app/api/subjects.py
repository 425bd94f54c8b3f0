"""Investigators: imported subscriber records of a seized panel, and the hits matched to them."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from ..subjects import account_report, normalise_account, subjects_report
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


@router.get("", response_model=list[Subject])
async def list_subjects(request: Request, store: StoreDep, case: Annotated[str | None, Query(description="case reference")] = None) -> list[Subject]:
    """Imported records with their hit counts and first/last seen."""
    rows = await store.subjects(case)
    request.state.audit_rows = len(rows)
    return [Subject(**{**row, "attributes": json.loads(row["attributes"])}) for row in rows]


@router.get("/report", response_model=CaseReport, responses={422: problem("missing case")})
async def case_report(request: Request, store: StoreDep, case: Annotated[str, Query(description="case reference")]) -> CaseReport:
    """Every imported account of the case with its hits, (IP, port, time) tuples, ISPs, first and
    last seen, and the accounts in hits that match no imported record."""
    report = await subjects_report(store, case)
    request.state.audit_rows = sum(s["hits"] for s in report["subjects"]) + sum(u["hits"] for u in report["unmatched_accounts"])
    return CaseReport(**report)


@router.get("/{account}/hits", response_model=AccountHits, responses={404: problem("no imported record for this account")})
async def subject_hits(request: Request, store: StoreDep, account: str,
                       limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many tuples")] = 10_000) -> AccountHits:
    account = normalise_account(account)
    records = [{"case_ref": r["case_ref"], "attributes": json.loads(r["attributes"])}
               for r in await store.subjects() if r["account"] == account]
    if not records:
        raise HTTPException(404, f"no imported record for account {account!r}")
    report = await account_report(store, account, limit)
    request.state.audit_rows = report["hits"]
    return AccountHits(**report, records=records)
