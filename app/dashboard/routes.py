"""The dashboard's pages. Each reads and changes data through the API's own handlers (hits, exports,
ISP packages, domains, audit) or the store queries they use (stats), so the dashboard shows what the
API answers, and every request is audited by the API's middleware (audit.audited)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from ..api import audit as audit_api
from ..api import domains as domains_api
from ..api import evidence as evidence_api
from ..api import hits as hits_api
from ..api.auth import authenticate
from ..clients import CLIENT_KINDS
from ..domains import resolve_notice
from ..notice.html import HtmlNotice
from ..notice.texts import load_languages
from ..public import display_time
from ..query import EXPORT_FORMATS, MAX_ID, OUTSIDE_CHAIN_HEADER, HitFilter
from ..tokens import Principal, verify_token
from .session import COOKIE, LOGIN_COOKIE, Session, Sessions, cookie_options, same_secret

router = APIRouter(include_in_schema=False)

# The dashboard's own pages load nothing from anywhere else; the notice preview frames are ours too.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own forms
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
# The preview is the public notice as served (its own CSP), framed by the domain page only.
PREVIEW_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}
# Pages per role, as the API's roles allow: the navigation shows the signed-in role's own.
PAGES = (("overview", "/dashboard/", "investigator", "Overview"), ("hits", "/dashboard/hits", "investigator", "Hits"),
         ("domains", "/dashboard/domains", "admin", "Domains"), ("audit", "/dashboard/audit", "auditor", "Audit"))
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DISTINCT_IP_CAP = 100_000  # distinct client IPs counted on the overview; more shows as "100,000+"
TOP = 10
FORM_LIMIT = 64 * 1024  # bytes of a posted form
NOTICE_FIELDS = ("agency", "case_ref", "legal_basis", "language", "status", "blocked_by")


class SignInNeeded(Exception):
    """No session, or its token no longer works: to the sign-in page."""


@dataclass
class Visit:
    session: Session
    principal: Principal


class Dashboard:
    """What the dashboard keeps in the management process: sessions, templates, its static files."""

    def __init__(self, settings):
        self.settings = settings
        self.sessions = Sessions()
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(settings.templates_dir) / "dashboard"),
                                            autoescape=True)
        self.languages = load_languages()
        self.notice = HtmlNotice(Path(settings.templates_dir), self.languages)
        static = Path(settings.static_dir)
        # Read once: the dashboard's files under /dashboard/static/, the notice's own (top level) under
        # /_seized/ for the preview frames, as the public listener serves them.
        self.static = {p.relative_to(static / "dashboard").as_posix(): p.read_bytes()
                       for p in sorted((static / "dashboard").rglob("*")) if p.is_file()}
        self.notice_assets = {p.name: p.read_bytes() for p in sorted(static.glob("*")) if p.is_file()}


def dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


# -- sessions and roles ------------------------------------------------------------------------------

async def visit(request: Request) -> Visit:
    """The signed-in session, its token checked again as the API checks one (revoked, expired: out)."""
    sessions = dashboard(request).sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded()
    principal = await verify_token(request.app.state.store, session.token)
    if principal is None:
        sessions.close(session.id)
        raise SignInNeeded()
    request.state.principal = principal  # the audit row names the token, as for an API call
    return Visit(session, principal)


def role(name: str):
    """A dependency: signed in, with a token of this role; else the clear 403 page."""

    async def check(request: Request) -> Visit:
        seen = await visit(request)
        if seen.principal.role != name:
            raise HTTPException(403, f"This page is for the {name} role; you are signed in with "
                                     f"{seen.principal.role} token “{seen.principal.name}”.")
        return seen

    return Depends(check)


def landing(principal: Principal) -> str:
    return next(url for _, url, page_role, _ in PAGES if page_role == principal.role)


def after_sign_in(target: str | None, principal: Principal) -> str:
    """Back to the page asked for when it is one of this role's, else to the role's first page."""
    if target:
        owner = max((page for page in PAGES if target.partition("?")[0].startswith(page[1])), key=lambda page: len(page[1]),
                    default=None)
        if owner is not None and owner[2] == principal.role:
            return target
    return landing(principal)


def safe_next(target: str | None) -> str | None:
    """Only a path of ours to go back to after signing in (no other host, no scheme)."""
    if target and target.startswith("/dashboard") and "//" not in target and "\\" not in target:
        return target
    return None


async def sign_in_redirect(request: Request, _: SignInNeeded) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/dashboard/login?{urlencode({'next': target})}"
                                if request.method == "GET" else "/dashboard/login", status_code=303)
    forget(response, COOKIE, request)
    return response


def forget(response: Response, name: str, request: Request) -> None:
    """Clear one of our cookies (with the flags it was set with)."""
    response.set_cookie(name, "", **cookie_options(request.url.scheme == "https", max_age=0))


async def posted_form(request: Request, seen: Visit | None = None) -> dict[str, str]:
    """A URL-encoded form, its CSRF token checked against the session's (refused with 403 if wrong or
    missing), and refused if the browser says it came from another origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        raise HTTPException(403, "This form was sent from another site; refused.")
    if request.headers.get("content-type", "").partition(";")[0].strip() != "application/x-www-form-urlencoded":
        raise HTTPException(415, "Forms are sent URL-encoded.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise HTTPException(413, "The form is too large.")
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if seen is not None and not same_secret(fields.get("csrf"), seen.session.csrf):
        raise HTTPException(403, "The form did not carry this session's CSRF token (it is stale, or came from "
                                 "elsewhere); reload the page and try again.")
    return fields


# -- rendering ---------------------------------------------------------------------------------------

def render(request: Request, template: str, code: int = 200, headers: dict | None = None,
           seen: Visit | None = None, **context) -> HTMLResponse:
    principal = seen.principal if seen else None
    page = dashboard(request).templates.get_template(template).render(
        principal=principal, csrf=seen.session.csrf if seen else None, path=request.url.path,
        nav=[(key, url, label) for key, url, page_role, label in PAGES if principal and principal.role == page_role],
        **context)
    return HTMLResponse(page, status_code=code, headers={**PAGE_HEADERS, **(headers or {})})


def error_page(request: Request, status: int, detail: str, headers: dict | None = None) -> HTMLResponse:
    """Refusals and failures under /dashboard as a page (the navigation kept when signed in)."""
    seen = None
    principal = getattr(request.state, "principal", None)
    session = dashboard(request).sessions.get(request.cookies.get(COOKIE))
    if principal is not None and session is not None:
        seen = Visit(session, principal)
    return render(request, "error.html", status, headers, seen, status=status, detail=detail)


def data_island(value) -> str:
    """JSON for a <script type="application/json"> block: `<`, `>` and `&` escaped, so no text
    inside it can close the block."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def hit_filter(request: Request) -> HitFilter:
    """The API's filters from the query string; empty form fields are no filter. 422 when invalid."""
    given = {name: value.strip() for name in HitFilter.model_fields
             if (value := request.query_params.get(name, "")).strip()}
    try:
        return HitFilter(**given)
    except ValidationError as error:
        raise HTTPException(422, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'filter'}: {e['msg']}"
                                           for e in error.errors())) from None


