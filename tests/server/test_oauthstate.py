"""The OAuth state value, browser binding, PKCE and replay memory."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from server_helpers import SIGNING_KEY

from grantctl.links import ExpiredLink, SigningKey, TamperedLink, seal
from grantctl.server._oauthstate import (
    STATE_TTL,
    NonceBook,
    browser_matches,
    cookie_name,
    issue_state,
    open_state,
    pkce_challenge,
    pkce_verifier,
)

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY = SigningKey(SIGNING_KEY.encode(), "test")


def test_state_round_trip_and_expiry_of_ten_minutes() -> None:
    issued = issue_state(KEY, connection="acme-ltd", scope_digest="d1", now=NOW, bind_browser=True)
    state = open_state(KEY, issued.value, now=NOW + timedelta(minutes=9))
    assert state == issued.state
    assert state.connection == "acme-ltd"
    assert state.expires_at == NOW + STATE_TTL
    assert timedelta(minutes=10) == STATE_TTL
    with pytest.raises(ExpiredLink):
        open_state(KEY, issued.value, now=NOW + STATE_TTL)


def test_each_state_has_its_own_nonce_and_binding() -> None:
    first = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True)
    second = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True)
    assert first.state.nonce != second.state.nonce
    assert first.binding_secret != second.binding_secret


def test_state_carries_a_hash_of_the_binding_secret_never_the_secret() -> None:
    issued = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True)
    assert issued.binding_secret is not None
    assert issued.binding_secret not in issued.value
    payload = issued.value.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert issued.binding_secret not in decoded
    assert browser_matches(issued.state, issued.binding_secret)
    assert not browser_matches(issued.state, None)
    assert not browser_matches(issued.state, "")
    assert not browser_matches(issued.state, issued.binding_secret + "x")


def test_unbound_state_never_matches_a_cookie() -> None:
    issued = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=False)
    assert issued.binding_secret is None
    assert not browser_matches(issued.state, "")


def test_forged_or_foreign_states_are_refused() -> None:
    issued = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True)
    with pytest.raises(TamperedLink):
        open_state(KEY, issued.value[:-3] + "AAA", now=NOW)
    with pytest.raises(TamperedLink):
        open_state(SigningKey(b"x" * 40, "other"), issued.value, now=NOW)
    with pytest.raises(TamperedLink):
        open_state(KEY, "", now=NOW)


def test_a_link_token_is_not_a_state() -> None:
    link_like = seal(KEY, "link", {"c": "a", "d": "d", "n": "n", "e": 2**40, "b": ""})
    with pytest.raises(TamperedLink):
        open_state(KEY, link_like, now=NOW)


def test_pkce_verifier_is_stable_per_nonce_and_challenge_is_s256() -> None:
    verifier = pkce_verifier(KEY, "nonce-1")
    assert verifier == pkce_verifier(KEY, "nonce-1")
    assert verifier != pkce_verifier(KEY, "nonce-2")
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce_challenge(verifier) == expected


def test_nonce_book_refuses_a_second_use_until_the_state_expires() -> None:
    book = NonceBook()
    state = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True).state
    assert book.use(state, now=NOW)
    assert not book.use(state, now=NOW + timedelta(minutes=1))
    other = issue_state(KEY, connection="a", scope_digest="d", now=NOW, bind_browser=True).state
    assert book.use(other, now=NOW)
    assert len(book) == 2
    book.use(
        issue_state(KEY, connection="a", scope_digest="d", now=NOW + STATE_TTL, bind_browser=True).state,
        now=NOW + STATE_TTL,
    )
    assert len(book) == 1  # the expired ones were forgotten


def test_cookie_name_is_per_connection() -> None:
    assert cookie_name("acme-ltd") != cookie_name("bluebird")
    assert cookie_name("acme-ltd").startswith("grantctl_bind_")
