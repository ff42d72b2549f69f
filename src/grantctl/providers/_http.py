"""One place where provider HTTP calls are sent and their failures become :class:`ProviderError`.

Why one place: every call needs the same three guarantees, and each is easy to forget in a one-off
``http.post``: a timeout, a mapping of every non-2xx answer / transport failure to ``ProviderError``,
and messages that can never carry a token, code or secret. Messages are built only from a *label*
(method and path, chosen by the caller so a token in a URL path never leaks), the HTTP status and the
OAuth ``error`` / ``error_description`` fields, after redaction.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from grantctl.errors import ProviderError

JsonObject = dict[str, Any]
Clock = Callable[[], datetime]

# RFC 6749 error codes are short identifiers without digits; anything else in an ``error`` field (Pipedrive
# sends prose such as "unauthorized access"; a broken server might echo a token) is quoted as a
# description after redaction, never trusted as a machine-readable code.
_OAUTH_ERROR_CODE = re.compile(r"[A-Za-z_.\-]{1,40}")
# HubSpot's v1 token endpoint answers ``{"status": "BAD_REFRESH_TOKEN", "message": ...}`` instead of an
# OAuth ``error``; mapping it lets callers treat every provider's dead grant as ``invalid_grant``.
_STATUS_ALIASES = {
    "BAD_AUTH_CODE": "invalid_grant",
    "BAD_REFRESH_TOKEN": "invalid_grant",
    "BAD_REDIRECT_URI": "invalid_grant",
    "BAD_CLIENT_ID": "invalid_client",
    "BAD_CLIENT_SECRET": "invalid_client",
    "BAD_GRANT_TYPE": "unsupported_grant_type",
    "BAD_SCOPES": "invalid_scope",
}
# Long runs of token alphabet look like tokens, codes or secrets we were not told about (a server may echo
# the token it refused); they are cut out of any text we quote.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+/=:\-]{32,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_QUOTED = 200
_MIN_SECRET_LENGTH = 6
REDACTED = "[redacted]"

_HINTS = {
    "invalid_grant": "the code or refresh token is wrong, expired, already used or revoked; "
    "the client must authorise again",
    "invalid_client": "the client id or secret was refused; check the connection's app credentials file",
    "unauthorized_client": "the app may not use this grant or scope (for Xero apps created on or after "
    "2026-03-02: use granular scopes)",
    "unsupported_grant_type": "the provider does not accept this grant type",
    "invalid_scope": "a requested scope is unknown or not allowed for this app",
    "access_denied": "the user declined the request",
}


class PermanentProviderError(ProviderError):
    """A provider failure that trying again cannot fix, whatever its status (or lack of one)."""

    @property
    def transient(self) -> bool:
        """Always False."""
        return False


@dataclass(frozen=True)
class Call:
    """One outgoing request. ``label`` names it in messages (e.g. ``"POST /connect/token"``).

    ``secrets`` are the sensitive values this request carries; they are cut out of any text the server
    sends back before that text reaches a message.
    """

    method: str
    url: str
    label: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] | None = None
    form: Mapping[str, str] | None = field(default=None, repr=False)
    auth: httpx.Auth | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


def label_for(method: str, url: str) -> str:
    """``"GET /connections"`` for a URL whose path holds no secret (query and host left out)."""
    return f"{method} {urlsplit(url).path or '/'}"


async def send(
    http: httpx.AsyncClient,
    provider: str,
    call: Call,
    *,
    timeout: float,
    clock: Clock,
    accept: Collection[int] = (),
) -> httpx.Response:
    """Send ``call`` and return the response when it is 2xx or in ``accept``; raise ``ProviderError`` otherwise.

    Timeouts and connection failures become ``ProviderError`` with ``status=None`` (transient).
    """
    try:
        response = await http.request(
            call.method,
            call.url,
            headers=call.headers,
            params=call.params,
            data=call.form,
            auth=call.auth if call.auth is not None else httpx.USE_CLIENT_DEFAULT,
            timeout=httpx.Timeout(timeout),
        )
    except httpx.InvalidURL:
        raise PermanentProviderError(
            provider, f"{call.label}: the URL is not valid; check this provider's endpoints in grantctl.yaml"
        ) from None
    except httpx.TimeoutException:
        # ``from None``: the httpx exception holds the request (URL, headers), which may carry a token.
        raise ProviderError(provider, f"{call.label} timed out after {timeout:g} s") from None
    except httpx.TransportError as exc:
        host = urlsplit(call.url).hostname or "the server"
        raise ProviderError(provider, f"{call.label} failed: could not reach {host} ({type(exc).__name__})") from None
    if response.is_success or response.status_code in accept:
        return response
    raise error_from_response(provider, call, response, clock=clock)


def error_from_response(provider: str, call: Call, response: httpx.Response, *, clock: Clock) -> ProviderError:
    """Turn a non-2xx answer into a ``ProviderError`` whose message is safe to show and log."""
    refusal = describe_refusal(call, response, clock=clock)
    return ProviderError(
        provider,
        refusal.message,
        status=response.status_code,
        oauth_error=refusal.oauth_error,
        retry_after=refusal.retry_after,
    )


@dataclass(frozen=True)
class Refusal:
    """What a non-2xx answer said, reduced to what is safe to repeat."""

    message: str
    oauth_error: str | None
    retry_after: float | None


def describe_refusal(call: Call, response: httpx.Response, *, clock: Clock) -> Refusal:
    """The safe reading of a non-2xx answer: label, OAuth code, redacted description, a hint, Retry-After."""
    oauth_error, description = _oauth_error_fields(_json_or_none(response), call.secrets)
    status = response.status_code
    parts = [f"{call.label} was refused"]
    if oauth_error:
        parts.append(f": {oauth_error}")
    if description:
        parts.append(f" ({description})")
    parts.append(_explain(status, oauth_error))
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=clock())
    if status == 429 and retry_after is not None:
        parts.append(f"; retry after {retry_after:g} s")
    return Refusal("".join(parts), oauth_error, retry_after)


def _explain(status: int, oauth_error: str | None) -> str:
    if oauth_error in _HINTS:
        return f": {_HINTS[oauth_error]}"
    if status == 429:
        return ": rate limited"
    if status >= 500:
        return ": the provider had a server error; try again later"
    if status == 401:
        return ": the access token was not accepted"
    if status == 403:
        return ": access refused (the connection may have been revoked, or the tenant is wrong)"
    if status == 404:
        return ": not found"
    return ""


def _oauth_error_fields(answer: object, secrets: Iterable[str]) -> tuple[str | None, str | None]:
    """The OAuth ``error`` code and a sanitised description, from whichever shape the provider uses.

    Only named fields are read, never the whole body: a body may echo the token or code we sent.
    """
    if not isinstance(answer, dict):
        return None, None
    secrets = tuple(secrets)
    code: str | None = None
    texts: list[str] = []
    raw_error = answer.get("error")
    if isinstance(raw_error, str) and _OAUTH_ERROR_CODE.fullmatch(raw_error) and raw_error not in secrets:
        code = raw_error
    elif isinstance(raw_error, str):
        texts.append(raw_error)
    raw_status = answer.get("status")
    if code is None and isinstance(raw_status, str) and raw_status in _STATUS_ALIASES:
        code = _STATUS_ALIASES[raw_status]
        texts.append(raw_status)
    # error_description: OAuth; Title/Detail: Xero API problems; message/category: HubSpot.
    for key in ("error_description", "Title", "Detail", "message", "category"):
        value = answer.get(key)
        if isinstance(value, str) and value:
            texts.append(value)
    description = sanitize("; ".join(texts), secrets) if texts else None
    return code, description or None


def sanitize(text: str, secrets: Iterable[str] = ()) -> str:
    """Make server text safe to quote: no known secrets, nothing token-like, no control chars, short."""
    # Values shorter than this cannot be real secrets, and cutting them out would shred the text.
    for secret in sorted((s for s in secrets if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _TOKEN_LIKE.sub(REDACTED, text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > _MAX_QUOTED:
        text = text[: _MAX_QUOTED - 1] + "…"
    return text


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None when absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_http_date(value, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until_http_date(value: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def _json_or_none(response: httpx.Response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def json_object(provider: str, call: Call, response: httpx.Response) -> JsonObject:
    """The response body as a JSON object, or ``ProviderError`` (never quoting the body) when it is not one."""
    answer = _json_or_none(response)
    if not isinstance(answer, dict):
        raise ProviderError(
            provider, f"{call.label} answered with something other than a JSON object", status=response.status_code
        )
    return answer


def json_list(provider: str, call: Call, response: httpx.Response) -> list[Any]:
    """The response body as a JSON array, or ``ProviderError`` when it is not one."""
    answer = _json_or_none(response)
    if not isinstance(answer, list):
        raise ProviderError(
            provider, f"{call.label} answered with something other than a JSON array", status=response.status_code
        )
    return answer


def optional_str(answer: Mapping[str, Any], key: str) -> str | None:
    """``answer[key]`` as a string (numbers are converted: ids are often numeric); None when absent/empty."""
    value = answer.get(key)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value)
        return text or None
    return None
