"""The pages a client sees: plain, accessible HTML that says what happened and what to do next.

The reader is a bookkeeper, not an engineer. Every value echoed is escaped; no page ever holds a
token, a code, a state value or a secret (a fresh link is the one exception, on purpose: it is the
way forward, shown to the browser that just proved it holds the binding cookie).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from html import escape

from grantctl.catalogue import describe
from grantctl.server._flow import FlowResult, Kind

PROVIDER_NAMES = {"xero": "Xero", "hubspot": "HubSpot", "pipedrive": "Pipedrive"}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;"
    "color:#1a1a1a}a{color:#0b57d0}.detail{color:#555;font-size:.9rem}"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def document(title: str, body: str, *, outcome: str) -> str:
    """A whole page: ``lang``, ``title``, one ``h1`` (inside ``body``), nothing loaded from anywhere."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body>\n<main data-outcome="{_e(outcome)}">\n{body}\n</main>\n</body>\n</html>\n'
    )


def render(result: FlowResult) -> str:
    """The page for ``result``."""
    title, paragraphs = _RENDERERS[result.kind](result)
    body = f"<h1>{_e(title)}</h1>\n" + "\n".join(paragraphs)
    return document(title, body, outcome=result.kind)


def simple_page(title: str, *lines: str, outcome: str) -> str:
    """A page with a heading and plain-text paragraphs (not found, method not allowed, errors)."""
    body = f"<h1>{_e(title)}</h1>\n" + "\n".join(f"<p>{_e(line)}</p>" for line in lines)
    return document(title, body, outcome=outcome)


# -- pieces ---------------------------------------------------------------------------------------------


def _p(text: str) -> str:
    """A paragraph of already-escaped HTML."""
    return f"<p>{text}</p>"


def _provider(result: FlowResult) -> str:
    return _e(PROVIDER_NAMES.get(result.provider or "", "the provider"))


