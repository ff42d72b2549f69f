"""Authorization links: signed, expiring tokens that send one client to one consent.

A link is ``{publicUrl}/connect/{token}``. The token is compact (``<payload>.<signature>``, both
base64url) and its HMAC-SHA256 signature covers:

- the connection name,
- the *scope digest*: SHA-256 of the sorted desired scopes, so a link is useless once the manifest
  asks for a different scope set (the server recomputes the digest from the manifest it has NOW),
- the manifest commit (``git rev-parse HEAD``, ``uncommitted`` or ``nogit``), recorded for audit,
- the expiry.

The same signing key also signs the OAuth ``state`` of the callback server; each use derives its own
sub-key (:meth:`SigningKey.derive`) so a link can never pass as a state value or the other way round.

The key comes from the environment variable named in ``grantctl.yaml`` (``links.signingKeyEnv``,
default ``GRANTCTL_SIGNING_KEY``) or from the SOPS file ``links.signingKeyFile`` (value
``signing_key``). It never appears in output, messages or reprs.

Example::

    key = load_signing_key(repo)
    issued = issue_link(repo, connection, key=key)
    print(issued.url)                  # https://connect.agency.example/connect/eyJ...
    claims = verify_link(token, key=key, now=datetime.now(UTC))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from grantctl.errors import GrantctlError, LinkError
from grantctl.models import DURATION_PATTERN, Connection
from grantctl.repo import Repo
from grantctl.state.base import StateStore
from grantctl.state.model import Grant, LinkRecord

MIN_KEY_LENGTH = 32
MAX_TOKEN_LENGTH = 2048
LINK_PURPOSE = "link"
LINK_HISTORY_LIMIT = 20
NOGIT = "nogit"
UNCOMMITTED = "uncommitted"
_GIT_TIMEOUT_SECONDS = 10
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_KEY_HINT = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"

Decrypt = Callable[[Path], Mapping[str, Any]]


class TamperedLink(LinkError):
    """The token is malformed or its signature does not match (damaged, edited or forged)."""


class ExpiredLink(LinkError):
    """The token was genuine but its time is up; ``claims`` says which link it was (when known)."""

    def __init__(self, message: str, claims: LinkClaims | None = None) -> None:
        super().__init__(message)
        self.claims = claims


class StaleLink(LinkError):
    """The token was genuine but the manifest has changed since (another scope set)."""


# -- the signing key ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """The secret behind links and OAuth ``state`` values. ``repr`` shows where it came from, never it."""

    secret: bytes = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_LENGTH:
            raise GrantctlError(
                f"the link signing key from {self.source} is too short: use at least {MIN_KEY_LENGTH} "
                f"characters ({_KEY_HINT})"
            )

    def derive(self, purpose: str) -> bytes:
        """A sub-key for one purpose, so tokens signed for one use never verify for another."""
        return hmac.new(self.secret, f"grantctl/{purpose}/v1".encode(), hashlib.sha256).digest()


def load_signing_key(
    repo: Repo, *, environ: Mapping[str, str] | None = None, decrypt: Decrypt | None = None
) -> SigningKey:
    """The signing key: the environment variable first, then the SOPS file; a clear error when neither.

    ``decrypt`` (default: the sops binary wrapper) is injectable for tests.
    """
    environ = os.environ if environ is None else environ
    links = repo.config.links
    from_env = environ.get(links.signing_key_env, "")
    if from_env:
        return SigningKey(from_env.encode("utf-8"), f"environment variable {links.signing_key_env}")
    if links.signing_key_file:
        return _key_from_sops_file(repo, repo.root / links.signing_key_file, decrypt)
    raise GrantctlError(
        f"no link signing key: set the environment variable {links.signing_key_env} ({_KEY_HINT}), "
        "or point links.signingKeyFile in grantctl.yaml at a SOPS file with a `signing_key` value"
    )


def _key_from_sops_file(repo: Repo, path: Path, decrypt: Decrypt | None) -> SigningKey:
    shown = repo.relative(path)
    if not path.is_file():
        raise GrantctlError(
            f"{shown}: links.signingKeyFile names this file but it does not exist; create it with "
            f"`sops encrypt` (a mapping with a `signing_key` value) or set {repo.config.links.signing_key_env}"
        )
    document = (decrypt or _sops_decrypt)(path)
    value = document.get("signing_key")
    if not isinstance(value, str) or not value:
        raise GrantctlError(f"{shown}: expected a non-empty string value `signing_key` in this SOPS file")
    return SigningKey(value.encode("utf-8"), str(shown))


def _sops_decrypt(path: Path) -> Mapping[str, Any]:
    from grantctl.sops.binary import decrypt_file  # deferred: only needed when the key is in a file

    return decrypt_file(path)


# -- compact signed tokens ----------------------------------------------------------------------------


def seal(key: SigningKey, purpose: str, claims: Mapping[str, Any]) -> str:
    """``claims`` as a compact signed token for ``purpose`` (not encrypted: never put a secret in it)."""
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_b64encode(_mac(key, purpose, payload))}"


def unseal(key: SigningKey, purpose: str, token: str) -> dict[str, Any]:
    """The claims of a token sealed for ``purpose``; :class:`TamperedLink` unless the signature matches.

    Expiry is the caller's business; the signature is compared in constant time before anything in
    the payload is parsed.
    """
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TamperedLink("the link is incomplete or damaged")
    payload, signature = token.split(".")
    try:
        given = _b64decode(signature)
    except ValueError:
        raise TamperedLink("the link is incomplete or damaged") from None
    if not hmac.compare_digest(given, _mac(key, purpose, payload)):
        raise TamperedLink("the link's signature does not match: it was changed, cut short or not issued here")
    try:
        claims = json.loads(_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        raise TamperedLink("the link is incomplete or damaged") from None
    if not isinstance(claims, dict):
        raise TamperedLink("the link is incomplete or damaged")
    return claims


def _mac(key: SigningKey, purpose: str, payload: str) -> bytes:
    return hmac.new(key.derive(purpose), payload.encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


# -- links ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkClaims:
    """What a verified link says."""

    connection: str
    scope_digest: str
    commit: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedLink:
    """A freshly issued link and the record to keep in the state's link history.

    ``url`` is a bearer secret until it expires: it is hidden from ``repr`` and never stored.
    """

    url: str = field(repr=False)
    record: LinkRecord

    @property
    def expires_at(self) -> datetime:
        return self.record.expires_at


def scope_digest(scopes: Collection[str]) -> str:
    """SHA-256 (base64url) of the sorted, de-duplicated scopes: order in the manifest does not matter."""
    canonical = "\n".join(sorted(set(scopes))).encode("utf-8")
    return _b64encode(hashlib.sha256(canonical).digest())


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"45s"`` as a positive timedelta; GrantctlError otherwise."""
    if not re.fullmatch(DURATION_PATTERN, text or ""):
        raise GrantctlError(f"{what} {text!r}: expected a number and a unit s, m, h or d (e.g. 7d, 12h)")
    amount, unit = int(text[:-1]), text[-1]
    if amount <= 0:
        raise GrantctlError(f"{what} {text!r}: must be longer than zero")
    return timedelta(**{_DURATION_UNITS[unit]: amount})


