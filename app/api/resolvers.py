"""Administrators: the seized domains as the lists ISPs load into their resolvers
(app/resolver_lists.py), and a list of domains imported in one request (app/domain_import.py).
Registered before the domains router, so /domains/export and /domains/import are not taken for
domain names."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .. import domain_import, resolver_lists
from .auth import ERRORS, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1/domains", tags=["domains"], responses=ERRORS, dependencies=[Depends(require("admin"))])

ResolverFormat = Literal[tuple(resolver_lists.FORMATS)]  # type: ignore[valid-type]
MAX_IMPORT_BYTES = 16 * 1024 * 1024  # a list of a few hundred thousand domains


@router.get("/export", operation_id="export_resolver_list", response_class=Response, responses={
    200: {"description": "the list, in the resolver's own format",
          "content": {"text/plain": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}}},
    422: problem("invalid format, address, zone or ttl"),
})
async def export_resolver_list(
    request: Request,
    store: StoreDep,
    format: ResolverFormat,
    address: Annotated[list[str], Query(description="a node address (IPv4 or IPv6) the domains resolve to; repeatable")],
    zone: Annotated[str, Query(max_length=253, description="rpz: the policy zone's name")] = resolver_lists.DEFAULT_ZONE,
    ttl: Annotated[int, Query(ge=0, le=2**31 - 1, description="time to live of the answers, seconds")] = resolver_lists.DEFAULT_TTL,
    zone_file: Annotated[str, Query(max_length=1000, description="bind: where the bind-zone file is installed")] = resolver_lists.DEFAULT_ZONE_FILE,
) -> Response:
    """The active seized domains as `rpz` (a Response Policy Zone for BIND, Knot, PowerDNS, Unbound),
    `bind` (a named.conf fragment, a zone per domain) and `bind-zone` (the zone file it reads),
    `unbound`, `dnsmasq`, `hosts` or `csv`: every name under each domain answers with the addresses."""
    try:
        lists = resolver_lists.ResolverList.build(await store.list_domains(), address, zone=zone, ttl=ttl,
                                                  zone_file=zone_file)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    request.state.audit_rows = len(lists.domains)
    spec = resolver_lists.FORMATS[format]
    return Response(resolver_lists.render(format, lists), media_type=spec.media_type, headers={
        "Content-Disposition": f'attachment; filename="{spec.filename}"', "X-Seized-Serial": str(lists.serial)})


class InvalidLine(BaseModel):
    line: int
    text: str
    reason: str


class DuplicateLine(BaseModel):
    line: int
    name: str
    first_line: int


class ImportReport(BaseModel):
    dry_run: bool
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    invalid: list[InvalidLine]
    duplicates: list[DuplicateLine]


class ImportRefused(BaseModel):
    detail: str | list
    invalid: list[InvalidLine] = []


@router.post("/import", operation_id="import_domains", response_model=ImportReport, responses={
    413: problem("the body is larger than 16 MiB"),
    422: {"model": ImportRefused, "description": "invalid lines (nothing imported), or a file that is no list or CSV"},
}, openapi_extra={"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}, "example": "seized-iptv.example\n# a comment\nother.example\n"},
    "text/csv": {"schema": {"type": "string"}, "example": "domain,agency,case_ref\nseized-iptv.example,Police,CASE-1\n"},
    # The same text as a file, for clients that send only bytes (openapi-python-client): `format` says which.
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}})
async def import_domains(
    request: Request,
    store: StoreDep,
    format: Annotated[Literal["list", "csv"] | None, Query(description="default: csv for a text/csv body, else list")] = None,
    dry_run: Annotated[bool, Query(description="check and report; change nothing")] = False,
    skip_invalid: Annotated[bool, Query(description="import the valid lines even if some are invalid")] = False,
):
    """Seized domains from a plain list (one a line, `#` comments) or CSV (header row: `domain` and
    any of agency, case_ref, legal_basis, language, status, blocked_by, notes, active). With any
    invalid line nothing is imported (422, each line named) unless `skip_invalid`. Existing domains:
    a list leaves them as they are, a CSV row updates them."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise HTTPException(413, "the body is larger than 16 MiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise HTTPException(413, "the body is larger than 16 MiB")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, "the body is not UTF-8 text") from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = format or ("csv" if content_type == "text/csv" else "list")
    try:
        parsed = domain_import.parse(text, fmt)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    if parsed.invalid and not skip_invalid:
        request.state.audit_rows = 0
        refused = ImportRefused(detail=f"{len(parsed.invalid)} invalid line(s): nothing imported "
                                       "(skip_invalid=true imports the others)",
                                invalid=[InvalidLine(**bad) for bad in parsed.invalid])
        return JSONResponse(refused.model_dump(), status_code=422)
    report = await domain_import.apply(store, parsed, dry_run)
    request.state.audit_rows = 0 if dry_run else len(report["added"]) + len(report["updated"])
    return ImportReport(dry_run=dry_run, invalid=parsed.invalid, duplicates=parsed.duplicates, **report)
