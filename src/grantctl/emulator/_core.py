"""The emulated Xero, without HTTP: grants, connections, codes and tokens in memory.

Everything is a dict lookup so a handler stays O(1). The HTTP layer (``_app.py``) runs every call on one
event loop and never awaits in the middle of a method here, so no locks are needed.

Decisions where Xero's behaviour is not documented (provider-facts.md) are marked DECISION.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from . import _jwt
from ._records import (
    AccessContext,
    AccessTokenRecord,
    ApiError,
    AuthorizeError,
    AuthorizeRequest,
    CodeRecord,
    Connection,
    Grant,
    GrantKey,
    OAuthError,
    PendingConsent,
    RefreshTokenRecord,
    ScriptedConsent,
    Session,
    TokenSet,
    xero_timestamp,
)
from ._scopes import KNOWN_SCOPES, ORGANISATION_SCOPES, scope_problem
from ._seed import Seed, SeedApp, SeedOrganisation, SeedUser

log = logging.getLogger("grantctl.emulator")

V = TypeVar("V")

_PENDING_LIMIT = 10_000  # consent pages waiting for an answer; the oldest are forgotten first
_PENDING_LIFETIME = 3_600.0


def _authentication_failed() -> ApiError:
    return ApiError(401, "Unauthorized", "AuthenticationUnsuccessful", 'Bearer error="invalid_token"')


def _forbidden() -> ApiError:
    # Xero answers the same for a missing, wrong, disconnected or no-longer-permitted tenant
    # (developer.xero.com/documentation/oauth2/troubleshooting, "Authentication Unsuccessful").
    return ApiError(403, "Forbidden", "AuthenticationUnsuccessful")


class Emulator:
    """The state of one emulated Xero. ``now()`` is the injected clock plus any advance."""

    #: Dead codes and tokens are swept after this many new ones.
    SWEEP_EVERY = 10_000

    def __init__(self, seed: Seed, clock: Callable[[], float], *, signing_key: bytes | None = None) -> None:
        self.seed = seed
        self._clock = clock
        self._key = signing_key or secrets.token_bytes(32)
        self.apps: dict[str, SeedApp] = {app.client_id: app for app in seed.apps}
        self.users: dict[str, SeedUser] = {user.id: user for user in seed.users}
        self._users_by_email = {user.email.lower(): user for user in seed.users}
        self.organisations: dict[str, SeedOrganisation] = {org.tenant_id: org for org in seed.organisations}
        self.reset()

    # ------------------------------------------------------------------ lifecycle and clock

    def reset(self) -> None:
        """Forget everything that happened; start again from the seed (seeded grants included)."""
        self.clock_offset = 0.0
        self.counters: Counter[str] = Counter()
        self.grants: dict[GrantKey, Grant] = {}
        self._codes: dict[str, CodeRecord] = {}
        self._refresh_tokens: dict[str, RefreshTokenRecord] = {}
        self._access_tokens: dict[str, AccessTokenRecord] = {}
        self._pending: OrderedDict[str, PendingConsent] = OrderedDict()
        self._scripted: deque[ScriptedConsent] = deque()
        self._writes_since_sweep = 0
        for seeded in self.seed.grants:
            self._load_seeded_grant(seeded.client_id, seeded.user, seeded.tenants, seeded.scopes)
            if seeded.refresh_token is not None:
                grant = self.grants[(seeded.user, seeded.client_id)]
                self._refresh_tokens[seeded.refresh_token.get_secret_value()] = RefreshTokenRecord(
                    grant.key, self.now(), self._new_session(), grant.generation
                )

    def now(self) -> float:
        """The emulator's time (seconds since the epoch)."""
        return self._clock() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's time forward (codes and tokens expire without sleeping)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.clock_offset += seconds
        return self.now()

    def _load_seeded_grant(self, client_id: str, user_id: str, tenants: Sequence[str], scopes: Iterable[str]) -> None:
        grant = self._grant((user_id, client_id))
        grant.scopes.update(scopes)
        auth_event_id = str(uuid.uuid4())
        now = self.now()
        for tenant_id in tenants:
            grant.connections[tenant_id] = Connection(str(uuid.uuid4()), tenant_id, auth_event_id, now, now)

    def _grant(self, key: GrantKey) -> Grant:
        grant = self.grants.get(key)
        if grant is None:
            grant = self.grants[key] = Grant(user_id=key[0], client_id=key[1])
        return grant

    def _new_session(self) -> Session:
        return Session(str(uuid.uuid4()), self.now(), str(uuid.uuid4()))

    # ------------------------------------------------------------------ authorize and consent

    def validate_authorize(self, params: Mapping[str, Sequence[str]]) -> AuthorizeRequest:
        """Check an authorize request the way Xero does before it shows anything but an error page."""
        single = _single_values(params)
        app = self.apps.get(single.get("client_id") or "")
        if app is None:
            raise AuthorizeError("unauthorized_client", "Unknown client or client not enabled")
        redirect_uri = single.get("redirect_uri") or ""
        if redirect_uri not in app.redirect_uris:
            raise AuthorizeError("unauthorized_client", f"Invalid redirect_uri: {redirect_uri}")
        if single.get("response_type") != "code":
            raise AuthorizeError("unsupported_response_type", "response_type must be code")
        scopes = self._requested_scopes(app, single.get("scope") or "")
        challenge = self._code_challenge(single.get("code_challenge"), single.get("code_challenge_method"))
        return AuthorizeRequest(
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=single.get("state"),
            code_challenge=challenge,
            login_hint=single.get("login_hint"),
        )

    @staticmethod
    def _requested_scopes(app: SeedApp, text: str) -> tuple[str, ...]:
        scopes = tuple(dict.fromkeys(text.split()))
        if not scopes:
            raise AuthorizeError("invalid_scope", "No scope was requested")
        for scope in scopes:
            problem = scope_problem(scope, app.created_on)
            if problem is not None:
                # Xero words an unknown scope and a scope this app may not use differently.
                error = "invalid_scope" if scope not in KNOWN_SCOPES else "unauthorized_client"
                raise AuthorizeError(error, f"Invalid scope for client: {problem}")
        return scopes

    @staticmethod
    def _code_challenge(challenge: str | None, method: str | None) -> str | None:
        if challenge is None:
            if method is not None:
                raise AuthorizeError("invalid_request", "code_challenge_method without code_challenge")
            return None
        if method != "S256":
            raise AuthorizeError("invalid_request", "code_challenge_method must be S256")
        if not 43 <= len(challenge) <= 128:
            raise AuthorizeError("invalid_request", "code_challenge has the wrong length")
        return challenge

    def signed_in_user(self, login_hint: str | None) -> SeedUser:
        """The user the consent page is shown for: ``login_hint`` (id or email) or the seed's default."""
        if login_hint:
            user = self.users.get(login_hint) or self._users_by_email.get(login_hint.lower())
            if user is None:
                raise AuthorizeError("login_required", f"No user matches login_hint {login_hint}")
            return user
        default = self.seed.default_user_id
        if default is None:
            raise AuthorizeError("login_required", "The seed has no users to sign in")
        return self.users[default]

    def remember_pending(self, request: AuthorizeRequest) -> str:
        """Park a request while its consent page is shown; the id goes into the page's form."""
        now = self.now()
        while self._pending and (
            len(self._pending) >= _PENDING_LIMIT
            or next(iter(self._pending.values())).created_at < now - _PENDING_LIFETIME
        ):
            self._pending.popitem(last=False)
        request_id = secrets.token_urlsafe(16)
        self._pending[request_id] = PendingConsent(request, now)
        return request_id

    def pending(self, request_id: str) -> AuthorizeRequest | None:
        """The parked request, if it is still waiting."""
        entry = self._pending.get(request_id)
        if entry is None or entry.created_at < self.now() - _PENDING_LIFETIME:
            return None
        return entry.request

    def forget_pending(self, request_id: str) -> None:
        """A consent page can be answered once."""
        self._pending.pop(request_id, None)

    def queue_scripted_consent(self, scripted: ScriptedConsent) -> int:
        """Queue an answer for the next matching authorize request; return the queue length."""
        user = self.users.get(scripted.user_id)
        if user is None:
            raise ValueError(f"unknown user {scripted.user_id!r}")
        foreign = sorted(set(scripted.tenants) - set(user.organisations))
        if foreign:
            raise ValueError(f"user {user.id!r} does not belong to {foreign}")
        if scripted.client_id is not None and scripted.client_id not in self.apps:
            raise ValueError(f"unknown client_id {scripted.client_id!r}")
        self._scripted.append(scripted)
        return len(self._scripted)

    def take_scripted_consent(self, client_id: str) -> ScriptedConsent | None:
        """The first queued answer for ``client_id`` (or for any app), removed from the queue."""
        for index, scripted in enumerate(self._scripted):
            if scripted.client_id in (None, client_id):
                del self._scripted[index]
                return scripted
        return None

    @property
    def scripted_consents_queued(self) -> int:
        """How many scripted answers are waiting."""
        return len(self._scripted)

    def deny(self, request: AuthorizeRequest) -> None:
        """The user pressed Cancel: nothing changes but a counter."""
        self.counters["consents_denied"] += 1
        log.info("consent denied: client_id=%s", request.client_id)

    def consent(
        self,
        request: AuthorizeRequest,
        user: SeedUser,
        tenants: Sequence[str],
        granted: Iterable[str] | None = None,
    ) -> str:
        """The user pressed Allow: connect the ticked tenants, add the scopes, return a new code.

        ``granted`` restricts the scopes actually granted (scripted consent); it is intersected with the
        request so a consent can never grant what was not asked for.
        """
        tenants = tuple(dict.fromkeys(tenants))
        foreign = sorted(set(tenants) - set(user.organisations))
        if foreign:
            raise AuthorizeError("invalid_request", f"The user does not belong to {', '.join(foreign)}")
        scopes = request.scopes if granted is None else tuple(s for s in request.scopes if s in set(granted))
        grant = self._grant((user.id, request.client_id))
        session = self._new_session()
        self._connect(grant, tenants, session)
        grant.scopes.update(scopes)
        code = secrets.token_urlsafe(32)
        self._note_write()
        self._codes[code] = CodeRecord(
            grant.key,
            request.redirect_uri,
            tuple(sorted(grant.scopes)),
            request.code_challenge,
            session,
            self.now(),
            grant.generation,
        )
        self.counters["consents_allowed"] += 1
        self.counters["codes_issued"] += 1
        log.info("consent allowed: client_id=%s user=%s tenants=%d", request.client_id, user.id, len(tenants))
        return code

    def _connect(self, grant: Grant, tenants: Sequence[str], session: Session) -> None:
        keep_old_event = self.seed.behaviour.reconsent_keeps_auth_event_id
        for tenant_id in tenants:
            existing = grant.connections.get(tenant_id)
            if existing is None:
                grant.connections[tenant_id] = Connection(
                    str(uuid.uuid4()), tenant_id, session.auth_event_id, session.auth_time, session.auth_time
                )
                continue
            # Re-consent: same connection id, new updatedDateUtc (provider-facts.md, Connections).
            existing.updated_at = session.auth_time
            if not keep_old_event:
                existing.auth_event_id = session.auth_event_id

    def _note_write(self) -> None:
        # Sweeping every SWEEP_EVERY writes keeps memory bounded in long benchmarks at O(1) amortised cost.
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= self.SWEEP_EVERY:
            self._writes_since_sweep = 0
            self.sweep()

    def sweep(self) -> None:
        """Forget codes and tokens that can never be accepted again (expired, used up or revoked)."""
        now = self.now()
        behaviour = self.seed.behaviour
        oldest_code = now - behaviour.code_lifetime_seconds
        _drop(self._codes, lambda record: record.issued_at < oldest_code)
        _drop(self._access_tokens, lambda record: record.expires_at <= now or not self._current(record))
        _drop(
            self._refresh_tokens,
            lambda record: (
                not self._current(record)
                or (record.first_used_at is None and now - record.issued_at > behaviour.refresh_token_idle_seconds)
                or (record.first_used_at is not None and now - record.first_used_at > behaviour.refresh_grace_seconds)
            ),
        )

    def _current(self, record: AccessTokenRecord | RefreshTokenRecord) -> bool:
        grant = self.grants.get(record.key)
        return grant is not None and grant.generation == record.generation

    # ------------------------------------------------------------------ token endpoint

    def authenticate_client(self, client_id: str, client_secret: str) -> SeedApp | None:
        """The app whose credentials these are, or ``None`` (constant-time secret comparison)."""
        app = self.apps.get(client_id)
        if app is None:
            return None
        expected = app.client_secret.get_secret_value().encode()
        return app if hmac.compare_digest(expected, client_secret.encode()) else None

    def exchange_code(
        self, app: SeedApp, code: str, redirect_uri: str | None, code_verifier: str | None, issuer: str
    ) -> TokenSet:
        """``grant_type=authorization_code``: single use, 5 minutes, same redirect_uri, PKCE if asked."""
        # DECISION: any failed attempt burns the code too (pop first), as strict servers do.
        record = self._codes.pop(code, None)
        if record is None or record.key[1] != app.client_id:
            raise self._token_error("invalid_grant", "unknown, used or foreign code", app.client_id)
        if self.now() > record.issued_at + self.seed.behaviour.code_lifetime_seconds:
            raise self._token_error("invalid_grant", "expired code", app.client_id)
        if redirect_uri != record.redirect_uri:
            raise self._token_error("invalid_grant", "redirect_uri differs from the authorize request", app.client_id)
        if record.code_challenge is not None and not _pkce_matches(record.code_challenge, code_verifier):
            raise self._token_error("invalid_grant", "code_verifier does not match", app.client_id)
        grant = self.grants.get(record.key)
        if grant is None or grant.generation != record.generation:
            raise self._token_error("invalid_grant", "grant revoked since consent", app.client_id)
        return self._issue(grant, record.scopes, record.session, issuer)

    def refresh(self, app: SeedApp, refresh_token: str, issuer: str) -> TokenSet:
        """``grant_type=refresh_token``: rotate, honouring the grace window and the idle lifetime.

        DECISION: a retry with an already-used refresh token within the grace window returns a brand-new
        token pair (new access and refresh token); every refresh token issued stays valid under its own
        rules, so losing either response costs nothing.
        """
        record = self._refresh_tokens.get(refresh_token)
        if record is None or record.key[1] != app.client_id:
            raise self._token_error("invalid_grant", "unknown or foreign refresh token", app.client_id)
        grant = self.grants.get(record.key)
        if grant is None or grant.generation != record.generation:
            raise self._token_error("invalid_grant", "revoked refresh token", app.client_id)
        now = self.now()
        behaviour = self.seed.behaviour
        if record.first_used_at is None:
            if now - record.issued_at > behaviour.refresh_token_idle_seconds:
                raise self._token_error("invalid_grant", "refresh token expired unused", app.client_id)
            record.first_used_at = now
        elif now - record.first_used_at > behaviour.refresh_grace_seconds:
            raise self._token_error("invalid_grant", "refresh token used and grace window over", app.client_id)
        else:
            self.counters["refresh_grace_reuses"] += 1
        self.counters["refreshes"] += 1
        grant.refreshes += 1
        return self._issue(grant, tuple(sorted(grant.scopes)), record.session, issuer)

    def revoke(self, app: SeedApp, refresh_token: str) -> None:
        """Revoke the grant behind ``refresh_token``: all its connections and tokens go.

        An unknown token is not an error (RFC 7009 section 2.2); another app's token is refused.
        """
        record = self._refresh_tokens.get(refresh_token)
        if record is None:
            log.info("revocation of an unknown token: client_id=%s", app.client_id)
            return
        if record.key[1] != app.client_id:
            raise self._token_error("invalid_grant", "token belongs to another app", app.client_id)
        grant = self.grants.get(record.key)
        if grant is not None and grant.generation == record.generation:
            grant.generation += 1
            grant.scopes.clear()
            grant.connections.clear()
        self.counters["revocations"] += 1
        log.info("grant revoked: client_id=%s user=%s", app.client_id, record.key[0])

    def _token_error(self, error: str, reason: str, client_id: str) -> OAuthError:
        self.counters[f"token_error_{error}"] += 1
        log.info("token request refused: client_id=%s error=%s reason=%s", client_id, error, reason)
        return OAuthError(error)

    def _issue(self, grant: Grant, scopes: tuple[str, ...], session: Session, issuer: str) -> TokenSet:
        now = self.now()
        lifetime = self.seed.behaviour.access_token_lifetime_seconds
        user = self.users[grant.user_id]
        jti = uuid.uuid4().hex
        self._access_tokens[jti] = AccessTokenRecord(grant.key, grant.generation, now + lifetime)
        self._note_write()
        access = _jwt.encode(self._access_claims(grant, user, scopes, session, issuer, jti, now), self._key)
        refresh = None
        if "offline_access" in scopes:
            refresh = secrets.token_hex(32)
            self._refresh_tokens[refresh] = RefreshTokenRecord(grant.key, now, session, grant.generation)
        id_token = None
        if "openid" in scopes:
            id_token = _jwt.encode(self._id_claims(grant, user, session, issuer, now), self._key)
        grant.tokens_issued += 1
        self.counters["tokens_issued"] += 1
        log.info("tokens issued: client_id=%s user=%s", grant.client_id, grant.user_id)
        return TokenSet(access, refresh, id_token, lifetime, scopes)

    def _access_claims(
        self,
        grant: Grant,
        user: SeedUser,
        scopes: tuple[str, ...],
        session: Session,
        issuer: str,
        jti: str,
        now: float,
    ) -> dict[str, Any]:
        issued = int(now)
        return {
            "nbf": issued,
            "exp": issued + self.seed.behaviour.access_token_lifetime_seconds,
            "iss": issuer,
            "aud": f"{issuer}/resources",
            "client_id": grant.client_id,
            "sub": _subject(user.id),
            "auth_time": int(session.auth_time),
            "xero_userid": user.id,
            "global_session_id": session.session_id,
            "sid": session.session_id,
            "jti": jti,
            "authentication_event_id": session.auth_event_id,
            "idp": "xero",
            "amr": ["pwd"],
            "scope": list(scopes),
        }

    def _id_claims(self, grant: Grant, user: SeedUser, session: Session, issuer: str, now: float) -> dict[str, Any]:
        issued = int(now)
        return {
            "nbf": issued,
            "iat": issued,
            "exp": issued + 300,
            "iss": issuer,
            "aud": grant.client_id,
            "sub": _subject(user.id),
            "auth_time": int(session.auth_time),
            "xero_userid": user.id,
            "global_session_id": session.session_id,
            "sid": session.session_id,
            "preferred_username": user.email,
            "email": user.email,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "name": f"{user.given_name} {user.family_name}",
            "idp": "xero",
            "amr": ["pwd"],
        }

    # ------------------------------------------------------------------ API

    def authenticate_access_token(self, token: str | None) -> AccessContext:
        """Check a bearer token: signature, expiry (emulator clock) and that it was not revoked."""
        claims = _jwt.decode(token, self._key) if token else None
        if claims is None:
            raise _authentication_failed()
        record = self._access_tokens.get(str(claims.get("jti")))
        if record is None:
            raise _authentication_failed()
        exp = int(claims.get("exp", 0))
        if self.now() >= exp:
            moment = datetime.fromtimestamp(exp, UTC).strftime("%m/%d/%Y %H:%M:%S")
            raise ApiError(
                401,
                "Unauthorized",
                f"TokenExpired: token expired at {moment}",
                f'Bearer error="invalid_token", error_description="The token expired at {moment}"',
            )
        grant = self.grants.get(record.key)
        if grant is None or grant.generation != record.generation:
            raise _authentication_failed()
        return AccessContext(grant, record.generation, grant.client_id, frozenset(claims.get("scope", ())))

    def connections(self, context: AccessContext, auth_event_id: str | None = None) -> list[dict[str, Any]]:
        """``GET /connections`` for the caller's (user, app), optionally only one authorisation's."""
        self._still_valid(context)
        return [
            self._connection_json(connection)
            for connection in context.grant.connections.values()
            if auth_event_id is None or connection.auth_event_id == auth_event_id
        ]

    def delete_connection(self, context: AccessContext, connection_id: str) -> bool:
        """``DELETE /connections/{id}``; False when the caller has no such connection."""
        self._still_valid(context)
        connections = context.grant.connections
        for tenant_id, connection in connections.items():
            if connection.id == connection_id:
                del connections[tenant_id]
                self.counters["connections_deleted"] += 1
                return True
        return False

    def organisation(self, context: AccessContext, tenant_id: str) -> dict[str, Any]:
        """``GET /api.xro/2.0/Organisation`` for one tenant, with Xero's checks in Xero's order."""
        self._still_valid(context)
        self.counters["api_calls"] += 1
        if tenant_id not in context.grant.connections:
            raise _forbidden()
        if tenant_id in self.users[context.grant.user_id].no_rights:
            raise _forbidden()
        if not context.scopes & ORGANISATION_SCOPES:
            # Xero: 401 AuthorizationUnsuccessful with WWW-Authenticate insufficient_scope.
            raise ApiError(401, "Unauthorized", "AuthorizationUnsuccessful", 'Bearer error="insufficient_scope"')
        return _organisation_body(self.organisations[tenant_id], self.now())

    def _still_valid(self, context: AccessContext) -> None:
        # A revocation may have happened while the call waited (injected latency).
        if context.grant.generation != context.generation:
            raise _authentication_failed()

    def _connection_json(self, connection: Connection) -> dict[str, Any]:
        org = self.organisations[connection.tenant_id]
        return {
            "id": connection.id,
            "authEventId": connection.auth_event_id,
            "tenantId": connection.tenant_id,
            "tenantType": org.type,
            "tenantName": org.name,
            "createdDateUtc": xero_timestamp(connection.created_at),
            "updatedDateUtc": xero_timestamp(connection.updated_at),
        }

    # ------------------------------------------------------------------ inspection

    def describe(self, client_id: str | None = None) -> dict[str, Any]:
        """A JSON-able view for ``GET /_emulator/state``: grants, connections, counters. No secrets."""
        grants = [
            {
                "client_id": grant.client_id,
                "user": grant.user_id,
                "scopes": sorted(grant.scopes),
                "connections": [self._connection_json(c) for c in grant.connections.values()],
                "refreshes": grant.refreshes,
                "tokens_issued": grant.tokens_issued,
                "revocations": grant.generation,
            }
            for grant in self.grants.values()
            if client_id is None or grant.client_id == client_id
        ]
        return {
            "now": self.now(),
            "clock_offset": self.clock_offset,
            "counters": dict(sorted(self.counters.items())),
            "grants": grants,
            "pending_consent_pages": len(self._pending),
            "scripted_consents_queued": len(self._scripted),
            "outstanding_codes": len(self._codes),
        }