def _names(names: Iterable[str]) -> str:
    quoted = [f"<strong>{_e(name or 'an unnamed organisation')}</strong>" for name in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _scope_list(provider: str | None, scopes: Iterable[str], *, list_id: str) -> str:
    items = "".join(
        f'<li data-scope="{_e(scope)}">{_e(describe(provider, scope) if provider else scope)}</li>' for scope in scopes
    )
    return f'<ul id="{_e(list_id)}">{items}</ul>'


def _ask_owner(result: FlowResult, what: str) -> str:
    if result.owner:
        return f'{what} from <a href="mailto:{_e(result.owner)}">{_e(result.owner)}</a>.'
    return f"{what} from the person who sent you the link."


def _way_forward(result: FlowResult, link_text: str) -> str:
    """A fresh link when there is one; otherwise what to do instead."""
    if result.fresh_link:
        return _p(f'<a id="fresh-link" href="{_e(result.fresh_link)}">{_e(link_text)}</a>')
    if result.retry_hint:
        return _p(_e(result.retry_hint))
    return _p(_ask_owner(result, "Ask for a new link"))


def _nothing_changed() -> str:
    return _p("Nothing was changed.")


def _day(moment: datetime | None) -> str:
    return f" on {_e(f'{moment:%d %B %Y}')}" if moment else ""


# -- one renderer per outcome ---------------------------------------------------------------------------

Rendered = tuple[str, list[str]]


def _connected(result: FlowResult) -> Rendered:
    tenant = result.tenant or result.organisation or "your organisation"
    paragraphs = [
        _p(f"Connected <strong>{_e(tenant)}</strong> with:"),
        _scope_list(result.provider, result.granted, list_id="granted"),
    ]
    if result.released:
        paragraphs.append(
            _p(
                f"You also picked {_names(result.released)}. This connection is only for "
                f"<strong>{_e(result.organisation)}</strong>, so we removed our access to the others again."
            )
        )
    if result.missing:
        paragraphs.append(_p("Some access we asked for was not granted:"))
        paragraphs.append(_scope_list(result.provider, result.missing, list_id="missing"))
        paragraphs.append(_p(_ask_owner(result, "You may hear")))
    paragraphs.append(_p("You can close this page now."))
    return f"Connected {tenant}", paragraphs


def _wrong_organization(result: FlowResult) -> Rendered:
    expected = f"<strong>{_e(result.organisation)}</strong>"
    paragraphs = [_p(f"This connection is for {expected}.")]
    if result.ambiguous:
        paragraphs.append(
            _p(
                f"More than one organisation called {expected} was picked, so we cannot tell which one is meant. "
                "We removed our access to all of them again and saved nothing. Please pick only one."
            )
        )
    elif result.ticked:
        paragraphs.append(
            _p(
                f"You picked {_names(result.ticked)}. We removed our access to "
                f"{'it' if len(result.ticked) == 1 else 'them'} again and saved nothing."
            )
        )
    else:
        paragraphs.append(_p("No organisation was picked, so nothing was connected and nothing was saved."))
    paragraphs.append(_way_forward(result, f"Try again and pick {result.organisation}"))
    return "That was not the right organisation", paragraphs


def _denied(result: FlowResult) -> Rendered:
    paragraphs = [
        _p("You cancelled, so no access was granted. Nothing was changed."),
        _p("If you change your mind:"),
        _way_forward(result, "Start again"),
    ]
    return "Nothing was changed", paragraphs


def _provider_error(result: FlowResult) -> Rendered:
    paragraphs = [_p(f"{_provider(result)} did not complete the connection, so nothing was saved.")]
    if result.not_released:
        paragraphs.append(
            _p(
                f"We could not remove our access to {_names(result.not_released)}. "
                + _ask_owner(result, "Please ask for help")
            )
        )
    paragraphs.append(_p("Please try again in a few minutes:"))
    paragraphs.append(_way_forward(result, "Try again"))
    if result.detail:
        paragraphs.append(f'<p class="detail">Technical detail: {_e(result.detail)}</p>')
    return "The connection did not go through", paragraphs


def _other_browser(result: FlowResult) -> Rendered:
    if result.retry_hint:
        next_step = _e(result.retry_hint)
    else:
        next_step = "Please open the link we sent you again, in this browser. " + _ask_owner(
            result, "If it has expired, ask for a new one"
        )
    paragraphs = [
        _p(
            "This page was opened in a different browser from the link, or more than ten minutes passed "
            "since you opened the link."
        ),
        _nothing_changed(),
        _p(next_step),
    ]
    return "This link was opened in another browser or has expired", paragraphs


def _replayed(result: FlowResult) -> Rendered:
    paragraphs = [
        _p(f"This answer from {_provider(result)} was already handled, so nothing more happened."),
        _p(
            "If you already saw a page saying the connection worked, there is nothing more to do. "
            "Otherwise open the link we sent you again."
        ),
    ]
    return "This page was already used", paragraphs


def _invalid(result: FlowResult) -> Rendered:
    paragraphs = [
        _p("This address only works when you arrive from the sign-in page we sent you to, and this visit did not."),
        _nothing_changed(),
        _p("Please open the link we sent you again."),
    ]
    return "This page cannot be used like this", paragraphs


def _unknown_connection(result: FlowResult) -> Rendered:
    paragraphs = [
        _p("This link is for a connection that is not set up (any more)."),
        _nothing_changed(),
        _p("If you expected it to work, please contact the person who sent you the link."),
    ]
    return "Unknown connection", paragraphs


def _setup_error(result: FlowResult) -> Rendered:
    paragraphs = [
        _p("Our side of this connection is not set up correctly, so we could not continue."),
        _nothing_changed(),
        _p(_ask_owner(result, "We are sorry; please ask for help")),
    ]
    return "Something is wrong on our side", paragraphs


def _storage_error(result: FlowResult) -> Rendered:
    paragraphs = [
        _p(
            f"{_provider(result)} accepted, but we could not save the connection, so it is not in use. "
            "Please try again in a few minutes:"
        ),
        _way_forward(result, "Try again"),
        _p(_ask_owner(result, "If it keeps failing, please ask for help")),
    ]
    return "We could not save the connection", paragraphs


def _link_invalid(result: FlowResult) -> Rendered:
    paragraphs = [
        _p("The link may have been cut short or changed when it was copied."),
        _nothing_changed(),
        _p("Copy the whole link from the message we sent you, or ask the sender for a new link."),
    ]
    return "This link does not work", paragraphs


def _link_expired(result: FlowResult) -> Rendered:
    paragraphs = [
        _p(f"Links work for a limited time; this one expired{_day(result.expired_at)}."),
        _nothing_changed(),
        _p(_ask_owner(result, "Please ask for a new link")),
    ]
    return "This link has expired", paragraphs


def _link_stale(result: FlowResult) -> Rendered:
    organisation = f" from <strong>{_e(result.organisation)}</strong>" if result.organisation else ""
    paragraphs = [
        _p(f"The access we need{organisation} has changed since this link was sent, so it no longer works."),
        _nothing_changed(),
        _p(_ask_owner(result, "Please ask for a new link")),
    ]
    return "This link is out of date", paragraphs


_RENDERERS: Mapping[Kind, Callable[[FlowResult], Rendered]] = {
    "connected": _connected,
    "wrong-organization": _wrong_organization,
    "denied": _denied,
    "provider-error": _provider_error,
    "other-browser": _other_browser,
    "replayed": _replayed,
    "invalid": _invalid,
    "unknown-connection": _unknown_connection,
    "setup-error": _setup_error,
    "storage-error": _storage_error,
    "link-invalid": _link_invalid,
    "link-expired": _link_expired,
    "link-stale": _link_stale,
}
