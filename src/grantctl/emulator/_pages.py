"""The emulator's HTML pages: plain, accessible, everything echoed is escaped.

Element ids and names are a contract for browser tests: ``input[name=tenant][value=<tenantId>]``,
``button#allow``, ``button#deny``, ``select#login-hint``, ``#error-code``, ``#error-description``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from ._seed import SeedApp, SeedOrganisation, SeedUser

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}"
    "code{background:#f2f2f2;padding:0 .2rem}"
)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)} | Xero emulator</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def error_page(error: str, description: str) -> str:
    """The page Xero shows instead of redirecting (bad client, redirect URI or scope)."""
    body = (
        "<h1>Sorry, something went wrong</h1>\n"
        f'<p>Error: <code id="error-code">{_e(error)}</code></p>\n'
        f'<p id="error-description">{_e(description)}</p>\n'
        "<p>You have not been redirected. Ask the app's developer to check its settings.</p>"
    )
    return _document("Error", body)


def consent_page(
    *,
    app: SeedApp,
    user: SeedUser,
    users: Iterable[SeedUser],
    organisations: Sequence[SeedOrganisation],
    scopes: Sequence[str],
    request_id: str,
    authorize_params: Sequence[tuple[str, str]],
) -> str:
    """The consent page: who is signed in, what is asked, which organisations to connect."""
    body = "\n".join(
        (
            f"<h1>{_e(app.display_name)} wants to access your Xero data</h1>",
            _signed_in(user),
            _switch_user_form(user, users, authorize_params),
            _scope_list(scopes),
            _consent_form(user, organisations, request_id),
        )
    )
    return _document("Allow access", body)


def _signed_in(user: SeedUser) -> str:
    return (
        f'<p id="signed-in-user" data-user-id="{_e(user.id)}">Signed in as '
        f"<strong>{_e(user.given_name)} {_e(user.family_name)}</strong> ({_e(user.email)})</p>"
    )


def _switch_user_form(current: SeedUser, users: Iterable[SeedUser], params: Sequence[tuple[str, str]]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">' for name, value in params if name != "login_hint"
    )
    options = "".join(
        f'<option value="{_e(user.id)}"{" selected" if user.id == current.id else ""}>'
        f"{_e(user.given_name)} {_e(user.family_name)} ({_e(user.email)})</option>"
        for user in users
    )
    return (
        '<form id="switch-user" method="get" action="/identity/connect/authorize">'
        f"{hidden}"
        '<label for="login-hint">Not you? Sign in as </label>'
        f'<select id="login-hint" name="login_hint">{options}</select> '
        '<button type="submit" id="switch">Switch user</button></form>'
    )


def _scope_list(scopes: Sequence[str]) -> str:
    items = "".join(f'<li data-scope="{_e(scope)}"><code>{_e(scope)}</code></li>' for scope in scopes)
    return f'<h2>This app is asking for</h2>\n<ul id="scopes">{items}</ul>'


def _consent_form(user: SeedUser, organisations: Sequence[SeedOrganisation], request_id: str) -> str:
    if organisations:
        boxes = "".join(
            f'<div><input type="checkbox" name="tenant" value="{_e(org.tenant_id)}" id="tenant-{index}">'
            f'<label for="tenant-{index}">{_e(org.name)} ({_e(org.type.lower())})</label></div>'
            for index, org in enumerate(organisations)
        )
        tenants = f"<fieldset><legend>Organisations to connect</legend>{boxes}</fieldset>"
    else:
        tenants = '<p id="no-organisations">You do not belong to any organisation.</p>'
    return (
        '<form id="consent" method="post" action="/identity/connect/authorize/consent">'
        f'<input type="hidden" name="request" value="{_e(request_id)}">'
        f'<input type="hidden" name="user" value="{_e(user.id)}">'
        f"{tenants}"
        '<p><button type="submit" id="allow" name="action" value="allow">Allow access</button>'
        '<button type="submit" id="deny" name="action" value="deny">Cancel</button></p></form>'
    )
