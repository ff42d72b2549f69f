"""The emulator's seed: which apps, organisations and users exist, and which grants are already in place.

A seed is plain data (YAML or Python). Secrets in it (client secrets, seeded refresh tokens) are
``SecretStr`` so they never show up in a repr or a validation message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from grantctl.errors import Location, ManifestError

from ._scopes import scope_problem

_MAX_REDIRECT_URIS = 50  # Xero's per-app limit (provider-facts.md, Limits)
_DAY = 86_400

PositiveInt = Annotated[int, Field(gt=0)]


class SeedError(ManifestError):
    """A seed file cannot be read or is inconsistent; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedApp(_Model):
    """A Xero "Web app": credentials, registered redirect URIs and the day it was created."""

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    redirect_uris: list[str] = Field(min_length=1, max_length=_MAX_REDIRECT_URIS)
    created_on: date
    name: str | None = None

    @field_validator("redirect_uris")
    @classmethod
    def _absolute_without_wildcards(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URL")
            if "*" in uri or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must not contain a wildcard or a fragment")
        return uris

    @property
    def display_name(self) -> str:
        """The name shown on the consent page."""
        return self.name or self.client_id


class SeedOrganisation(_Model):
    """A Xero organisation (a tenant)."""

    tenant_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: Literal["ORGANISATION", "PRACTICE"] = "ORGANISATION"
    country_code: str = "GB"
    base_currency: str = "GBP"
    is_demo_company: bool = False


class SeedUser(_Model):
    """A Xero user; ``no_rights`` lists organisations whose data the user may not read (API -> 403)."""

    id: str = Field(min_length=1)
    email: str = Field(min_length=3)
    given_name: str
    family_name: str
    organisations: list[str] = Field(default_factory=list)
    no_rights: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_rights_within_organisations(self) -> Self:
        stray = sorted(set(self.no_rights) - set(self.organisations))
        if stray:
            raise ValueError(f"no_rights lists organisations the user does not belong to: {stray}")
        return self


class SeedGrant(_Model):
    """A grant that already exists when the emulator starts (as if the user had consented)."""

    client_id: str
    user: str
    tenants: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(min_length=1)
    refresh_token: SecretStr | None = None


class RateLimitSettings(_Model):
    """Xero's limits (developer.xero.com/faq/limits); per tenant means per (app, tenant) pair."""

    enabled: bool = False
    tenant_concurrent: PositiveInt = 5
    tenant_minute: PositiveInt = 60
    tenant_day: PositiveInt = 5_000
    app_minute: PositiveInt = 10_000


class Behaviour(_Model):
    """Lifetimes, and switches for the points provider-facts.md marks UNCONFIRMED."""

    code_lifetime_seconds: PositiveInt = 300
    access_token_lifetime_seconds: PositiveInt = 1_800
    refresh_grace_seconds: PositiveInt = 1_800
    refresh_token_idle_seconds: PositiveInt = 60 * _DAY
    #: True: re-consenting a tenant keeps its old authEventId (so ``?authEventId=<new>`` misses it).
    reconsent_keeps_auth_event_id: bool = False
    #: True: token responses carry a space-separated ``scope`` field (UNCONFIRMED for Xero).
    token_response_includes_scope: bool = False


class Seed(_Model):
    """Everything the emulator starts from; build it in Python or load it with ``from_yaml``.

    >>> from datetime import date
    >>> seed = Seed(
    ...     apps=[SeedApp(client_id="APP", client_secret="s", redirect_uris=["http://localhost:8080/callback"],
    ...                   created_on=date(2026, 11, 20))],
    ...     organisations=[SeedOrganisation(tenant_id="t-1", name="Acme Ltd")],
    ...     users=[SeedUser(id="u-1", email="sam@acme.example", given_name="Sam", family_name="Lee",
    ...                     organisations=["t-1"])],
    ... )
    >>> seed.default_user_id
    'u-1'
    """

    apps: list[SeedApp] = Field(default_factory=list)
    organisations: list[SeedOrganisation] = Field(default_factory=list)
    users: list[SeedUser] = Field(default_factory=list)
    default_user: str | None = None
    grants: list[SeedGrant] = Field(default_factory=list)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    behaviour: Behaviour = Field(default_factory=Behaviour)
    #: ``iss`` of issued tokens; default: the base URL the request came in on.
    issuer: str | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        _check_unique("apps", (app.client_id for app in self.apps))
        _check_unique("organisations", (org.tenant_id for org in self.organisations))
        _check_unique("users", (user.id for user in self.users))
        tenant_ids = {org.tenant_id for org in self.organisations}
        for index, user in enumerate(self.users):
            unknown = sorted(set(user.organisations) - tenant_ids)
            if unknown:
                raise ValueError(f"users[{index}] ({user.id}): unknown organisations {unknown}")
        if self.default_user is not None and self.default_user not in {user.id for user in self.users}:
            raise ValueError(f"default_user {self.default_user!r} is not one of the users")
        self._check_grants()
        return self

    def _check_grants(self) -> None:
        apps = {app.client_id: app for app in self.apps}
        users = {user.id: user for user in self.users}
        seen_tokens: set[str] = set()
        for index, grant in enumerate(self.grants):
            where = f"grants[{index}]"
            app = apps.get(grant.client_id)
            user = users.get(grant.user)
            if app is None:
                raise ValueError(f"{where}: unknown client_id {grant.client_id!r}")
            if user is None:
                raise ValueError(f"{where}: unknown user {grant.user!r}")
            foreign = sorted(set(grant.tenants) - set(user.organisations))
            if foreign:
                raise ValueError(f"{where}: user {user.id!r} does not belong to {foreign}")
            for scope in grant.scopes:
                problem = scope_problem(scope, app.created_on)
                if problem:
                    raise ValueError(f"{where}: {problem}")
            if grant.refresh_token is not None:
                if "offline_access" not in grant.scopes:
                    raise ValueError(f"{where}: a refresh token needs the offline_access scope")
                token = grant.refresh_token.get_secret_value()
                if token in seen_tokens:
                    raise ValueError(f"{where}: refresh_token is used by an earlier grant")
                seen_tokens.add(token)

    @property
    def default_user_id(self) -> str | None:
        """The user who is "signed in" when an authorize request names nobody."""
        if self.default_user is not None:
            return self.default_user
        return self.users[0].id if self.users else None

    @classmethod
    def from_yaml(cls, path: Path | str) -> Seed:
        """Load and check a seed file; raise ``SeedError`` naming the file and the first problems."""
        path = Path(path)
        data = _read_yaml(path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SeedError(Location(path), _summarise(exc)) from None


def _check_unique(what: str, keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{what}: duplicate id {key!r}")
        seen.add(key)


def _read_yaml(path: Path) -> Any:
    # The C loader keeps a 1,000-app seed well under a second.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(Location(path), f"cannot read the seed file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, chosen above
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        location = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        raise SeedError(location, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SeedError(Location(path), "a seed must be a mapping with apps, organisations and users")
    return data


def _summarise(exc: ValidationError, limit: int = 5) -> str:
    # Only locations and messages: pydantic's own str() would echo input values, secrets included.
    errors = exc.errors(include_input=False, include_url=False)
    lines = []
    for error in errors[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "seed"
        lines.append(f"{where}: {error['msg']}")
    more = len(errors) - limit
    if more > 0:
        lines.append(f"... and {more} more")
    return "invalid seed: " + "; ".join(lines)
