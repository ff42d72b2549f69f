"""The lean HTTP/1.1 transport against a real loopback server that answers exactly as scripted."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from grantctl.maintenance._transport import LeanTransport, lean_transport_usable

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """Reads one request head (and a Content-Length body) at a time; ``handler`` writes the answer."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lengths = [
                    line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
                ]
                length = int(lengths[0]) if lengths else 0
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(request)
                if not await self.handler(request, reader, writer):
                    return
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[Server, str]]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


def respond(body: bytes, *headers: bytes, status: bytes = b"200 OK", keep: bool = True) -> Handler:
    async def handler(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        lines = [b"HTTP/1.1 " + status, *headers]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        return keep

    return handler


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport(ssl.create_default_context()))


def run(coroutine: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 20))  # type: ignore[arg-type]


def test_requests_share_one_keep_alive_connection_and_arrive_intact() -> None:
    async def main() -> None:
        handler = respond(b'{"ok": true}', b"Content-Length: 12", b"Content-Type: application/json")
        async with serving(handler) as (server, url), client() as http:
            first = await http.post(f"{url}/connect/token?x=1", data={"grant_type": "refresh_token"})
            second = await http.get(f"{url}/connections", headers={"Authorization": "Bearer abc"})
        assert first.status_code == second.status_code == 200
        assert first.json() == {"ok": True}
        assert server.connections == 1
        post, get = server.requests
        assert post.startswith(b"POST /connect/token?x=1 HTTP/1.1\r\n")
        assert post.endswith(b"\r\n\r\ngrant_type=refresh_token")
        assert b"\r\nHost: 127.0.0.1:" in post
        assert get.startswith(b"GET /connections HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Bearer abc\r\n" in get

    run(main())


def test_chunked_and_gzip_bodies_are_read_and_decoded() -> None:
    payload = gzip.compress(b'{"tenants": []}')
    chunked = b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(payload), payload)

    async def main() -> None:
        handler = respond(chunked, b"Transfer-Encoding: chunked", b"Content-Encoding: gzip")
        async with serving(handler) as (server, url), client() as http:
            response = await http.get(url)
            again = await http.get(url)
        assert response.json() == again.json() == {"tenants": []}
        assert server.connections == 1

    run(main())


def test_a_body_ended_by_closing_or_connection_close_means_a_new_connection() -> None:
    async def main() -> None:
        async with serving(respond(b"until the end", keep=False)) as (server, url), client() as http:
            assert (await http.get(url)).text == "until the end"
            assert (await http.get(url)).text == "until the end"
        assert server.connections == 2
        handler = respond(b"ok", b"Content-Length: 2", b"Connection: close", keep=False)
        async with serving(handler) as (server, url), client() as http:
            await http.get(url)
            await http.get(url)
        assert server.connections == 2

    run(main())


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def main() -> None:
        async with serving(respond(b"ok", b"Content-Length: 2", keep=False)) as (server, url), client() as http:
            await http.get(url)
            await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
            assert (await http.get(url)).text == "ok"
        assert server.connections == 2

    run(main())


def test_failures_are_httpx_errors_that_providers_already_handle() -> None:
    async def hang(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def hang_up(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return False

    async def garbage(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        return False

    async def main() -> None:
        async with serving(hang) as (_, url), client() as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(url, timeout=0.2)
        async with serving(hang_up) as (_, url), client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await http.get(url)
        async with serving(garbage) as (_, url), client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="status line"):
                await http.get(url)
        listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        listener.close()
        await listener.wait_closed()
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")
            with pytest.raises(httpx.UnsupportedProtocol):
                await http.get("ftp://127.0.0.1/")

    run(main())


def test_after_a_failure_the_next_request_starts_a_fresh_connection() -> None:
    calls = 0

    async def flaky(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")  # and hangs up
            await writer.drain()
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return True

    async def main() -> None:
        async with serving(flaky) as (server, url), client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="middle of the body"):
                await http.get(url)
            assert (await http.get(url)).text == "ok"
        assert server.connections == 2

    run(main())


def test_a_proxy_in_the_environment_keeps_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert lean_transport_usable()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert not lean_transport_usable()
