"""The HTTP face of the emulator: Xero's paths on a Starlette app, plus ``/_emulator/*`` controls.

Every handler runs on uvicorn's single event loop and does its state changes between awaits, so the
in-memory state needs no locks. Nothing secret is logged or echoed: pages and errors name parameters,
never their values, except values the caller chose and that are not secrets (redirect URI, scope).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import _pages
from ._core import Emulator
from ._faults import FaultConfig, FaultInjector, FaultRule
from ._ratelimit import RateLimiter, Rejected
from ._records import AccessContext, ApiError, AuthorizeError, AuthorizeRequest, OAuthError, ScriptedConsent
from ._scopes import KNOWN_SCOPES
from ._seed import Seed, SeedApp

log = logging.getLogger("grantctl.emulator")

_FORM = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Pages load nothing; no form-action rule, because Chrome applies it to the redirect after Allow.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    **_NO_STORE,
}
_MAX_CLOCK_ADVANCE = 10 * 365 * 86_400


class _ScriptedConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    tenants: list[str] = Field(default_factory=list)
    action: Literal["allow", "deny"] = "allow"
    scopes: list[str] | None = None
    client_id: str | None = None


class _ClockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=_MAX_CLOCK_ADVANCE)


def create_app(seed: Seed, *, clock: Callable[[], float] = time.time) -> Starlette:
    """Build the emulator as an ASGI app. ``clock`` is its time source (``/_emulator/clock`` adds to it).

    ``app.state.emulator`` is the in-memory core; drive it over HTTP while a server runs (it lives on
    the server's event loop), or directly in single-threaded unit tests.

    >>> from grantctl.emulator import EXAMPLE_SEED_PATH, Seed
    >>> from grantctl.emulator.testing import serve_in_thread
    >>> with serve_in_thread(create_app(Seed.from_yaml(EXAMPLE_SEED_PATH))) as base_url:
    ...     base_url.startswith("http://127.0.0.1:")
    True
    """
    handlers = _Handlers(Emulator(seed, clock))
    app = Starlette(routes=handlers.routes())
    app.state.emulator = handlers.core
    app.state.faults = handlers.faults
    return app


class _Handlers:
    def __init__(self, core: Emulator) -> None:
        self.core = core
        self.faults = FaultInjector()
        self.limiter = RateLimiter(core.seed.rate_limits)

    def routes(self) -> list[Route]:
        return [
            Route("/identity/connect/authorize", self.authorize, methods=["GET"]),
            Route("/identity/connect/authorize/consent", self.consent, methods=["POST"]),
            # Xero's token and revocation endpoints live at identity.xero.com/connect/...; serve both
            # spellings so either a host swap or the brief's /identity/... paths work.
            Route("/identity/connect/token", self.token, methods=["POST"]),
            Route("/connect/token", self.token, methods=["POST"]),
            Route("/identity/connect/revocation", self.revocation, methods=["POST"]),
            Route("/connect/revocation", self.revocation, methods=["POST"]),
            Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/connections", self.list_connections, methods=["GET"]),
            Route("/connections/{connection_id}", self.delete_connection, methods=["DELETE"]),
            Route("/api.xro/2.0/Organisation", self.organisation, methods=["GET"]),
            Route("/_emulator/consent", self.control_consent, methods=["POST"]),
            Route("/_emulator/reset", self.control_reset, methods=["POST"]),
            Route("/_emulator/state", self.control_state, methods=["GET"]),
            Route("/_emulator/faults", self.control_faults, methods=["GET", "POST"]),
            Route("/_emulator/clock", self.control_clock, methods=["GET", "POST"]),
        ]

    # ------------------------------------------------------------------ faults and latency

    async def _guard(self, endpoint: str, client_id: str | None) -> Response | None:
        """Apply the configured latency, then an injected failure if a rule matches this call."""
        latency = self.faults.config.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        rule = self.faults.take(endpoint, client_id)
        if rule is None:
            return None
        self.core.counters["faults_injected"] += 1
        log.info("fault injected: endpoint=%s mode=%s client_id=%s", endpoint, rule.mode, client_id)
        return await self._fault_response(rule)

    async def _fault_response(self, rule: FaultRule) -> Response:
        if rule.mode == "timeout":
            await asyncio.sleep(rule.timeout_seconds)
            return Response("Gateway Timeout", status_code=504, media_type="text/plain")
        if rule.mode == "429":
            return self._too_many_requests(Rejected(rule.problem, rule.retry_after))
        status = int(rule.mode)
        text = "Internal Server Error" if status == 500 else "Service Unavailable"
        return Response(text, status_code=status, media_type="text/plain")

    def _too_many_requests(self, rejected: Rejected) -> Response:
        self.core.counters["http_429"] += 1
        headers = {"Retry-After": str(rejected.retry_after), "X-Rate-Limit-Problem": rejected.problem}
        return _problem(ApiError(429, "Too Many Requests", f"Rate limit exceeded: {rejected.problem}"), headers)

    @property
    def _rate_limits_enforced(self) -> bool:
        override = self.faults.config.rate_limits
        return self.core.seed.rate_limits.enabled if override is None else override

    # ------------------------------------------------------------------ authorize and consent

    async def authorize(self, request: Request) -> Response:
        self.core.counters["authorize_requests"] += 1
        fault = await self._guard("authorize", request.query_params.get("client_id"))
        if fault is not None:
            return fault
        params = _multi(request.query_params.multi_items())
        try:
            authorize_request = self.core.validate_authorize(params)
            scripted = self.core.take_scripted_consent(authorize_request.client_id)
            if scripted is not None:
                return self._answer_scripted(authorize_request, scripted)
            return self._consent_page(authorize_request, request.query_params.multi_items())
        except AuthorizeError as exc:
            return _error_page(exc)

    def _answer_scripted(self, request: AuthorizeRequest, scripted: ScriptedConsent) -> Response:
        if not scripted.allow:
            self.core.deny(request)
            return _redirect(request.redirect_uri, {"error": "access_denied", "state": request.state})
        user = self.core.users[scripted.user_id]
        code = self.core.consent(request, user, scripted.tenants, scripted.scopes)
        return _redirect(request.redirect_uri, {"code": code, "state": request.state})

    def _consent_page(self, request: AuthorizeRequest, query: Sequence[tuple[str, str]]) -> Response:
        user = self.core.signed_in_user(request.login_hint)
        organisations = [self.core.organisations[tenant_id] for tenant_id in user.organisations]
        page = _pages.consent_page(
            app=self.core.apps[request.client_id],
            user=user,
            users=self.core.users.values(),
            organisations=organisations,
            scopes=request.scopes,
            request_id=self.core.remember_pending(request),
            authorize_params=query,
        )
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    async def consent(self, request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return _error_page(AuthorizeError("invalid_request", "The consent form was not sent as a form"))
        request_id = (form.get("request") or [""])[0]
        pending = self.core.pending(request_id)
        fault = await self._guard("consent", pending.client_id if pending else None)
        if fault is not None:
            return fault
        pending = self.core.pending(request_id)
        if pending is None:
            return _error_page(
                AuthorizeError("invalid_request", "This authorisation request has expired or was already answered")
            )
        try:
            return self._answer_consent_form(request_id, pending, form)
        except OAuthError:  # a repeated field
            return _error_page(AuthorizeError("invalid_request", "The consent form is malformed"))

    def _answer_consent_form(
        self, request_id: str, pending: AuthorizeRequest, form: Mapping[str, list[str]]
    ) -> Response:
        action = _one(form, "action")
        if action not in ("allow", "deny"):
            return _error_page(AuthorizeError("invalid_request", "Press Allow access or Cancel"))
        user = self.core.users.get(_one(form, "user") or "")
        if user is None:
            return _error_page(AuthorizeError("invalid_request", "Unknown user"))
        try:
            if action == "deny":
                self.core.deny(pending)
                response = _redirect(pending.redirect_uri, {"error": "access_denied", "state": pending.state})
            else:
                code = self.core.consent(pending, user, form.get("tenant", []))
                response = _redirect(pending.redirect_uri, {"code": code, "state": pending.state})
        except AuthorizeError as exc:
            return _error_page(exc)
        self.core.forget_pending(request_id)
        return response

    # ------------------------------------------------------------------ token and revocation

    async def token(self, request: Request) -> Response:
        form = await _read_form(request)
        fault = await self._guard("token", _client_hint(request, form))
        if fault is not None:
            return fault
        if form is None:
            return _oauth_error(OAuthError("invalid_request"))
        app = self._authenticate_client(request, form)
        if app is None:
            self.core.counters["token_error_invalid_client"] += 1
            return _oauth_error(OAuthError("invalid_client", 401))
        issuer = self._issuer(request)
        try:
            grant_type = _one(form, "grant_type")
            if grant_type == "authorization_code":
                tokens = self.core.exchange_code(
                    app,
                    _required(form, "code"),
                    _one(form, "redirect_uri"),
                    _one(form, "code_verifier"),
                    issuer,
                )
            elif grant_type == "refresh_token":
                tokens = self.core.refresh(app, _required(form, "refresh_token"), issuer)
            else:
                self.core.counters["token_error_unsupported_grant_type"] += 1
                return _oauth_error(OAuthError("unsupported_grant_type"))
        except OAuthError as exc:
            return _oauth_error(exc)
        include_scope = self.core.seed.behaviour.token_response_includes_scope
        return JSONResponse(tokens.as_response(include_scope=include_scope), headers=_NO_STORE)

    async def revocation(self, request: Request) -> Response:
        form = await _read_form(request)
        fault = await self._guard("revocation", _client_hint(request, form))
        if fault is not None:
            return fault
        if form is None:
            return _oauth_error(OAuthError("invalid_request"))
        app = self._authenticate_client(request, form)
        if app is None:
            return _oauth_error(OAuthError("invalid_client", 401))
        try:
            self.core.revoke(app, _required(form, "token"))
        except OAuthError as exc:
            return _oauth_error(exc)
        return Response(status_code=200, headers=_NO_STORE)

    def _authenticate_client(self, request: Request, form: Mapping[str, list[str]]) -> SeedApp | None:
        credentials = _client_credentials(request, form)
        if credentials is None:
            return None
        return self.core.authenticate_client(*credentials)

    def _issuer(self, request: Request) -> str:
        if self.core.seed.issuer:
            return self.core.seed.issuer
        return str(request.base_url).rstrip("/")

    async def discovery(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": self._issuer(request),
                "authorization_endpoint": f"{base}/identity/connect/authorize",
                "token_endpoint": f"{base}/connect/token",
                "revocation_endpoint": f"{base}/connect/revocation",
                "scopes_supported": sorted(KNOWN_SCOPES),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["HS256"],
            }
        )

    # ------------------------------------------------------------------ API

    def _bearer(self, request: Request) -> AccessContext | Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        try:
            return self.core.authenticate_access_token(token)
        except ApiError as exc:
            return _problem(exc)

    async def list_connections(self, request: Request) -> Response:
        context = self._bearer(request)
        if isinstance(context, Response):
            return context
        fault = await self._guard("connections", context.client_id)
        if fault is not None:
            return fault
        try:
            body = self.core.connections(context, request.query_params.get("authEventId"))
        except ApiError as exc:
            return _problem(exc)
        return JSONResponse(body)

    async def delete_connection(self, request: Request) -> Response:
        context = self._bearer(request)
        if isinstance(context, Response):
            return context
        fault = await self._guard("connections", context.client_id)
        if fault is not None:
            return fault
        try:
            deleted = self.core.delete_connection(context, request.path_params["connection_id"])
        except ApiError as exc:
            return _problem(exc)
        if not deleted:
            return _problem(ApiError(404, "Not Found", "The connection was not found"))
        return Response(status_code=204)

    async def organisation(self, request: Request) -> Response:
        context = self._bearer(request)
        if isinstance(context, Response):
            return context
        tenant_id = request.headers.get("xero-tenant-id", "").strip()
        if not tenant_id:
            self.core.counters["api_calls"] += 1
            return _problem(ApiError(403, "Forbidden", "AuthenticationUnsuccessful"))
        admission = self.limiter.acquire(
            context.client_id, tenant_id, self.core.now(), enforce=self._rate_limits_enforced
        )
        if isinstance(admission, Rejected):
            return self._too_many_requests(admission)
        try:
            # Latency is served while the call counts as in progress: that is what trips the
            # concurrent limit when a client fires too many calls at once.
            fault = await self._guard("organisation", context.client_id)
            if fault is not None:
                return fault
            body = self.core.organisation(context, tenant_id)
        except ApiError as exc:
            return _problem(exc)
        finally:
            self.limiter.release(context.client_id, tenant_id)
        return JSONResponse(body, headers=admission.headers)

    # ------------------------------------------------------------------ control plane

    async def control_consent(self, request: Request) -> Response:
        try:
            body = _ScriptedConsentIn.model_validate_json(await request.body())
            scripted = ScriptedConsent(
                user_id=body.user or self.core.seed.default_user_id or "",
                tenants=tuple(body.tenants),
                allow=body.action == "allow",
                scopes=frozenset(body.scopes) if body.scopes is not None else None,
                client_id=body.client_id,
            )
            queued = self.core.queue_scripted_consent(scripted)
        except (ValidationError, ValueError) as exc:
            return _control_error(exc)
        return JSONResponse({"queued": queued})

    async def control_reset(self, request: Request) -> Response:
        self.core.reset()
        self.faults.replace(FaultConfig())
        self.limiter = RateLimiter(self.core.seed.rate_limits)
        return JSONResponse({"reset": True})

    async def control_state(self, request: Request) -> Response:
        state = self.core.describe(request.query_params.get("client_id"))
        state["faults"] = self.faults.describe()
        state["rate_limits_enforced"] = self._rate_limits_enforced
        return JSONResponse(state)

    async def control_faults(self, request: Request) -> Response:
        if request.method == "POST":
            raw = await request.body()
            try:
                config = FaultConfig.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                return _control_error(exc)
            self.faults.replace(config)
        return JSONResponse(self.faults.describe())

    async def control_clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.core.advance_clock(_ClockIn.model_validate_json(await request.body()).seconds)
            except ValidationError as exc:
                return _control_error(exc)
        return JSONResponse({"now": self.core.now(), "offset": self.core.clock_offset})


# ---------------------------------------------------------------------- helpers


def _multi(items: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in items:
        values.setdefault(name, []).append(value)
    return values


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        # RFC 6749 section 3.2: request parameters must not be repeated.
        raise OAuthError("invalid_request")
    return values[0]


def _required(form: Mapping[str, list[str]], name: str) -> str:
    value = _one(form, name)
    if not value:
        raise OAuthError("invalid_request")
    return value


async def _read_form(request: Request) -> dict[str, list[str]] | None:
    # Parsed by hand: Starlette's form parser needs python-multipart, which this package does not pull in.
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != _FORM:
        return None
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _multi(parse_qsl(text, keep_blank_values=True))


def _client_credentials(request: Request, form: Mapping[str, list[str]]) -> tuple[str, str] | None:
    """(client_id, client_secret) from HTTP Basic or the form body; ``None`` when missing or conflicting."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII text
            return None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return None
        # Taken as sent, without RFC 6749's form-decoding: what Xero's SDKs (requests, httpx) send.
        in_form = form.get("client_id")
        if in_form and in_form != [client_id]:
            return None
        return client_id, secret
    client_ids, secrets_ = form.get("client_id", []), form.get("client_secret", [])
    if len(client_ids) != 1 or len(secrets_) != 1:
        return None
    return client_ids[0], secrets_[0]


def _client_hint(request: Request, form: Mapping[str, list[str]] | None) -> str | None:
    """Which app a token-endpoint call claims to come from, before it is authenticated (fault targeting)."""
    credentials = _client_credentials(request, form or {})
    return credentials[0] if credentials else None


def _redirect(redirect_uri: str, params: Mapping[str, str | None]) -> Response:
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((name, value) for name, value in params.items() if value is not None)
    location = urlunsplit(parts._replace(query=urlencode(query)))
    return Response(status_code=302, headers={"Location": location, **_NO_STORE})


def _error_page(exc: AuthorizeError) -> Response:
    log.info("authorize refused: error=%s", exc.error)
    return HTMLResponse(_pages.error_page(exc.error, exc.description), status_code=400, headers=_PAGE_HEADERS)


def _oauth_error(exc: OAuthError) -> Response:
    return JSONResponse({"error": exc.error}, status_code=exc.status, headers=_NO_STORE)


def _problem(exc: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": exc.title,
        "Status": exc.status,
        "Detail": exc.detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    all_headers = dict(headers or {})
    if exc.www_authenticate:
        all_headers["WWW-Authenticate"] = exc.www_authenticate
    return JSONResponse(body, status_code=exc.status, headers=all_headers)


def _control_error(exc: Exception) -> Response:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
    else:
        detail = str(exc)
    return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=400)
