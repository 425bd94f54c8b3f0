"""The investigator dashboard in a real headless Chromium (Debian's, driven by Playwright) against a
real `seized serve`: sign in, the chart's numbers, the hits browser, exports, domain edits reaching
the public notice, CSRF, cookies, roles, sign-out, revocation; nothing requested from another host,
no console error; screenshots kept in the test's temporary directory."""

import csv
import io
import re
import zipfile
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from conftest import started
from browser import headless_chromium
from helpers import wait_for
from test_geo import ASN, CITY, write_asn, write_city

# Each test its own domains, so that whatever order they run in, one test's hits are not another's.
COUNTED = ["count-a.example", "count-b.example"]  # 7 and 3 hits
EDITED = ["edit-a.example", "edit-b.example"]
DOMAINS = [{"name": COUNTED[0], "agency": "Agency A", "language": "en"}, {"name": COUNTED[1], "language": "it"},
           {"name": EDITED[0], "agency": "Original Agency", "case_ref": "CASE-1", "language": "en"},
           {"name": EDITED[1], "agency": "Agency B"}]


# Where the counted hits come from (a trusted proxy's X-Forwarded-For), and so their ISPs and countries
# (test_geo's GeoIP and ASN databases: 203.0.113.0/24 is IT, AS64500; 2001:db8::/32 DE, AS64501).
SOURCES = {COUNTED[0]: ["203.0.113.7"] * 4 + ["2001:db8::9"] * 3, COUNTED[1]: ["198.51.100.1"] + ["203.0.113.8"] * 2}


@pytest.fixture(scope="module")
def dash(tmp_path_factory, databases):
    directory = tmp_path_factory.mktemp("dashboard")
    city, asn = directory / "city.mmdb", directory / "asn.mmdb"
    write_city(city, CITY)
    write_asn(asn, ASN)
    srv = started(directory / "server", databases, domains=DOMAINS, settings={
        "trusted_proxies": ["127.0.0.0/8"], "geoip_city_db": str(city), "geoip_asn_db": str(asn)})
    srv.shots = tmp_path_factory.mktemp("dashboard-screenshots")
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def browser(dash):
    with headless_chromium() as chromium:
        yield chromium


class Watched:
    """A browser context whose every request and console error is recorded."""

    def __init__(self, browser, dash, **options):
        self.dash = dash
        self.context = browser.new_context(accept_downloads=True, **options)
        self.requests, self.errors = [], []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.new_page()

    def new_page(self):
        page = self.context.new_page()
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def sign_in(self, token: str, path: str = "/dashboard/"):
        self.page.goto(self.dash.admin_url(path))
        assert urlsplit(self.page.url).path == "/dashboard/login"  # not signed in yet: to the sign-in page
        self.page.fill("#token", token)
        self.page.click("form[action='/dashboard/login'] button[type=submit]")
        self.page.wait_for_load_state()
        return self.page

    def check_clean(self):
        """Nothing but the management listener was asked for anything; no console errors."""
        hosts = {urlsplit(url).netloc for url in self.requests if not url.startswith(("data:", "about:"))}
        assert hosts == {f"127.0.0.1:{self.dash.admin_port}"}, hosts
        assert self.errors == []

    def screenshot(self, page, name: str) -> None:
        path = self.dash.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")

    def close(self):
        self.context.close()


