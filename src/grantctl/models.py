"""Desired state: the connection manifest and the repository config, as pydantic models.

These models are the single source of the JSON Schemas in ``schemas/`` (see :mod:`grantctl.schema`).
They describe shape and simple value rules; rules that need context (file name, other files, the
scope catalogue, today's date) live in :mod:`grantctl.manifest`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

API_VERSION = "grantctl/v1"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DURATION_PATTERN = r"^[0-9]+[smhd]$"

Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Scope = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\-/]+$", max_length=120)]
ProviderName = Literal["xero", "hubspot", "pipedrive"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Model):
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] = Field(
        description="Connection name: a lowercase slug equal to the file name without .yaml."
    )
    owner: Email = Field(description="Who inside our company answers for this connection.")
    labels: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,63}$")], str] = Field(
        default_factory=dict, description="Free-form labels for filtering and reports."
    )


# HubSpot names a tenant (a hub) by its domain, not by the company's name, so an unpinned HubSpot
# connection cannot be checked by name: any tenant is accepted and plan suggests pinning its id.
TENANT_NAMES_ARE_NOT_ORGANISATION_NAMES = frozenset({"hubspot"})


class Organization(_Model):
    name: Text = Field(description="The organisation the client must pick at consent.")
    tenant_id: str | None = Field(
        default=None,
        alias="tenantId",
        description="Provider tenant id, pinned after the first connection (plan suggests it).",
    )

    def accepts(self, tenant_id: str, tenant_name: str, *, provider: str) -> bool:
        """Whether a granted tenant is this organisation: the pinned id decides; unpinned, the name
        (ignoring case and runs of whitespace), where the provider names tenants after organisations.

        >>> Organization(name="Acme Ltd").accepts("t-1", "ACME  ltd", provider="xero")
        True
        """
        if self.tenant_id is not None:
            return tenant_id == self.tenant_id
        if provider in TENANT_NAMES_ARE_NOT_ORGANISATION_NAMES:
            return True
        return _comparable(tenant_name) == _comparable(self.name)


def _comparable(name: str) -> str:
    return " ".join(name.split()).casefold()


class Contact(_Model):
    name: Text = Field(description="Who receives the authorization links.")
    email: Email


class App(_Model):
    credentials: Annotated[str, StringConstraints(pattern=r"^[^/\\].*\.secrets\.yaml$")] = Field(
        description="SOPS-encrypted file with client_id and client_secret, relative to the manifest."
    )
    created_on: date | None = Field(
        default=None,
        alias="createdOn",
        description="When the client created the app; decides broad vs granular scopes for Xero.",
    )


class Spec(_Model):
    provider: ProviderName
    organization: Organization
    contact: Contact
    app: App
    scopes: list[Scope] = Field(min_length=1, description="Scopes the connection needs.")

    @field_validator("scopes")
    @classmethod
    def _no_duplicates(cls, scopes: list[str]) -> list[str]:
        seen: set[str] = set()
        for scope in scopes:
            if scope in seen:
                raise ValueError(f"scope {scope!r} is listed twice; remove one")
            seen.add(scope)
        return scopes


class Connection(_Model):
    """One client connection: ``connections/<name>.yaml``."""

    api_version: Literal["grantctl/v1"] = Field(alias="apiVersion")
    kind: Literal["Connection"]
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name


class FilesBackend(_Model):
    backend: Literal["files"] = "files"
    path: str = Field(default="state", description="Directory of the state files, relative to the repo.")


class PostgresBackend(_Model):
    backend: Literal["postgres"]
    dsn_env: str = Field(
        default="GRANTCTL_POSTGRES_DSN",
        alias="dsnEnv",
        description="Environment variable that holds the PostgreSQL connection string (never the file).",
    )


class ProviderOverrides(_Model):
    authorize_url: str | None = Field(default=None, alias="authorizeUrl")
    token_url: str | None = Field(default=None, alias="tokenUrl")
    revocation_url: str | None = Field(default=None, alias="revocationUrl")
    api_url: str | None = Field(default=None, alias="apiUrl")
    pkce: bool | None = Field(
        default=None, description="Send PKCE (S256) at authorize; off by default for Xero web apps."
    )
    timeout_seconds: float | None = Field(
        default=None, alias="timeoutSeconds", gt=0, le=300, description="Timeout of each call to this provider."
    )

    @field_validator("authorize_url", "token_url", "revocation_url", "api_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class Links(_Model):
    ttl: Annotated[str, StringConstraints(pattern=DURATION_PATTERN)] = Field(
        default="7d", description="How long an authorization link stays valid (e.g. 7d, 12h)."
    )
    signing_key_env: str = Field(default="GRANTCTL_SIGNING_KEY", alias="signingKeyEnv")
    signing_key_file: str | None = Field(
        default=None, alias="signingKeyFile", description="SOPS file with a `signing_key` value."
    )


class Refresh(_Model):
    warn_after_days: int = Field(default=45, ge=1, le=59, alias="warnAfterDays")
    expire_after_days: int = Field(default=60, ge=1, alias="expireAfterDays")


class Config(_Model):
    """Repository settings: ``grantctl.yaml``."""

    api_version: Literal["grantctl/v1"] = Field(alias="apiVersion")
    kind: Literal["Config"]
    public_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = Field(
        alias="publicUrl",
        description="Where `grantctl serve` is reachable; links and the redirect URI use it.",
    )
    state: FilesBackend | PostgresBackend = Field(default_factory=FilesBackend, discriminator="backend")
    links: Links = Field(default_factory=Links)
    refresh: Refresh = Field(default_factory=Refresh)
    providers: dict[ProviderName, ProviderOverrides] = Field(default_factory=dict)

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/callback"
