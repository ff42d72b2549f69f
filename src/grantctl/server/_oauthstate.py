"""The OAuth ``state`` parameter of one consent, the browser binding, PKCE, and replay protection.

A state value is a token sealed with the link signing key (its own sub-key) that carries the
connection, the scope digest, a random nonce, an expiry of about ten minutes, the SHA-256 of a
browser-binding secret and, when the trip began at a link, that link's expiry (so a fresh link
offered after the consent can never outlive it). The binding secret itself only ever travels in a
short-lived HttpOnly cookie, so a callback URL that leaks (a screenshot, a proxy log, another
browser) is useless on its own.

The PKCE verifier is derived from the key and the nonce, so the server needs no storage to
remember it between ``/connect`` and ``/callback``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from grantctl.links import ExpiredLink, SigningKey, TamperedLink, seal, unseal

STATE_PURPOSE = "oauth-state"
STATE_TTL = timedelta(minutes=10)
COOKIE_PREFIX = "grantctl_bind_"


class StateExpired(ExpiredLink):
    """A genuine state value whose ten minutes are over."""


@dataclass(frozen=True)
class FlowState:
    """What a verified ``state`` says. ``binding`` is empty when no browser is bound (``grantctl connect``).

    ``link_expires_at`` is the expiry of the link the consent started from (None without a link).
    """

    connection: str
    scope_digest: str
    nonce: str
    expires_at: datetime
    binding: str
    link_expires_at: datetime | None = None

    @property
    def cookie_name(self) -> str:
        return cookie_name(self.connection)


@dataclass(frozen=True)
class IssuedState:
    """A new state value, and the binding secret for the cookie (None when no browser is bound).

    Neither shows in ``repr``: the pair is what lets a browser finish this consent.
    """

    value: str = field(repr=False)
    state: FlowState
    binding_secret: str | None = field(repr=False)


def cookie_name(connection: str) -> str:
    """One cookie per connection, so links for two connections opened in one browser do not collide."""
    return COOKIE_PREFIX + connection


def issue_state(
    key: SigningKey,
    *,
    connection: str,
    scope_digest: str,
    now: datetime,
    bind_browser: bool,
    link_expires_at: datetime | None = None,
) -> IssuedState:
    """A fresh state value for one trip to the provider's consent page."""
    binding_secret = secrets.token_urlsafe(32) if bind_browser else None
    state = FlowState(
        connection=connection,
        scope_digest=scope_digest,
        nonce=secrets.token_urlsafe(18),
        expires_at=(now + STATE_TTL).replace(microsecond=0),
        binding=_binding_hash(binding_secret) if binding_secret else "",
        link_expires_at=link_expires_at,
    )
    claims: dict[str, str | int] = {
        "c": state.connection,
        "d": state.scope_digest,
        "n": state.nonce,
        "e": int(state.expires_at.timestamp()),
        "b": state.binding,
    }
    if link_expires_at is not None:
        claims["x"] = int(link_expires_at.timestamp())
    return IssuedState(seal(key, STATE_PURPOSE, claims), state, binding_secret)


def open_state(key: SigningKey, value: str, *, now: datetime) -> FlowState:
    """The verified state; :class:`TamperedLink` when forged or damaged, :class:`StateExpired` when late."""
    raw = unseal(key, STATE_PURPOSE, value)
    fields = (raw.get("c"), raw.get("d"), raw.get("n"), raw.get("b"))
    expires, link_expires = _timestamp(raw.get("e"), now), _timestamp(raw.get("x"), now)
    if not all(isinstance(f, str) for f in fields) or expires is None or ("x" in raw and link_expires is None):
        raise TamperedLink("the consent answer is incomplete or damaged")
    connection, digest, nonce, binding = (str(f) for f in fields)
    state = FlowState(connection, digest, nonce, expires, binding, link_expires)
    if now >= state.expires_at:
        raise StateExpired("the consent took longer than allowed")
    return state


def _timestamp(value: object, now: datetime) -> datetime | None:
    """A claim holding seconds since the epoch, in ``now``'s time zone; None when it is not one."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value, now.tzinfo)


def browser_matches(state: FlowState, cookie_value: str | None) -> bool:
    """True when the cookie holds the binding secret the state was issued with (constant time)."""
    if not state.binding:
        return False
    return hmac.compare_digest(state.binding, _binding_hash(cookie_value or ""))


def _binding_hash(secret: str) -> str:
    return _b64(hashlib.sha256(secret.encode("utf-8")).digest())


def pkce_verifier(key: SigningKey, nonce: str) -> str:
    """The PKCE ``code_verifier`` of the consent with ``nonce`` (43 characters, RFC 7636)."""
    return _b64(hmac.new(key.derive("pkce"), nonce.encode("utf-8"), hashlib.sha256).digest())


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` for ``verifier``."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class NonceBook:
    """Nonces of states already used, kept until their state would have expired anyway.

    In memory: one server process. A second process would not see these, but the provider refuses a
    second exchange of the same code, so a replay there still changes nothing.
    """

    def __init__(self) -> None:
        self._used: dict[str, datetime] = {}

    def use(self, state: FlowState, *, now: datetime) -> bool:
        """Mark ``state``'s nonce used; False when it was used before."""
        self._forget_expired(now)
        if state.nonce in self._used:
            return False
        self._used[state.nonce] = state.expires_at
        return True

    def _forget_expired(self, now: datetime) -> None:
        for nonce in [n for n, expires in self._used.items() if expires <= now]:
            del self._used[nonce]

    def __len__(self) -> int:
        return len(self._used)
