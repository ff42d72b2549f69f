"""The state carries the expiry of the link it began at; the binding secret stays out of reprs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server_helpers import SIGNING_KEY

from grantctl.links import SigningKey
from grantctl.server._oauthstate import issue_state, open_state

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY = SigningKey(SIGNING_KEY.encode(), "test")


def test_the_link_expiry_travels_in_the_signed_state() -> None:
    link_expires = NOW + timedelta(days=3)
    issued = issue_state(
        KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True, link_expires_at=link_expires
    )
    assert open_state(KEY, issued.value, now=NOW).link_expires_at == link_expires


def test_a_state_without_a_link_has_no_link_expiry() -> None:
    issued = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=False)
    assert open_state(KEY, issued.value, now=NOW).link_expires_at is None


def test_the_binding_secret_and_the_state_value_are_not_in_the_repr() -> None:
    issued = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True)
    assert issued.binding_secret is not None
    shown = repr(issued)
    assert issued.binding_secret not in shown  # the cookie value: whoever has it passes as the browser
    assert issued.value not in shown