def _drop(records: dict[str, V], dead: Callable[[V], bool]) -> None:
    for key in [key for key, record in records.items() if dead(record)]:
        del records[key]


def _single_values(params: Mapping[str, Sequence[str]]) -> dict[str, str]:
    # OAuth 2.0 (RFC 6749 section 3.1): a parameter must not be sent more than once.
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        raise AuthorizeError("invalid_request", f"Parameters sent more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in params.items() if values}


def _pkce_matches(challenge: str, verifier: str | None) -> bool:
    if not verifier:
        return False
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def _subject(user_id: str) -> str:
    # Xero's `sub` is a per-user GUID distinct from xero_userid; derive one stably.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"xero-user:{user_id}").hex


def _xero_date(moment: float) -> str:
    return f"/Date({int(moment * 1000)})/"


def _organisation_body(org: SeedOrganisation, now: float) -> dict[str, Any]:
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "grantctl emulator",
        "DateTimeUTC": _xero_date(now),
        "Organisations": [
            {
                "OrganisationID": org.tenant_id,
                "Name": org.name,
                "LegalName": org.name,
                "PaysTax": True,
                "Version": org.country_code,
                "OrganisationType": "COMPANY" if org.type == "ORGANISATION" else "PRACTICE",
                "BaseCurrency": org.base_currency,
                "CountryCode": org.country_code,
                "IsDemoCompany": org.is_demo_company,
                "OrganisationStatus": "ACTIVE",
                "ShortCode": "!" + hashlib.sha256(org.tenant_id.encode()).hexdigest()[:5],
                "Timezone": "GMTSTANDARDTIME",
                "OrganisationEntityType": "COMPANY",
                "Edition": "BUSINESS",
                "Class": "STANDARD",
            }
        ],
    }
