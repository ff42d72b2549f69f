"""The Starlette app of ``grantctl serve`` (and the one-route app of ``grantctl connect``).

Routes: ``GET /connect/{token}`` (check the link, set the binding cookie, 302 to the provider),
``GET /callback`` (finish the consent, render the outcome page), ``GET /healthz`` (``ok``).

Every response carries the security headers; the access log (logger ``grantctl.server``) names the
route, never the path or query, because both carry bearer values (link tokens, codes, state).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantctl.links import SigningKey, load_signing_key
from grantctl.repo import Repo
from grantctl.server._flow import Clock, ConsentFlow, Decrypt, FlowResult, Redirect
from grantctl.server._oauthstate import STATE_TTL, cookie_name
from grantctl.server._pages import render, simple_page
from grantctl.state.base import StateStore

log = logging.getLogger("grantctl.server")

SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
_CALLBACK_PARAMS = ("state", "code", "error")
DEFAULT_HTTP_TIMEOUT = 20.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    repo: Repo,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Clock = utc_now,
    key: SigningKey | None = None,
    store: StateStore | None = None,
    decrypt: Decrypt | None = None,
) -> Starlette:
    """The link and callback server for ``repo``.

    ``key`` defaults to :func:`grantctl.links.load_signing_key`, ``store`` to the repo's state backend,
    ``http`` to a client this app opens and closes itself. ``app.state.flow`` is the consent flow.

    >>> app = create_app(find_repo())  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8080, access_log=False)  # doctest: +SKIP
    """
    owns_http = http is None
    client = http or httpx.AsyncClient(timeout=DEFAULT_HTTP_TIMEOUT)
    flow = ConsentFlow(
        repo,
        key=key or load_signing_key(repo),
        http=client,
        store=store or _open_store(repo),
        redirect_uri=repo.config.redirect_uri,
        clock=clock,
        decrypt=decrypt,
    )
    handlers = _Handlers(flow)
    routes = [
        Route("/connect/{token}", handlers.connect, methods=["GET"]),
        Route("/callback", handlers.callback, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return _starlette(routes, flow, client if owns_http else None)


def create_callback_app(flow: ConsentFlow, on_result: Callable[[FlowResult], None]) -> Starlette:
    """An app with only ``/callback`` and ``/healthz`` that reports each finished consent (``connect``)."""
    handlers = _Handlers(flow, on_result=on_result)
    routes = [Route("/callback", handlers.callback, methods=["GET"]), Route("/healthz", healthz, methods=["GET"])]
    return _starlette(routes, flow, None)


def _starlette(routes: list[Route], flow: ConsentFlow, owned_http: httpx.AsyncClient | None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned_http is not None:
                await owned_http.aclose()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard)],
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.state.flow = flow
    return app


def _open_store(repo: Repo) -> StateStore:
    from grantctl.state.registry import open_store  # deferred: the backend may pull in a database driver

    return open_store(repo)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


class _Handlers:
    def __init__(self, flow: ConsentFlow, *, on_result: Callable[[FlowResult], None] | None = None) -> None:
        self.flow = flow
        self.on_result = on_result
        redirect = urlsplit(flow.redirect_uri)
        self.cookie_path = redirect.path or "/"
        # Browsers drop Secure cookies over plain http (except on localhost), so only set it for https.
        self.cookie_secure = redirect.scheme == "https"

    async def connect(self, request: Request) -> Response:
        outcome = await self.flow.open_link(request.path_params["token"])
        if isinstance(outcome, FlowResult):
            return page(outcome)
        return self._redirect(outcome)

    def _redirect(self, redirect: Redirect) -> Response:
        response = RedirectResponse(redirect.authorize_url, status_code=302)
        if redirect.binding_secret is not None:
            response.set_cookie(
                redirect.cookie_name,
                redirect.binding_secret,
                max_age=int(STATE_TTL.total_seconds()),
                path=self.cookie_path,
                secure=self.cookie_secure,
                httponly=True,
                samesite="lax",
            )
        return response

    async def callback(self, request: Request) -> Response:
        result = await self.flow.finish(_single_params(request), request.cookies)
        response = page(result)
        if self.flow.bind_browser and result.connection:
            # The binding secret has done its job (or failed it): never leave it lying around.
            response.delete_cookie(
                cookie_name(result.connection),
                path=self.cookie_path,
                secure=self.cookie_secure,
                httponly=True,
                samesite="lax",
            )
        if self.on_result is not None:
            self.on_result(result)
        return response


def _single_params(request: Request) -> dict[str, str]:
    """The callback parameters; a parameter sent twice is dropped, which makes the visit invalid."""
    counts: dict[str, int] = {}
    values: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in _CALLBACK_PARAMS:
            counts[name] = counts.get(name, 0) + 1
            values[name] = value
    return {name: value for name, value in values.items() if counts[name] == 1}


def page(result: FlowResult) -> HTMLResponse:
    """The HTML response for ``result``."""
    return HTMLResponse(render(result), status_code=result.status)


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        body = simple_page(
            "Page not found", "There is nothing at this address. Open the link we sent you.", outcome="not-found"
        )
    elif status == 405:
        body = simple_page("Not allowed", "This address cannot be used like this.", outcome="method-not-allowed")
    else:
        body = simple_page("Something went wrong", "Please try again later.", outcome="error")
    return HTMLResponse(body, status_code=status)


def route_label(path: str) -> str:
    """What the access log says instead of the path (which may carry a link token)."""
    if path.startswith("/connect/"):
        return "/connect/{token}"
    if path in ("/callback", "/healthz"):
        return path
    return "(other path)"


class Guard:
    """ASGI middleware: security headers on every response, a route-only access log, and a last-resort
    error page that names no detail (an unexpected exception's text could quote anything)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 0}

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": _secured(message.get("headers", []))}
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception as exc:
            log.error("unexpected %s while serving %s", type(exc).__name__, route_label(scope["path"]))
            if status["code"] == 0:
                status["code"] = 500
                await _send_error_page(send_secured)
        log.info("%s %s %s", scope["method"], route_label(scope["path"]), status["code"])


def _secured(headers: Any) -> list[tuple[bytes, bytes]]:
    ours = {name.encode("latin-1") for name in SECURITY_HEADERS}
    kept = [(name, value) for name, value in headers if name.lower() not in ours]
    return kept + [(name.encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS.items()]


async def _send_error_page(send: Send) -> None:
    body = simple_page("Something went wrong", "Nothing was changed. Please try again later.", outcome="error")
    data = body.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
