"""Every outcome page: accessible structure, plain words, and everything echoed escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

import pytest
from server_helpers import page_text

from grantctl.server import STATUS, FlowResult, Kind, render

HOSTILE = '<script>alert("x")</script>'
ALL_KINDS: tuple[Kind, ...] = get_args(Kind)


def hostile_result(kind: Kind) -> FlowResult:
    return FlowResult(
        kind,
        connection="acme-ltd",
        provider="xero",
        organisation=f"Acme {HOSTILE}",
        owner=f"jane{HOSTILE}@agency.example",
        tenant=f"Tenant {HOSTILE}",
        granted=("accounting.invoices", HOSTILE),
        missing=(HOSTILE,),
        ticked=(f"Other {HOSTILE}",),
        released=(f"Released {HOSTILE}",),
        not_released=(f"Stuck {HOSTILE}",),
        detail=f"detail {HOSTILE}",
        expired_at=datetime(2026, 12, 1, tzinfo=UTC),
        fresh_link=f'https://connect.example/connect/tok"en{HOSTILE}',
        retry_hint=None,
    )


def test_every_kind_has_a_status_and_a_page() -> None:
    assert set(STATUS) == set(ALL_KINDS)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_page_structure_and_escaping(kind: Kind) -> None:
    html = render(hostile_result(kind))

    assert html.startswith("<!doctype html>")
    assert '<html lang="en">' in html
    title = re.search(r"<title>([^<]+)</title>", html)
    heading = re.search(r"<h1>([^<]+)</h1>", html)
    assert title
    assert heading
    assert title.group(1) == heading.group(1)
    assert html.count("<h1>") == 1
    assert "<script" not in html
    assert 'alert("x")' not in html  # quotes are escaped too
    assert f'data-outcome="{kind}"' in html
    assert len(page_text(html)) > 40


def test_connected_page_in_plain_words() -> None:
    result = FlowResult(
        "connected",
        connection="acme-ltd",
        provider="xero",
        organisation="Acme Ltd",
        tenant="Acme Ltd",
        granted=("accounting.invoices", "offline_access"),
        released=("Acme Holdings",),
    )
    text = page_text(render(result))
    assert text.startswith("Connected Acme Ltd Connected Acme Ltd with:")
    assert "Read, create and update invoices and bills" in text
    assert "Stay connected" in text
    assert "You also picked Acme Holdings" in text
    assert "accounting.invoices" not in text  # plain words, not scope names


def test_fresh_link_only_where_trying_again_helps() -> None:
    offered = {
        kind for kind in ALL_KINDS if 'id="fresh-link"' in render(FlowResult(kind, fresh_link="https://x/connect/t"))
    }
    assert offered == {"wrong-organization", "denied", "provider-error", "storage-error"}


def test_retry_hint_replaces_the_link() -> None:
    html = render(
        FlowResult("wrong-organization", organisation="Acme Ltd", retry_hint="Run `grantctl connect x` again.")
    )
    assert "Run `grantctl connect x` again." in html
    assert "fresh-link" not in html


def test_owner_is_named_when_known() -> None:
    assert "jane@agency.example" in render(FlowResult("link-expired", owner="jane@agency.example"))
    assert "the person who sent you the link" in render(FlowResult("link-expired"))
