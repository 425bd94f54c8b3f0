"""Debian's headless Chromium, driven by Playwright (which never downloads a browser here)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# closed network refuses; QUIC and the GPU are of no use headless.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@contextmanager
def headless_chromium(resolver_rules: str | None = None):
    """A browser for a test module. `resolver_rules` (Chromium's --host-resolver-rules) stands in for
    DNS: a seized domain pointed at the test server, or every other name made unresolvable."""
    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    rules = [f"--host-resolver-rules={resolver_rules}"] if resolver_rules else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *rules])
        try:
            yield browser
        finally:
            browser.close()
