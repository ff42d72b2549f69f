"""``grantctl connect NAME [--port P]``: authorise a connection yourself, from this machine.

For an engineer who can sign in to the client's organisation (like Xero's ``xoauth``): a one-shot
server on ``127.0.0.1:P`` (and ``[::1]:P`` when available) answers ``http://localhost:P/callback``,
the authorize URL is printed (and opened in a browser when asked), and the first answer for this
consent is handled exactly as the callback server handles it: same checks, same organisation rule,
same state written. The app must list ``http://localhost:P/callback`` as a redirect URI.

No link signing key is needed: the ``state`` is signed with a random key that lives only as long as
this command. There is no browser-binding cookie either (the URL is printed to the engineer's own
terminal, and the server only listens on loopback for one consent).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import sys
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from grantctl.catalogue import describe
from grantctl.commands import Outcome
from grantctl.commands.link import load_connection
from grantctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, GrantctlError
from grantctl.links import SigningKey
from grantctl.models import Connection
from grantctl.repo import Repo
from grantctl.server import ConsentFlow, FlowResult, create_callback_app
from grantctl.state.base import StateStore

DEFAULT_TIMEOUT_SECONDS = 300.0
# The answers that end the wait: everything about OUR consent. A stray request (a browser probing
# /callback without a state) or a replay does not.
FINAL_KINDS = frozenset(
    {"connected", "wrong-organization", "denied", "provider-error", "storage-error", "setup-error", "other-browser"}
)


def run_connect(
    repo: Repo,
    name: str,
    *,
    port: int,
    open_browser: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    announce: Callable[[str], None] | None = None,
    http: httpx.AsyncClient | None = None,
    store: StateStore | None = None,
) -> Outcome:
    """Run one consent for ``name`` through a local callback server; the outcome says what happened.

    ``announce`` receives the instructions with the authorize URL (default: stderr). Port 0 picks a
    free port (useful in tests; a real app needs the exact redirect URI registered).

    Example::

        grantctl connect acme-ltd --port 8765 --open
    """
    connection = load_connection(repo, name)
    if timeout <= 0:
        raise GrantctlError("the timeout must be longer than zero seconds")
    sockets = _listen(port)
    actual_port = sockets[0].getsockname()[1]
    try:
        return asyncio.run(
            _consent(
                repo,
                connection,
                sockets=sockets,
                redirect_uri=f"http://localhost:{actual_port}/callback",
                timeout=timeout,
                announce=announce or _to_stderr,
                open_browser=open_browser,
                http=http,
                store=store,
            )
        )
    finally:
        for sock in sockets:
            sock.close()


async def _consent(
    repo: Repo,
    connection: Connection,
    *,
    sockets: list[socket.socket],
    redirect_uri: str,
    timeout: float,
    announce: Callable[[str], None],
    open_browser: bool,
    http: httpx.AsyncClient | None,
    store: StateStore | None,
) -> Outcome:
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(httpx.AsyncClient(timeout=20.0))
        flow = ConsentFlow(
            repo,
            key=SigningKey(secrets.token_bytes(32), "a one-time key of grantctl connect"),
            http=client,
            store=store or _open_store(repo),
            redirect_uri=redirect_uri,
            clock=lambda: datetime.now(UTC),
            bind_browser=False,
            offer_links=False,
            retry_hint=f"Run `grantctl connect {connection.name}` again.",
        )
        redirect = await flow.begin(connection)
        answered: asyncio.Future[FlowResult] = asyncio.get_running_loop().create_future()

        def on_result(result: FlowResult) -> None:
            if result.kind in FINAL_KINDS and not answered.done():
                answered.set_result(result)

        server = _server(create_callback_app(flow, on_result))
        serving = asyncio.create_task(server.serve(sockets=sockets))
        try:
            await _started(server, serving)
            announce(_instructions(connection, redirect.authorize_url, redirect_uri, timeout))
            if open_browser:
                await asyncio.to_thread(webbrowser.open, redirect.authorize_url)
            done, _ = await asyncio.wait({answered, serving}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            await serving
        if answered in done:
            return outcome_of(answered.result())
        if serving in done:
            return Outcome(notes=["interrupted: nothing was stored"], exit_code=EXIT_INTERRUPTED)
        raise GrantctlError(
            f"{connection.name}: no answer arrived at {redirect_uri} within {timeout:g} seconds; nothing was stored. "
            "Run the command again and finish the consent in the browser"
        )
    raise AssertionError("unreachable")  # pragma: no cover - the exit stack re-raises or returns


def _listen(port: int) -> list[socket.socket]:
    """Loopback listening sockets: IPv4 always, IPv6 on the same port when the host has it."""
    if not 0 <= port <= 65535:
        raise GrantctlError(f"--port {port}: choose a port between 1 and 65535")
    first = _bind(socket.AF_INET, "127.0.0.1", port)
    if first is None:
        raise GrantctlError(f"port {port} on 127.0.0.1 is in use or not allowed: choose another with --port")
    sockets = [first]
    second = _bind(socket.AF_INET6, "::1", first.getsockname()[1])
    if second is not None:
        sockets.append(second)
    return sockets


def _bind(family: socket.AddressFamily, host: str, port: int) -> socket.socket | None:
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


def _server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # paths and queries carry the code and state
        lifespan="off",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


async def _started(server: Any, serving: asyncio.Task[None]) -> None:
    """Wait until uvicorn listens (or fails to start)."""
    while not server.started:
        if serving.done():
            serving.result()
            raise GrantctlError("the local callback server stopped before it started")
        await asyncio.sleep(0.01)


def _open_store(repo: Repo) -> StateStore:
    from grantctl.state.registry import open_store

    return open_store(repo)


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _instructions(connection: Connection, url: str, redirect_uri: str, timeout: float) -> str:
    return "\n".join(
        [
            f"Open this URL in a browser, sign in to {connection.spec.provider} and pick "
            f"{connection.spec.organization.name} (only that one):",
            "",
            url,
            "",
            f"Waiting up to {timeout:g} seconds for the answer at {redirect_uri} "
            "(the app must list this exact redirect URI) ...",
        ]
    )


def outcome_of(result: FlowResult) -> Outcome:
    """The command's output for a finished consent."""
    if result.ok:
        return Outcome("\n".join(_connected_lines(result)))
    return Outcome("\n".join(_failed_lines(result)), exit_code=EXIT_ERROR)


