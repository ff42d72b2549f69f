"""A link's expiry holds: the fresh link a page offers never outlives the link the client arrived with.

Without this, anyone holding a link (a forwarded e-mail, a leaked CI summary) could renew it forever
without ever reaching the provider: open it, then call ``/callback?error=access_denied`` with the
state and cookie they were just given, and receive a "fresh" link valid for another full TTL.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from server_helpers import HOLDINGS, NAME, Live, page_text

from grantctl.links import verify_link


def _state_at_provider(live: Live, link: str) -> str:
    """Open ``link`` and stop at the provider's door: the state value the browser carries there."""
    at_provider = live.browser.open(link, stop_at=live.emulator_url)
    assert at_provider.status_code == 302
    return parse_qs(urlsplit(at_provider.headers["location"]).query)["state"][0]


def _fresh_link(html: str) -> str | None:
    found = re.search(r'id="fresh-link" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _expiry(live: Live, link: str) -> datetime:
    return verify_link(link.rsplit("/", 1)[1], key=live.key, now=live.clock()).expires_at


def test_a_made_up_denial_does_not_renew_the_link(live: Live) -> None:
    original = live.issue(ttl=timedelta(hours=1))
    state = _state_at_provider(live, original.url)

    # Never went to the provider: the "denial" is typed in by whoever holds the link.
    page = live.open(f"{live.server_url}/callback?error=access_denied&state={state}")

    assert page.status_code == 200
    fresh = _fresh_link(page.text)
    assert fresh is not None  # the way forward is still offered...
    assert _expiry(live, fresh) <= original.expires_at  # ...but not one day longer than the original


def test_the_fresh_link_after_a_wrong_organisation_keeps_the_original_expiry(live: Live) -> None:
    original = live.issue(ttl=timedelta(days=2))
    page = live.consent(original.url, [HOLDINGS])

    assert page.status_code == 409
    fresh = _fresh_link(page.text)
    assert fresh is not None
    assert _expiry(live, fresh) <= original.expires_at
    assert _expiry(live, fresh) > live.clock() + timedelta(days=1)  # still a useful link


def test_no_fresh_link_once_the_original_has_expired(live: Live) -> None:
    original = live.issue(ttl=timedelta(minutes=5))
    state = _state_at_provider(live, original.url)
    live.clock.advance(timedelta(minutes=6))  # the link is over; the ten-minute state is not

    page = live.open(f"{live.server_url}/callback?error=access_denied&state={state}")

    assert page.status_code == 200
    assert _fresh_link(page.text) is None
    text = page_text(page.text)
    assert "Ask for a new link from jane@agency.example" in text
    assert live.store.read_grant(NAME) is None