def manifest_commit(repo: Repo, name: str) -> str:
    """The commit the manifest of ``name`` is at: ``HEAD``'s id, ``uncommitted`` or ``nogit``.

    ``uncommitted`` when the repo has no commit yet or the manifest differs from ``HEAD``: the link
    then stands for a desired state nobody has reviewed, and the record says so.
    """
    head = _git(repo.root, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None:
        return NOGIT if _git(repo.root, "rev-parse", "--git-dir") is None else UNCOMMITTED
    changes = _git(repo.root, "status", "--porcelain", "--", str(repo.manifest_path(name)))
    return UNCOMMITTED if changes else head


def _git(root: Path, *args: str) -> str | None:
    """``git -C root args`` stripped stdout, or None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def link_url(public_url: str, token: str) -> str:
    """``{publicUrl}/connect/{token}``."""
    return f"{public_url.rstrip('/')}/connect/{token}"


def issue_link(
    repo: Repo,
    connection: Connection,
    *,
    key: SigningKey,
    action: str = "connect",
    ttl: timedelta | None = None,
    now: datetime | None = None,
    commit: str | None = None,
) -> IssuedLink:
    """Sign a link for ``connection``'s current desired scopes.

    ``ttl`` defaults to ``links.ttl`` of ``grantctl.yaml``; ``commit`` to :func:`manifest_commit`.

    >>> issued = issue_link(repo, connection, key=key, ttl=timedelta(days=7))  # doctest: +SKIP
    >>> issued.record.action  # doctest: +SKIP
    'connect'
    """
    now = now or datetime.now(UTC)
    ttl = ttl if ttl is not None else parse_duration(repo.config.links.ttl, what="links.ttl")
    commit = commit if commit is not None else manifest_commit(repo, connection.name)
    expires_at = (now + ttl).replace(microsecond=0)
    claims = {
        "c": connection.name,
        "d": scope_digest(connection.spec.scopes),
        "m": commit,
        "e": int(expires_at.timestamp()),
        # Two links issued in the same second must still differ (a bearer value is never shared).
        "n": secrets.token_urlsafe(9),
    }
    token = seal(key, LINK_PURPOSE, claims)
    record = LinkRecord(
        issued_at=now.replace(microsecond=0),
        action=action,
        scopes=sorted(connection.spec.scopes),
        expires_at=expires_at,
        commit=commit,
    )
    return IssuedLink(url=link_url(repo.config.public_url, token), record=record)


def verify_link(token: str, *, key: SigningKey, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired link; :class:`TamperedLink` or :class:`ExpiredLink` otherwise.

    Whether the link still fits the manifest is :func:`check_link_scopes`' job.
    """
    raw = unseal(key, LINK_PURPOSE, token)
    claims = _link_claims(raw)
    if now >= claims.expires_at:
        raise ExpiredLink(f"the link for {claims.connection} expired on {claims.expires_at:%Y-%m-%d %H:%M} UTC", claims)
    return claims


def _link_claims(raw: Mapping[str, Any]) -> LinkClaims:
    name, digest, commit, expires = raw.get("c"), raw.get("d"), raw.get("m"), raw.get("e")
    if not (isinstance(name, str) and isinstance(digest, str) and isinstance(commit, str)):
        raise TamperedLink("the link is incomplete or damaged")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise TamperedLink("the link is incomplete or damaged")
    return LinkClaims(name, digest, commit, datetime.fromtimestamp(expires, UTC))


def check_link_scopes(claims: LinkClaims, connection: Connection) -> None:
    """:class:`StaleLink` when the manifest now asks for another scope set than the link was issued for."""
    if not hmac.compare_digest(claims.scope_digest, scope_digest(connection.spec.scopes)):
        raise StaleLink(
            f"the link for {connection.name} was issued for a different set of permissions than the ones "
            "the connection needs now; a new link is needed"
        )


# -- link history -------------------------------------------------------------------------------------


def with_link_record(grant: Grant | None, connection: Connection, record: LinkRecord) -> Grant:
    """``grant`` (or a new, not yet connected grant) with ``record`` appended to its link history.

    Only the newest :data:`LINK_HISTORY_LIMIT` records are kept; git history holds the rest.
    """
    if grant is None:
        grant = Grant(connection=connection.name, provider=connection.spec.provider)
    history = [*grant.links, record][-LINK_HISTORY_LIMIT:]
    return grant.model_copy(update={"links": history})


def record_link(store: StateStore, connection: Connection, record: LinkRecord) -> Grant:
    """Append ``record`` to the state's link history under the connection's lock; returns the new grant.

    Tokens are left as they are (``write`` without tokens).
    """
    with store.lock(connection.name):
        grant = with_link_record(store.read_grant(connection.name), connection, record)
        store.write(connection.name, grant)
    return grant


__all__ = [
    "LINK_HISTORY_LIMIT",
    "MIN_KEY_LENGTH",
    "NOGIT",
    "UNCOMMITTED",
    "ExpiredLink",
    "IssuedLink",
    "LinkClaims",
    "SigningKey",
    "StaleLink",
    "TamperedLink",
    "check_link_scopes",
    "issue_link",
    "link_url",
    "load_signing_key",
    "manifest_commit",
    "parse_duration",
    "record_link",
    "scope_digest",
    "seal",
    "unseal",
    "verify_link",
    "with_link_record",
]
