"""Administrators: the seized domains and their notice settings. The public listener follows
changes within a second (it polls the domain list), no restart needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, field_validator

from ..config import canonical_domain, no_control_characters, normalise_domain
from .auth import BAD_BODY, ERRORS, problem, require
from .deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["domains"], responses=ERRORS, dependencies=[Depends(require("admin"))])
Status = Annotated[int, Field(ge=200, le=599)]


class DomainSettings(BaseModel):
    """Notice settings; a field left null falls back to the config file's [notice] default."""

    agency: str | None = Field(None, max_length=500)
    case_ref: str | None = Field(None, max_length=200)
    legal_basis: str | None = Field(None, max_length=1000)
    language: str | None = Field(None, max_length=20)
    status: Status | None = None
    blocked_by: str | None = Field(None, max_length=2000)
    active: bool = True
    notes: str = Field("", max_length=10_000)

    @field_validator("agency", "case_ref", "legal_basis", "language", "blocked_by", "notes")
    @classmethod
    def _no_controls(cls, text: str | None) -> str | None:
        """NUL and other control characters: 422 here, on every store (PostgreSQL's text cannot hold NUL)."""
        return None if text is None else no_control_characters(text)


class DomainIn(DomainSettings):
    name: str = Field(min_length=1, max_length=253)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return normalise_domain(name)


class DomainPatch(DomainSettings):
    """Only the fields sent change."""

    active: bool | None = None
    notes: str | None = Field(None, max_length=10_000)


class DomainOut(DomainSettings):
    name: str
    created_at: str
    updated_at: str


def domain_out(row: dict) -> DomainOut:
    return DomainOut(**{**row, "active": bool(row["active"])})


@router.get("/domains", response_model=list[DomainOut], operation_id="list_domains")
async def list_domains(request: Request, store: StoreDep) -> list[DomainOut]:
    rows = await store.list_domains()
    request.state.audit_rows = len(rows)
    return [domain_out(row) for row in rows]


@router.post("/domains", response_model=DomainOut, status_code=201, operation_id="create_domain",
             responses={400: BAD_BODY, 409: problem("the domain exists"), 422: problem("invalid domain")})
async def add_domain(store: StoreDep, domain: DomainIn) -> DomainOut:
    fields = domain.model_dump(exclude={"name", "active"})
    if not await store.add_domain(domain.name, **fields):
        raise HTTPException(409, f"{domain.name} exists; PATCH it instead")
    if not domain.active:
        await store.update_domain(domain.name, active=0)
    return domain_out(await store.get_domain(domain.name))


@router.get("/domains/{name}", response_model=DomainOut, operation_id="get_domain", responses={404: problem("no such domain")})
async def get_domain(store: StoreDep, name: str) -> DomainOut:
    row = await store.get_domain(canonical_domain(name))
    if row is None:
        raise HTTPException(404, f"no domain {name}")
    return domain_out(row)


@router.patch("/domains/{name}", response_model=DomainOut, operation_id="update_domain",
              responses={400: BAD_BODY, 404: problem("no such domain"), 422: problem("invalid settings")})
async def update_domain(store: StoreDep, name: str, patch: DomainPatch) -> DomainOut:
    """Changes only the fields sent; sending null clears a notice field back to the default."""
    name = canonical_domain(name)
    fields = patch.model_dump(include=patch.model_fields_set)
    if fields.get("active") is None:
        fields.pop("active", None)
    if fields.get("notes", "") is None:
        fields["notes"] = ""
    if not await store.update_domain(name, **fields):
        raise HTTPException(404, f"no domain {name}")
    return domain_out(await store.get_domain(name))


@router.delete("/domains/{name}", status_code=204, operation_id="delete_domain", responses={404: problem("no such domain")})
async def remove_domain(store: StoreDep, name: str) -> Response:
    """Removes the domain; its hits stay in the log."""
    if not await store.remove_domain(canonical_domain(name)):
        raise HTTPException(404, f"no domain {name}")
    return Response(status_code=204)
