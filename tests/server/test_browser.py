"""A real browser (Debian's chromium through Playwright) clicks through the emulator's consent page.

Fails, never skips, when chromium is missing: CI installs it (`apt-get install -y chromium`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import ACME, NAME, Live

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.browser
def test_consent_in_a_real_browser(live: Live) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    link = live.link()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(link)
            # The emulator's consent page (stable ids are its contract for browser tests).
            page.wait_for_selector("button#allow", timeout=10_000)
            assert "wants to access your Xero data" in page.inner_text("h1")
            page.check(f"input[name=tenant][value='{ACME}']")
            page.click("button#allow")
            page.wait_for_selector("main[data-outcome]", timeout=10_000)

            assert page.url.startswith(f"{live.server_url}/callback?")
            assert page.inner_text("h1") == "Connected Acme Ltd"
            body = page.inner_text("main")
            assert "Connected Acme Ltd with:" in body
            assert "Read, create and update invoices and bills" in body
            assert page.locator("main").get_attribute("data-outcome") == "connected"
            cookies = [c["name"] for c in page.context.cookies()]
            assert not [name for name in cookies if name.startswith("grantctl_bind_")]
            page.screenshot(path=str(ARTIFACTS / "consent-success.png"), full_page=True)
        finally:
            browser.close()

    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == ACME
    assert (ARTIFACTS / "consent-success.png").stat().st_size > 1000