def filter_query(request: Request, **extra) -> str:
    """The filters of this request (non-empty ones) with `extra`, as a query string for links."""
    params = {name: value for name in HitFilter.model_fields if (value := request.query_params.get(name, "").strip())}
    params.update({k: v for k, v in extra.items() if v is not None})
    return urlencode(params)


# -- signing in and out ------------------------------------------------------------------------------

@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=303)


@router.get("/dashboard")
async def dashboard_root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=303)


@router.get("/dashboard/login")
async def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return sign_in_form(request, next)


def sign_in_form(request: Request, next: str | None, status: int = 200, problem: str | None = None,
                 headers: dict | None = None) -> HTMLResponse:
    value = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", status, headers, None, login_csrf=value, next=safe_next(next), problem=problem)
    response.set_cookie(LOGIN_COOKIE, value, **cookie_options(request.url.scheme == "https", max_age=3600))
    return response


@router.post("/dashboard/login")
async def sign_in(request: Request) -> Response:
    fields = await posted_form(request)
    if not same_secret(fields.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        raise HTTPException(403, "The sign-in form did not carry its CSRF token (it is stale, or came from elsewhere); "
                                 "open the sign-in page again.")
    target = safe_next(fields.get("next"))
    token = fields.get("token", "").strip()
    try:
        principal = await authenticate(request, request.app.state.store, token)
    except HTTPException as refused:  # 429: locked out for a while, as on the API
        return sign_in_form(request, target, refused.status_code, str(refused.detail), refused.headers)
    if principal is None:
        return sign_in_form(request, target, 401, "That token is unknown, expired or revoked.")
    request.state.principal = principal
    session = dashboard(request).sessions.open(token)
    response = RedirectResponse(after_sign_in(target, principal), status_code=303)
    response.set_cookie(COOKIE, session.id, **cookie_options(request.url.scheme == "https"))
    forget(response, LOGIN_COOKIE, request)
    return response


@router.post("/dashboard/logout")
async def sign_out(request: Request) -> Response:
    seen = await visit(request)
    await posted_form(request, seen)
    dashboard(request).sessions.close(seen.session.id)
    response = RedirectResponse("/dashboard/login", status_code=303)
    forget(response, COOKIE, request)
    return response


# -- investigators -----------------------------------------------------------------------------------

@router.get("/dashboard/")
async def overview(request: Request, seen: Visit = role("investigator"), period: str = "24h") -> HTMLResponse:
    """Hits per hour, distinct IPs, the top domains, ISPs, countries and client kinds over a period,
    and how the pipeline is doing."""
    if period not in RANGES:
        raise HTTPException(422, f"period must be one of {', '.join(RANGES)}")
    store = request.app.state.store
    now = datetime.now(timezone.utc)
    first_hour = (now - RANGES[period]).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    filters = HitFilter(since=first_hour)
    hours, domains, countries, kinds, ips, isps = await asyncio.gather(
        store.hit_stats(filters, "hour", 100_000), store.hit_stats(filters, "domain", TOP),
        store.hit_stats(filters, "country", TOP), store.hit_stats(filters, "client_kind", len(CLIENT_KINDS) + 1),
        store.hit_stats(filters, "client_ip", DISTINCT_IP_CAP), store.asn_plan(filters))
    per_hour = {row["grp"]: row["hits"] for row in hours}
    chart = {"x": [], "y": []}
    hour = first_hour
    while hour <= now:
        chart["x"].append(int(hour.timestamp()))
        chart["y"].append(per_hour.get(hour.strftime("%Y-%m-%dT%H:00Z"), 0))
        hour += timedelta(hours=1)
    request.state.audit_rows = sum(map(len, (hours, domains, countries, kinds, ips))) + min(len(isps), TOP)
    try:
        await asyncio.wait_for(store.ping(), timeout=2)
        database = True
    except Exception:
        database = False
    health = request.app.state.pipeline.status()
    if not database:
        health["problems"].append("the management process cannot read the database")
    return render(request, "overview.html", seen=seen, period=period, periods=list(RANGES), since=first_hour,
                  total=sum(row["hits"] for row in hours), distinct_ips=len(ips), ips_capped=len(ips) >= DISTINCT_IP_CAP,
                  chart=data_island(chart), domains=domains, countries=countries, kinds=kinds, isps=isps[:TOP],
                  health=health)


@router.get("/dashboard/hits")
async def hits_page(request: Request, seen: Visit = role("investigator"), cursor: str | None = None,
                    limit: int = 50) -> HTMLResponse:
    """The hits browser: the API's filters, newest first, a page at a time."""
    values = {name: request.query_params.get(name, "") for name in HitFilter.model_fields}
    try:
        filters = hit_filter(request)
    except HTTPException as invalid:
        return render(request, "hits.html", 422, seen=seen, values=values, problem=invalid.detail, items=[],
                      next_query=None, export_query="", kinds=CLIENT_KINDS, limit=limit, outside=None, formats=EXPORT_FORMATS)
    limit = max(1, min(limit, 500))
    answer = Response()
    page = await hits_api.list_hits(request, answer, request.app.state.store, filters, cursor if cursor else None, limit)
    next_query = filter_query(request, cursor=page.next_cursor, limit=str(limit)) if page.next_cursor else None
    return render(request, "hits.html", seen=seen, values=values, problem=None, items=page.items, next_query=next_query,
                  export_query=filter_query(request), kinds=CLIENT_KINDS, limit=limit, formats=EXPORT_FORMATS,
                  outside=answer.headers.get(OUTSIDE_CHAIN_HEADER))


@router.get("/dashboard/hits/export")
async def export(request: Request, seen: Visit = role("investigator"), format: str = "csv") -> Response:
    """The API's streamed export (audited before its first byte), as a download."""
    if format not in EXPORT_FORMATS:
        raise HTTPException(422, f"format must be one of {', '.join(EXPORT_FORMATS)}")
    return await hits_api.export_hits(request, request.app.state.store, hit_filter(request), format)


@router.get("/dashboard/hits/package")
async def isp_package(request: Request, seen: Visit = role("investigator")) -> Response:
    """The API's evidence package for an ISP (a ZIP), for the hits the filters select."""
    return await evidence_api.package(request, request.app.state.store, hit_filter(request))


@router.get("/dashboard/hits/{hit_id}")
async def hit_page(request: Request, hit_id: str, seen: Visit = role("investigator")) -> HTMLResponse:
    """One hit's full record: headers, where the client is, its place in the hash chain."""
    number = int(hit_id) if hit_id.isascii() and hit_id.isdigit() and len(hit_id) <= 19 else 0
    if not 1 <= number <= MAX_ID:
        raise HTTPException(404, f"There is no hit {hit_id}.")
    store = request.app.state.store
    hit = (await hits_api.get_hit(request, store, number)).model_dump()
    position = await store.chain_position(hit["node"], hit["id"]) if hit.get("hash") else None
    return render(request, "hit.html", seen=seen, hit=hit, position=position,
                  fields=[(name, value) for name, value in hit.items() if name not in ("headers", "device")])


# -- administrators ----------------------------------------------------------------------------------

def domain_form(fields: dict[str, str]) -> dict:
    """A domain form's fields as the API takes them: empty notice fields fall back to the defaults."""
    values = {name: (fields.get(name, "").strip() or None) for name in NOTICE_FIELDS}
    values["notes"] = fields.get("notes", "")
    values["active"] = fields.get("active") == "on"
    return values


def validation_problem(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in error.errors())


async def domains_listing(request: Request, seen: Visit, status: int = 200, problem: str | None = None,
                          values: dict | None = None) -> HTMLResponse:
    rows = await domains_api.list_domains(request, request.app.state.store)
    return render(request, "domains.html", status, seen=seen, domains=rows, problem=problem, values=values or {},
                  languages=sorted(dashboard(request).languages), defaults=request.app.state.settings.notice)


@router.get("/dashboard/domains")
async def domains_page(request: Request, seen: Visit = role("admin")) -> HTMLResponse:
    return await domains_listing(request, seen)


@router.post("/dashboard/domains")
async def add_domain(request: Request, seen: Visit = role("admin")) -> Response:
    fields = await posted_form(request, seen)
    try:
        domain = domains_api.DomainIn(name=fields.get("name", ""), **domain_form({**fields, "active": "on"}))
        added = await domains_api.add_domain(request.app.state.store, domain)
    except ValidationError as error:
        return await domains_listing(request, seen, 422, validation_problem(error), fields)
    except HTTPException as refused:  # 409: it exists
        return await domains_listing(request, seen, refused.status_code, str(refused.detail), fields)
    return RedirectResponse(f"/dashboard/domains/{added.name}", status_code=303)


async def domain_editor(request: Request, seen: Visit, name: str, status: int = 200, problem: str | None = None,
                        values: dict | None = None, saved: bool = False) -> HTMLResponse:
    domain = (await domains_api.get_domain(request.app.state.store, name)).model_dump()
    return render(request, "domain.html", status, seen=seen, domain=domain, values=values or domain, problem=problem,
                  saved=saved, languages=sorted(dashboard(request).languages), defaults=request.app.state.settings.notice)


@router.get("/dashboard/domains/{name}")
async def domain_page(request: Request, name: str, seen: Visit = role("admin"), saved: bool = False) -> HTMLResponse:
    return await domain_editor(request, seen, name, saved=saved)


@router.post("/dashboard/domains/{name}")
async def edit_domain(request: Request, name: str, seen: Visit = role("admin")) -> Response:
    """Every field of the form replaces the domain's (an empty notice field: the [notice] default)."""
    fields = await posted_form(request, seen)
    try:
        patch = domains_api.DomainPatch(**domain_form(fields))
        changed = await domains_api.update_domain(request.app.state.store, name, patch)
    except ValidationError as error:
        return await domain_editor(request, seen, name, 422, validation_problem(error), {**fields, "active": "active" in fields})
    return RedirectResponse(f"/dashboard/domains/{changed.name}?saved=true", status_code=303)


@router.post("/dashboard/domains/{name}/active")
async def set_active(request: Request, name: str, seen: Visit = role("admin")) -> Response:
    """Deactivate (off the notice, kept) or reactivate a domain."""
    fields = await posted_form(request, seen)
    patch = domains_api.DomainPatch(active=fields.get("active") == "true")
    await domains_api.update_domain(request.app.state.store, name, patch)
    return RedirectResponse("/dashboard/domains", status_code=303)


@router.get("/dashboard/domains/{name}/preview")
async def preview(request: Request, name: str, seen: Visit = role("admin"), lang: str = "en") -> HTMLResponse:
    """The notice the public listener serves for this domain in `lang`, for the visitor asking; with
    notice fields in the query (the edit form as typed), as it would read once saved."""
    board = dashboard(request)
    if lang not in board.languages:
        raise HTTPException(404, f"There is no notice language {lang!r}.")
    domain = (await domains_api.get_domain(request.app.state.store, name)).model_dump()
    typed = {k: v for k in NOTICE_FIELDS if (v := request.query_params.get(k)) is not None}
    fields = {**domain, **{k: (v.strip() or None) for k, v in typed.items()}}
    try:
        fields["status"] = int(fields["status"]) if fields.get("status") is not None else None
    except ValueError:
        fields["status"] = None
    notice = resolve_notice(domain["name"], request.app.state.settings.notice, **fields)
    client = request.client
    page = board.notice.render(notice, lang, {"ip": client.host if client else "", "port": str(client.port) if client else "",
                                              "time": display_time(time.time_ns())})
    return HTMLResponse(page, headers=PREVIEW_HEADERS)


# -- auditors ----------------------------------------------------------------------------------------

def moment(text: str | None, name: str) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise HTTPException(422, f"{name}: not a time (use 2026-12-01T08:00 or RFC 3339)") from None


@router.get("/dashboard/audit")
async def audit_page(request: Request, seen: Visit = role("auditor"), since: str | None = None, until: str | None = None,
                     token_name: str | None = None, cursor: str | None = None) -> HTMLResponse:
    """The audit log, newest first, through the API's own reader."""
    page = await audit_api.read_audit(request, request.app.state.store, since=moment(since, "since"),
                                      until=moment(until, "until"), token_name=token_name or None,
                                      cursor=cursor or None, limit=100)
    params = {k: v for k, v in (("since", since), ("until", until), ("token_name", token_name)) if v}
    next_query = urlencode({**params, "cursor": page.next_cursor}) if page.next_cursor else None
    return render(request, "audit.html", seen=seen, items=page.items, next_query=next_query,
                  values={"since": since or "", "until": until or "", "token_name": token_name or ""})


# -- files -------------------------------------------------------------------------------------------

def file_response(files: dict[str, bytes], name: str) -> Response:
    body = files.get(name)
    if body is None:
        raise HTTPException(404, "No such file.")
    media_type = mimetypes.guess_type(name)[0] or ("text/plain" if "." not in name.rpartition("/")[2] else "application/octet-stream")
    return Response(body, media_type=media_type, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


@router.get("/dashboard/static/{name:path}")
async def static_file(request: Request, name: str) -> Response:
    return file_response(dashboard(request).static, name)


@router.get("/_seized/{name}")
async def notice_asset(request: Request, name: str) -> Response:
    """The notice's stylesheet and seal, at the paths the notice names, for the preview frames."""
    return file_response(dashboard(request).notice_assets, name)
