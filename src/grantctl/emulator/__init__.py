"""An emulated Xero (identity and a sliver of the accounting API) for tests, benchmarks and demos.

Strict like the real thing where provider-facts.md is sure, switchable where it is not, scriptable
through ``/_emulator/*``. In-memory, loopback only; it needs nothing from grantctl but ``errors``.

>>> from grantctl.emulator import EXAMPLE_SEED_PATH, Seed, create_app
>>> app = create_app(Seed.from_yaml(EXAMPLE_SEED_PATH))

Endpoints (Xero's paths, so swapping the host is enough):
    GET  /identity/connect/authorize            consent page, or Xero's 400 error page (no redirect)
    POST /identity/connect/authorize/consent    the page's form: allow -> ?code=&state=, cancel -> ?error=access_denied
    POST /identity/connect/token                also /connect/token (identity.xero.com's path)
    POST /identity/connect/revocation           also /connect/revocation
    GET  /connections[?authEventId=]            DELETE /connections/{id}
    GET  /api.xro/2.0/Organisation              needs xero-tenant-id and accounting.settings[.read]
    GET  /.well-known/openid-configuration
Controls: POST /_emulator/consent {user, tenants, action, scopes, client_id}; POST /_emulator/reset;
GET /_emulator/state[?client_id=]; GET|POST /_emulator/faults {latency_ms, fail: [{endpoint, mode,
count, client_id, retry_after, problem, timeout_seconds}], rate_limits}; GET|POST /_emulator/clock {seconds}.

Decisions where provider-facts.md is silent or UNCONFIRMED:
- A retry with a used refresh token inside the 30-minute grace window returns a brand-new token pair;
  every refresh token issued stays valid under its own rules (grace after first use, 60 days unused).
- A failed code exchange (wrong redirect_uri, verifier or app) burns the code.
- Re-consent gives re-ticked tenants the new authEventId; ``Behaviour.reconsent_keeps_auth_event_id``
  keeps the old one instead. Token responses omit ``scope`` unless ``token_response_includes_scope``.
- API answers follow Xero's troubleshooting page: a missing, unconnected or no-rights tenant is
  403 AuthenticationUnsuccessful (a no-rights tenant is still listed by /connections); a token without
  the scope is 401 AuthorizationUnsuccessful with ``WWW-Authenticate: Bearer error="insufficient_scope"``.
- Rate limits count per (app, tenant) and per app on Organisation calls only; the remaining-quota
  headers are always sent, 429s only when limits are enabled (seed, or ``faults.rate_limits``).
- On API endpoints the bearer token is checked before latency and faults (rules can target a client_id).
"""

from __future__ import annotations

from pathlib import Path

from ._app import create_app
from ._faults import FaultConfig, FaultRule
from ._scopes import BROAD_REPLACEMENTS, GRANULAR_ONLY_FROM, KNOWN_SCOPES
from ._seed import (
    Behaviour,
    RateLimitSettings,
    Seed,
    SeedApp,
    SeedError,
    SeedGrant,
    SeedOrganisation,
    SeedUser,
)
from ._server import run

#: A ready-made seed: three apps, four organisations, three users, one pre-seeded grant.
EXAMPLE_SEED_PATH = Path(__file__).with_name("example-seed.yaml")

__all__ = [
    "BROAD_REPLACEMENTS",
    "EXAMPLE_SEED_PATH",
    "GRANULAR_ONLY_FROM",
    "KNOWN_SCOPES",
    "Behaviour",
    "FaultConfig",
    "FaultRule",
    "RateLimitSettings",
    "Seed",
    "SeedApp",
    "SeedError",
    "SeedGrant",
    "SeedOrganisation",
    "SeedUser",
    "create_app",
    "run",
]
