"""The consent flow shared by ``grantctl serve`` and ``grantctl connect``: link -> provider -> callback -> state.

:class:`ConsentFlow` holds no HTTP framework code. ``open_link`` checks a link and prepares the trip to
the provider; ``finish`` handles what the provider sends back and returns a :class:`FlowResult` that the
pages (and ``grantctl connect``'s output) render. Every way a flow can end is one ``kind``:

================== ====== ==========================================================================
kind               status what happened
================== ====== ==========================================================================
connected          200    the right organisation; grant and tokens stored
wrong-organization 409    no right organisation among those ticked (or two with the expected name);
                          every ticked one disconnected, nothing stored
denied             200    the user pressed Cancel; nothing changed
provider-error     502    the provider refused or failed; nothing stored
other-browser      400    the state is late, or the binding cookie is missing or different
replayed           409    this state was used already
invalid            400    no state, or a forged / damaged one; or no code
unknown-connection 404    the link or state names a connection that is not in the repo
setup-error        500    our side is misconfigured (manifest, credentials file, provider settings)
storage-error      503    the grant could not be saved
link-invalid       400    ``/connect``: forged or damaged link
link-expired       400    ``/connect``: genuine link past its expiry
link-stale         400    ``/connect``: genuine link for a scope set the manifest no longer wants
================== ====== ==========================================================================
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from grantctl.catalogue import missing_scopes
from grantctl.errors import GrantctlError, ProviderError
from grantctl.grants import TenantChoice, choose_tenants, grant_after_consent, tokens_for_state
from grantctl.links import (
    ExpiredLink,
    SigningKey,
    StaleLink,
    TamperedLink,
    check_link_scopes,
    issue_link,
    scope_digest,
    verify_link,
)
from grantctl.manifest import load_connection_fast
from grantctl.models import NAME_PATTERN, Connection
from grantctl.providers import ClientCredentials, Provider, TokenSet, get_provider
from grantctl.providers import Tenant as ProviderTenant
from grantctl.repo import CONFIG_FILE, Repo
from grantctl.server._oauthstate import (
    FlowState,
    IssuedState,
    NonceBook,
    StateExpired,
    browser_matches,
    issue_state,
    open_state,
    pkce_challenge,
    pkce_verifier,
)
from grantctl.state.base import StateStore
from grantctl.state.model import Grant

log = logging.getLogger("grantctl.server")

Clock = Callable[[], datetime]
Decrypt = Callable[[Path], Mapping[str, Any]]
Kind = Literal[
    "connected",
    "wrong-organization",
    "denied",
    "provider-error",
    "other-browser",
    "replayed",
    "invalid",
    "unknown-connection",
    "setup-error",
    "storage-error",
    "link-invalid",
    "link-expired",
    "link-stale",
]
STATUS: Mapping[Kind, int] = {
    "connected": 200,
    "wrong-organization": 409,
    "denied": 200,
    "provider-error": 502,
    "other-browser": 400,
    "replayed": 409,
    "invalid": 400,
    "unknown-connection": 404,
    "setup-error": 500,
    "storage-error": 503,
    "link-invalid": 400,
    "link-expired": 400,
    "link-stale": 400,
}
# OAuth error codes are short identifiers; anything else a redirect carries is not echoed.
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class FlowResult:
    """How one visit to ``/connect`` or ``/callback`` ended; everything a page needs, and no secret.

    ``detail`` is a safe technical explanation (provider errors are shown on the page; set-up and storage
    problems only reach the log and ``grantctl connect``'s output, as they name our files).
    ``fresh_link`` is a new authorization link (a bearer secret: hidden from ``repr``) offered when the
    client should simply try again; it expires with the link the client arrived with. ``retry_hint`` is
    the text used instead where no link can be offered (``grantctl connect``).
    """

    kind: Kind
    connection: str | None = None
    provider: str | None = None
    organisation: str | None = None
    owner: str | None = None
    tenant: str | None = None
    granted: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    ticked: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    not_released: tuple[str, ...] = ()
    ambiguous: bool = False
    detail: str = ""
    expired_at: datetime | None = None
    fresh_link: str | None = field(default=None, repr=False)
    retry_hint: str | None = None

    @property
    def status(self) -> int:
        """The HTTP status of the page for this result."""
        return STATUS[self.kind]

    @property
    def ok(self) -> bool:
        return self.kind == "connected"


@dataclass(frozen=True)
class Redirect:
    """Send the browser to the provider; set the binding cookie first when there is one."""

    authorize_url: str = field(repr=False)
    connection: str
    cookie_name: str
    binding_secret: str | None = field(repr=False)


@dataclass(frozen=True)
class _Visit:
    """A callback whose state checked out: the connection it is for and the verified state."""

    connection: Connection
    state: FlowState


class ConsentFlow:
    """The way from a link (or a local `grantctl connect`) to a stored grant, for one repo.

    ``bind_browser``: the callback must come with the cookie set at ``/connect`` (the server). Off for
    ``grantctl connect``, where the engineer's terminal prints the authorize URL and the state is signed
    with a key that lives only as long as that one command.
    ``offer_links``: pages that ask the client to try again carry a fresh link (the server).
    """

    def __init__(
        self,
        repo: Repo,
        *,
        key: SigningKey,
        http: httpx.AsyncClient,
        store: StateStore,
        redirect_uri: str,
        clock: Clock,
        bind_browser: bool = True,
        offer_links: bool = True,
        retry_hint: str | None = None,
        decrypt: Decrypt | None = None,
    ) -> None:
        self.repo = repo
        self.key = key
        self.http = http
        self.store = store
        self.redirect_uri = redirect_uri
        self.clock = clock
        self.bind_browser = bind_browser
        self.offer_links = offer_links
        self.retry_hint = retry_hint
        self._decrypt = decrypt or _sops_decrypt
        self.nonces = NonceBook()

    # -- /connect/{token} ------------------------------------------------------------------------------

    async def open_link(self, token: str) -> Redirect | FlowResult:
        """Check a link and prepare the redirect to the provider, or say why not."""
        try:
            claims = verify_link(token, key=self.key, now=self.clock())
        except ExpiredLink as exc:
            return self._expired_link(exc)
        except TamperedLink:
            log.info("link refused: damaged or forged")
            return FlowResult("link-invalid")
        connection = self._current_manifest(claims.connection)
        if isinstance(connection, FlowResult):
            return connection
        try:
            check_link_scopes(claims, connection)
        except StaleLink:
            log.info("link refused: connection=%s outcome=link-stale", connection.name)
            return self._about(connection, "link-stale")
        return await self._redirect_for(connection, claims.expires_at)

    def _expired_link(self, exc: ExpiredLink) -> FlowResult:
        claims = exc.claims
        if claims is None:
            return FlowResult("link-expired")
        log.info("link refused: connection=%s outcome=link-expired", claims.connection)
        connection = self._current_manifest(claims.connection)
        if isinstance(connection, FlowResult):
            return FlowResult("link-expired", connection=claims.connection, expired_at=claims.expires_at)
        return self._about(connection, "link-expired", expired_at=claims.expires_at)

    async def _redirect_for(self, connection: Connection, link_expires_at: datetime) -> Redirect | FlowResult:
        try:
            redirect = await self.begin(connection, link_expires_at=link_expires_at)
        except GrantctlError as exc:
            return self._setup_error(connection, exc)
        log.info("link opened: connection=%s", connection.name)
        return redirect

    async def begin(self, connection: Connection, *, link_expires_at: datetime | None = None) -> Redirect:
        """A new state and the provider's authorize URL for ``connection``'s desired scopes.

        ``link_expires_at`` is the expiry of the link the client arrived with: a fresh link offered at
        the end of this consent expires no later. Raises GrantctlError when the provider settings or the
        credentials file are unusable.
        """
        provider = self._provider(connection)
        creds = await self._credentials(connection)
        issued = issue_state(
            self.key,
            connection=connection.name,
            scope_digest=scope_digest(connection.spec.scopes),
            now=self.clock(),
            bind_browser=self.bind_browser,
            link_expires_at=link_expires_at,
        )
        url = provider.authorize_url(
            creds,
            redirect_uri=self.redirect_uri,
            scopes=connection.spec.scopes,
            state=issued.value,
            code_challenge=self._challenge(provider, issued),
        )
        return Redirect(url, connection.name, issued.state.cookie_name, issued.binding_secret)

    def _challenge(self, provider: Provider, issued: IssuedState) -> str | None:
        if not provider.pkce:
            return None
        return pkce_challenge(pkce_verifier(self.key, issued.state.nonce))

    # -- /callback -------------------------------------------------------------------------------------

    async def finish(self, params: Mapping[str, str], cookies: Mapping[str, str]) -> FlowResult:
        """Handle the provider's redirect back: check it, exchange the code, keep the right tenant."""
        visit = self._visit(params, cookies)
        if isinstance(visit, FlowResult):
            log.info("callback refused: connection=%s outcome=%s", visit.connection or "?", visit.kind)
            return visit
        result = await self._answer(visit, params)
        level = logging.INFO if result.kind in ("connected", "denied", "wrong-organization") else logging.WARNING
        log.log(level, "callback: connection=%s outcome=%s", visit.connection.name, result.kind)
        return result

    def _visit(self, params: Mapping[str, str], cookies: Mapping[str, str]) -> _Visit | FlowResult:
        """The verified state of this callback, or the result that refuses it."""
        now = self.clock()
        try:
            state = open_state(self.key, params.get("state", ""), now=now)
        except StateExpired:
            return FlowResult("other-browser", retry_hint=self.retry_hint)
        except TamperedLink:
            return FlowResult("invalid")
        connection = self._current_manifest(state.connection)
        if isinstance(connection, FlowResult):
            return connection
        if self.bind_browser and not browser_matches(state, cookies.get(state.cookie_name)):
            return self._about(connection, "other-browser")
        if not self.nonces.use(state, now=now):
            return self._about(connection, "replayed")
        return _Visit(connection, state)

    async def _answer(self, visit: _Visit, params: Mapping[str, str]) -> FlowResult:
        connection = visit.connection
        error = params.get("error")
        if error == "access_denied":
            return await self._with_fresh_link(self._about(connection, "denied"), visit)
        if error is not None:
            shown = error if _OAUTH_ERROR.fullmatch(error) else "an error"
            detail = f"{connection.spec.provider} answered with {shown} instead of a consent"
            return await self._with_fresh_link(self._about(connection, "provider-error", detail=detail), visit)
        code = params.get("code")
        if not code:
            return self._about(connection, "invalid")
        return await self._complete(visit, code)

    async def _complete(self, visit: _Visit, code: str) -> FlowResult:
        connection = visit.connection
        try:
            provider = self._provider(connection)
            creds = await self._credentials(connection)
        except GrantctlError as exc:
            return self._setup_error(connection, exc)
        try:
            tokens = await provider.exchange_code(
                self.http,
                creds,
                code=code,
                redirect_uri=self.redirect_uri,
                code_verifier=pkce_verifier(self.key, visit.state.nonce) if provider.pkce else None,
            )
            tenants = await provider.tenants_of_authorization(self.http, tokens)
        except ProviderError as exc:
            log.warning("callback: connection=%s provider failed: %s", connection.name, exc)
            return await self._with_fresh_link(self._about(connection, "provider-error", detail=str(exc)), visit)
        return await self._settle(visit, provider, creds, tokens, tenants)

    async def _settle(
        self,
        visit: _Visit,
        provider: Provider,
        creds: ClientCredentials,
        tokens: TokenSet,
        tenants: list[ProviderTenant],
    ) -> FlowResult:
        """Let go of every tenant that is not the right one, then store the right one (if any)."""
        connection = visit.connection
        choice = choose_tenants(connection.spec.organization, tenants, provider=connection.spec.provider)
        released, failed = await self._release(provider, creds, tokens, choice)
        ticked = tuple(t.name for t in tenants)
        if failed:
            detail = f"could not remove access to: {', '.join(failed)}"
            result = self._about(
                connection, "provider-error", ticked=ticked, released=released, not_released=failed, detail=detail
            )
            return await self._with_fresh_link(result, visit)
        if choice.keep is None:
            result = self._about(
                connection, "wrong-organization", ticked=ticked, released=released, ambiguous=choice.ambiguous
            )
            return await self._with_fresh_link(result, visit)
        try:
            grant = await asyncio.to_thread(self._store, connection, tokens, choice.keep)
        except GrantctlError as exc:
            log.error("callback: connection=%s could not store the grant: %s", connection.name, exc)
            result = self._about(connection, "storage-error", detail=str(exc))
            return await self._with_fresh_link(result, visit)
        return self._connected(connection, grant, ticked=ticked, released=released)

    async def _release(
        self, provider: Provider, creds: ClientCredentials, tokens: TokenSet, choice: TenantChoice
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Disconnect ``choice.release``; returns the names released and the names that could not be."""
        if not choice.release:
            return (), ()
        if not provider.supports_disconnect:
            return await self._revoke_instead(provider, creds, tokens, choice)
        released, failed = [], []
        for tenant in choice.release:
            try:
                await provider.disconnect(self.http, tokens, tenant)
                released.append(tenant.name)
            except ProviderError as exc:
                log.warning("callback: could not disconnect a tenant: %s", exc)
                failed.append(tenant.name)
        return tuple(released), tuple(failed)

    async def _revoke_instead(
        self, provider: Provider, creds: ClientCredentials, tokens: TokenSet, choice: TenantChoice
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        # Providers whose grant is one account (Pipedrive) cannot drop a single tenant; when the whole
        # grant is unwanted, revoking it is the same thing.
        names = tuple(t.name for t in choice.release)
        if choice.keep is not None or tokens.refresh_token is None:
            return (), names
        try:
            await provider.revoke(self.http, creds, tokens.refresh_token)
        except ProviderError as exc:
            log.warning("callback: could not revoke the unwanted grant: %s", exc)
            return (), names
        return names, ()

    def _store(self, connection: Connection, tokens: TokenSet, tenant: ProviderTenant) -> Grant:
        """Write grant and tokens under the connection's lock (runs in a worker thread)."""
        with self.store.lock(connection.name):
            previous = self.store.read_grant(connection.name)
            grant = grant_after_consent(connection, tokens, tenant, previous=previous, now=self.clock())
            self.store.write(connection.name, grant, tokens_for_state(tokens))
        return grant

    def _connected(
        self, connection: Connection, grant: Grant, *, ticked: tuple[str, ...], released: tuple[str, ...]
    ) -> FlowResult:
        missing = missing_scopes(connection.spec.provider, grant.granted_scopes, connection.spec.scopes)
        # The manifest's order reads best (it is how the access was asked for); extras go last.
        wanted = {scope: index for index, scope in enumerate(connection.spec.scopes)}
        granted = sorted(grant.granted_scopes, key=lambda scope: (wanted.get(scope, len(wanted)), scope))
        return self._about(
            connection,
            "connected",
            tenant=grant.tenant.name if grant.tenant else None,
            granted=tuple(granted),
            missing=tuple(missing),
            ticked=ticked,
            released=released,
        )

    # -- helpers ---------------------------------------------------------------------------------------

    def _about(self, connection: Connection, kind: Kind, **details: Any) -> FlowResult:
        return FlowResult(
            kind,
            connection=connection.name,
            provider=connection.spec.provider,
            organisation=connection.spec.organization.name,
            owner=connection.metadata.owner,
            retry_hint=self.retry_hint,
            **details,
        )

    def _setup_error(self, connection: Connection, exc: GrantctlError) -> FlowResult:
        log.error("connection=%s set-up problem: %s", connection.name, exc)
        return self._about(connection, "setup-error", detail=str(exc))

    async def _with_fresh_link(self, result: FlowResult, visit: _Visit) -> FlowResult:
        """``result`` with a new link for the same connection, when this flow offers links.

        The new link expires when the one the client arrived with does: otherwise whoever holds a link
        could renew it forever by sending themselves a made-up ``error=access_denied``. No link is
        offered once that one has expired (or when the consent did not start at a link).
        """
        link_expires_at = visit.state.link_expires_at
        now = self.clock()
        if not self.offer_links or link_expires_at is None or link_expires_at <= now:
            return result
        connection = visit.connection
        try:
            issued = await asyncio.to_thread(
                issue_link, self.repo, connection, key=self.key, now=now, ttl=link_expires_at - now
            )
        except GrantctlError as exc:
            log.error("connection=%s could not issue a fresh link: %s", connection.name, exc)
            return result
        return replace(result, fresh_link=issued.url)

    def _current_manifest(self, name: str) -> Connection | FlowResult:
        """The manifest of ``name`` as it is now; an unknown-connection or setup-error result otherwise."""
        if not re.fullmatch(NAME_PATTERN, name):
            return FlowResult("invalid")
        path = self.repo.manifest_path(name)
        if not path.is_file():
            return FlowResult("unknown-connection", connection=name)
        try:
            return load_connection_fast(path)
        except GrantctlError as exc:
            log.error("connection=%s manifest cannot be read: %s", name, exc)
            return FlowResult("setup-error", connection=name)

    def _provider(self, connection: Connection) -> Provider:
        return provider_for(self.repo, connection.spec.provider)

    async def _credentials(self, connection: Connection) -> ClientCredentials:
        path = self.repo.credentials_path(connection)
        return await asyncio.to_thread(load_client_credentials, path, self._decrypt, self.repo.relative(path))


def provider_for(repo: Repo, name: str) -> Provider:
    """The provider ``name`` with the overrides of ``grantctl.yaml`` applied."""
    overrides = {str(key): value for key, value in repo.config.providers.items()}.get(name)
    mapping = overrides.model_dump(by_alias=True, exclude_none=True) if overrides is not None else {}
    return get_provider(name, mapping, source=repo.root / CONFIG_FILE)


def load_client_credentials(path: Path, decrypt: Decrypt, shown: Path | str) -> ClientCredentials:
    """The app credentials from a connection's SOPS file; GrantctlError naming the file when unusable."""
    if not path.is_file():
        raise GrantctlError(
            f"{shown}: the credentials file does not exist; restore it from git, or create it with "
            "`sops encrypt` (a mapping with the app's client_id and client_secret)"
        )
    document = decrypt(path)
    client_id, client_secret = document.get("client_id"), document.get("client_secret")
    if not isinstance(client_id, str) or not client_id or not isinstance(client_secret, str) or not client_secret:
        raise GrantctlError(
            f"{shown}: expected non-empty `client_id` and `client_secret` values; add them with `sops edit {shown}`"
        )
    return ClientCredentials(client_id=client_id, client_secret=client_secret)


def _sops_decrypt(path: Path) -> Mapping[str, Any]:
    from grantctl.sops.binary import decrypt_file  # deferred: the sops layer is only needed at callback time

    return decrypt_file(path)