def _connected_lines(result: FlowResult) -> list[str]:
    lines = [f"connected {result.connection}: {result.tenant}", "granted:"]
    provider = result.provider or ""
    lines += [f"  {scope}  ({describe(provider, scope) if provider else scope})" for scope in result.granted]
    if result.released:
        lines.append(f"also picked and disconnected again: {', '.join(result.released)}")
    if result.missing:
        lines.append(f"not granted (wanted by the manifest): {', '.join(result.missing)}")
    lines.append(f"state written for {result.connection}; commit it")
    return lines


_FAILURES = {
    "wrong-organization": "the organisation picked is not {organisation}; it was disconnected again",
    "denied": "the consent was cancelled",
    "provider-error": "the provider did not complete the connection",
    "storage-error": "the grant could not be saved",
    "setup-error": "the connection is not set up correctly (manifest, credentials file or provider settings)",
    "other-browser": "the consent took longer than allowed",
}


def _failed_lines(result: FlowResult) -> list[str]:
    reason = _FAILURES.get(result.kind, result.kind).format(organisation=result.organisation)
    lines = [f"not connected {result.connection}: {reason}; nothing was stored"]
    if result.ticked:
        lines.append(f"picked: {', '.join(result.ticked)}")
    if result.not_released:
        lines.append(f"could NOT disconnect: {', '.join(result.not_released)}; remove them in the provider's settings")
    if result.detail:
        lines.append(f"detail: {result.detail}")
    return lines


__all__ = ["DEFAULT_TIMEOUT_SECONDS", "outcome_of", "run_connect"]