def test_investigator_sees_the_numbers_filters_and_exports(dash, browser):
    for domain, sources in SOURCES.items():
        for i, ip in enumerate(sources):
            response = dash.request(target=f"/get.php?username=u{i}&password=p", host=domain, headers=[("X-Forwarded-For", ip)])
            assert response.status == 200
    for domain, count in zip(COUNTED, (7, 3)):
        assert len(dash.wait_rows("domain = ?", (domain,), count=count)) == count
    token = dash.new_token("investigator", "dash-investigator")
    watched = Watched(browser, dash, viewport={"width": 1280, "height": 900})
    page = watched.sign_in(token)
    assert urlsplit(page.url).path == "/dashboard/", page.content()

    # The session cookie: HttpOnly, SameSite=Strict, only for /dashboard (plain http here: not Secure).
    cookie, = [c for c in watched.context.cookies() if c["name"] == "seized_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert not cookie["secure"]

    # The chart is given the hits per hour; over the period they add up to every hit stored.
    page.wait_for_function("window.seizedChart !== undefined")
    stored = dash.rows()
    chart_hits = page.evaluate("window.seizedChart.data[1].reduce((a, b) => a + b, 0)")
    island = page.evaluate("JSON.parse(document.getElementById('hits-per-hour').textContent)")
    assert chart_hits == sum(island["y"]) == len(stored)
    assert page.evaluate("window.seizedChart.data[0]") == island["x"]
    assert page.locator("#hits-chart canvas").count() == 1
    assert page.inner_text("#total-hits") == str(len(stored))
    assert page.inner_text("#distinct-ips") == str(len({row["client_ip"] for row in stored}))
    shown = {row.get_attribute("data-key"): int(row.get_attribute("data-hits"))
             for row in page.locator("#top-domains tbody tr[data-key]").all()}
    assert shown[COUNTED[0]] == 7 and shown[COUNTED[1]] == 3
    assert len({row["client_ip"] for row in stored}) >= 4
    def table(name):
        return {row.get_attribute("data-key"): int(row.get_attribute("data-hits"))
                for row in page.locator(f"#{name} tbody tr[data-key]").all()}
    assert table("client-kinds")["playlist"] == 10  # the others' hits are browsers and HEADs
    assert table("top-isps")["64500"] == 6 and table("top-isps")["64501"] == 3
    assert table("top-countries")["IT"] == 6 and table("top-countries")["DE"] == 3
    assert page.inner_text("#ingest-state") == "healthy"
    watched.screenshot(page, "overview-desktop")

    # The hits browser, filtered by domain: only that domain's hits; empty filters stay out of the URL.
    page.click("nav[aria-label=pages] a[href='/dashboard/hits']")
    page.fill("#hit-filters input[name=domain]", COUNTED[1])
    page.click("#hit-filters button[type=submit]")
    page.wait_for_load_state()
    assert "domain=" + COUNTED[1] in page.url and "ip=" not in page.url
    rows = page.locator("#hits-table tbody tr[data-id]")
    assert rows.count() == 3
    assert {row.get_attribute("data-domain") for row in rows.all()} == {COUNTED[1]}
    watched.screenshot(page, "hits-filtered")

    # CSV export of what is filtered: a download whose rows are those hits.
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(exported) == 3 and {row["domain"] for row in exported} == {COUNTED[1]}
    assert {int(row["id"]) for row in exported} == {int(row.get_attribute("data-id")) for row in rows.all()}
    with page.expect_download() as download:
        page.click("#export-ndjson")
    assert len(open(download.value.path(), encoding="utf-8").read().splitlines()) == 3

    # The ISP package of the same hits: a ZIP holding them.
    with page.expect_download() as download:
        page.click("#export-package")
    with zipfile.ZipFile(download.value.path()) as package:
        assert {"hits.csv", "records.jsonl", "manifest.json"} <= set(package.namelist())
        assert len(package.read("records.jsonl").splitlines()) == 3

    # One hit's full record: its headers, where the client is, where it sits in the chain.
    first = rows.first.get_attribute("data-id")
    page.click(f"#hits-table a[href='/dashboard/hits/{first}']")
    page.wait_for_load_state()
    assert page.locator("#hit-headers td", has_text=COUNTED[1]).count() >= 1
    assert page.locator("#hit-headers td", has_text="203.0.113.8").count() == 1  # the X-Forwarded-For sent
    geo = page.inner_text("#hit-geo")
    assert "203.0.113.8" in geo and "IT" in geo and "Rome" in geo and "AS64500 Example Telecom" in geo
    hit = dash.rows("id = ?", (int(first),))[0]
    assert page.inner_text("#chain-hash") == hit["hash"] and page.inner_text("#chain-prev") == hit["prev_hash"]
    assert int(page.inner_text("#chain-position")) >= 1
    watched.screenshot(page, "hit-record")

    # 360 px wide: the overview fits, nothing scrolls sideways but the tables inside their boxes.
    narrow = watched.new_page()
    narrow.set_viewport_size({"width": 360, "height": 740})
    narrow.goto(dash.admin_url("/dashboard/?period=7d"))
    narrow.wait_for_function("window.seizedChart !== undefined")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 360
    assert narrow.evaluate("window.seizedChart.data[1].reduce((a, b) => a + b, 0)") == len(dash.rows())
    watched.screenshot(narrow, "overview-360px")
    narrow.goto(dash.admin_url(f"/dashboard/hits?domain={COUNTED[0]}"))
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 360
    watched.screenshot(narrow, "hits-360px")
    watched.check_clean()

    # What the investigator did is in the audit log, as API calls are: the export before its first byte.
    auditor = dash.new_token("auditor")
    entries = dash.api("GET", "/api/v1/audit", auditor, params={"token_name": "dash-investigator", "limit": 1000}).json()["items"]
    endpoints = [(e["endpoint"], e["filters"].get("_audit"), e["rows"]) for e in entries]
    assert ("/dashboard/hits/export", "started", None) in endpoints
    assert ("/dashboard/hits/export", None, 3) in endpoints
    assert ("/dashboard/hits/package", None, 3) in endpoints
    assert (f"/dashboard/hits/{first}", None, 1) in endpoints
    assert any(e == "/dashboard/hits" and r == 3 for e, _, r in endpoints)
    watched.close()


def test_admin_changes_a_domain_and_the_public_notice_follows(dash, browser):
    watched = Watched(browser, dash, viewport={"width": 1280, "height": 900}, locale="en-US")
    page = watched.sign_in(dash.admin_token)
    assert urlsplit(page.url).path == "/dashboard/domains"  # an admin's own page
    page.click(f"#domains-table a[href='/dashboard/domains/{EDITED[0]}']")
    page.wait_for_load_state()

    # The preview follows the form as it is typed, in every language, before anything is saved.
    page.fill("#domain-form input[name=agency]", "Dashboard Test Agency")
    for lang in ("en", "it"):
        expect(page.frame_locator(f"#preview-{lang}").locator("main")).to_contain_text("Dashboard Test Agency")
    expect(page.frame_locator("#preview-it").locator("h1")).to_have_text(re.compile("sequestrato", re.I))
    assert "Dashboard Test Agency" not in dash.request(host=EDITED[0]).text
    page.fill("#domain-form input[name=case_ref]", "CASE-DASH-9")
    page.click("#domain-form button[type=submit]")
    expect(page.locator("#saved")).to_be_visible()
    watched.screenshot(page, "domain-edit")

    # Saved: the public listener serves the new notice within a second or so.
    wait_for(lambda: "Dashboard Test Agency" in dash.request(host=EDITED[0]).text, timeout=30,
             message="the public notice did not change")
    assert "CASE-DASH-9" in dash.request(host=EDITED[0]).text
    stored = dash.api("GET", f"/api/v1/domains/{EDITED[0]}", dash.admin_token).json()
    assert stored["agency"] == "Dashboard Test Agency" and stored["case_ref"] == "CASE-DASH-9" and stored["active"]

    # Deactivate another: its visitors get the default notice, which names no domain.
    page.click("a[href='/dashboard/domains']")
    page.click(f"#domains-table tr[data-domain='{EDITED[1]}'] button[type=submit]")
    page.wait_for_load_state()
    assert page.get_attribute(f"#domains-table tr[data-domain='{EDITED[1]}']", "class") == "inactive"
    wait_for(lambda: EDITED[1] not in dash.request(host=EDITED[1]).text, timeout=30,
             message="the deactivated domain is still named")

    # Add one.
    page.fill("#add-domain input[name=name]", "Added.Example")
    page.fill("#add-domain input[name=agency]", "Added Agency")
    page.click("#add-domain button[type=submit]")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/dashboard/domains/added.example"
    wait_for(lambda: "Added Agency" in dash.request(host="www.added.example").text, timeout=30)
    watched.check_clean()

    # CSRF: a form without this session's token, or with a wrong one, is refused and changes nothing.
    form = {"agency": "Forged Agency", "active": "on"}
    for fields in (form, {**form, "csrf": "not-the-token"}):
        refused = page.request.post(dash.admin_url(f"/dashboard/domains/{EDITED[0]}"), form=fields, max_redirects=0)
        assert refused.status == 403 and "CSRF" in refused.text()
    signin = page.request.post(dash.admin_url("/dashboard/login"), form={"token": dash.admin_token}, max_redirects=0)
    assert signin.status == 403
    assert dash.api("GET", f"/api/v1/domains/{EDITED[0]}", dash.admin_token).json()["agency"] == "Dashboard Test Agency"

    # Sign out: the session is gone, also for whoever kept its cookie.
    session = next(c["value"] for c in watched.context.cookies() if c["name"] == "seized_session")
    page.click("form.signout button")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/dashboard/login"
    page.goto(dash.admin_url("/dashboard/domains"))
    assert urlsplit(page.url).path == "/dashboard/login"
    kept = httpx.get(dash.admin_url("/dashboard/domains"), cookies={"seized_session": session}, follow_redirects=False)
    assert kept.status_code == 303 and kept.headers["location"].startswith("/dashboard/login")
    watched.close()


def test_roles_revocation_and_the_audit_page(dash, browser):
    watched = Watched(browser, dash, viewport={"width": 1280, "height": 900})
    page = watched.page

    # A wrong token: refused, said so.
    page.goto(dash.admin_url("/dashboard/login"))
    page.fill("#token", "sz_000000000000_wrong")
    page.click("form[action='/dashboard/login'] button[type=submit]")
    expect(page.locator(".problem")).to_contain_text("unknown, expired or revoked")
    watched.errors.clear()  # (Chromium logs the 401 of that answer as a console error)

    # An investigator opening an admin's page gets a clear 403 page.
    token = dash.new_token("investigator", "dash-revoked")
    page = watched.sign_in(token)
    answer = page.goto(dash.admin_url("/dashboard/domains"))
    assert answer.status == 403
    assert "for the admin role" in page.inner_text(".problem")
    watched.screenshot(page, "forbidden")
    csrf = page.get_attribute("form.signout input[name=csrf]", "value")  # a valid form, from the wrong role
    edit = page.request.post(dash.admin_url(f"/dashboard/domains/{EDITED[0]}"), form={"csrf": csrf, "agency": "X"}, max_redirects=0)
    assert edit.status == 403 and "for the admin role" in edit.text()
    watched.errors.clear()  # (the 403 likewise)

    # Revoked: the session stops working at the next page.
    page.goto(dash.admin_url("/dashboard/hits"))
    assert urlsplit(page.url).path == "/dashboard/hits"
    assert dash.api("DELETE", "/api/v1/tokens/dash-revoked", dash.admin_token).status_code == 204
    page.goto(dash.admin_url("/dashboard/hits"))
    assert urlsplit(page.url).path == "/dashboard/login"
    watched.close()

    # An auditor sees the audit log, down to this auditor's own sign-in and the refusals above.
    watched = Watched(browser, dash, viewport={"width": 1280, "height": 900})
    page = watched.sign_in(dash.new_token("auditor", "dash-auditor"))
    assert urlsplit(page.url).path == "/dashboard/audit"
    rows = page.locator("#audit-table tbody tr[data-endpoint]")
    seen = {(row.get_attribute("data-endpoint"), row.get_attribute("data-token")) for row in rows.all()}
    assert ("/dashboard/login", "dash-auditor") in seen
    assert ("/dashboard/domains", "dash-revoked") in seen  # the 403, audited with who asked
    assert ("/dashboard/login", "") in seen  # the wrong token
    watched.screenshot(page, "audit")
    assert page.goto(dash.admin_url("/dashboard/hits")).status == 403  # an auditor is no investigator
    watched.errors.clear()
    watched.check_clean()
    watched.close()
