"""The link and callback server (``grantctl serve``) and the consent flow it shares with ``grantctl connect``.

Example::

    from grantctl.server import create_app
    app = create_app(repo)                      # signing key from the environment or SOPS, state store from config
    uvicorn.run(app, host="127.0.0.1", port=8080, access_log=False)
"""

from __future__ import annotations

from grantctl.server._app import SECURITY_HEADERS, create_app, create_callback_app, route_label
from grantctl.server._flow import (
    STATUS,
    ConsentFlow,
    FlowResult,
    Kind,
    Redirect,
    load_client_credentials,
    provider_for,
)
from grantctl.server._oauthstate import STATE_TTL, FlowState, NonceBook, cookie_name
from grantctl.server._pages import render

__all__ = [
    "SECURITY_HEADERS",
    "STATE_TTL",
    "STATUS",
    "ConsentFlow",
    "FlowResult",
    "FlowState",
    "Kind",
    "NonceBook",
    "Redirect",
    "cookie_name",
    "create_app",
    "create_callback_app",
    "load_client_credentials",
    "provider_for",
    "render",
    "route_label",
]
