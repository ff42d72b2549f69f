"""A lean HTTP/1.1 transport for httpx: one keep-alive connection, plain asyncio streams.

Why: ``refresh`` and ``health`` are CPU-bound, and httpx's default transport (httpcore on anyio,
with h11) spends ~400 us of CPU per request on this machine, against ~100 us for httpx's client
layer. Everything a provider call needs from the transport is small: send one request on a
keep-alive connection (TLS or not), read the status line, headers and a body framed by
``Content-Length``, ``chunked`` or the end of the connection. Done with asyncio streams, a request
costs a quarter of that. The client layer (URLs, auth, cookies, event hooks, decoding
``Content-Encoding``) stays httpx's own.

Each run client owns one :class:`LeanTransport` (see :mod:`grantctl.maintenance._context`), and
a client has at most one request in flight; the transport still serialises requests itself.
Failures are raised as httpx's own exceptions (``ConnectTimeout``, ``ReadTimeout``,
``ConnectError``, ``ReadError``, ``WriteError``, ``RemoteProtocolError``...), so callers see exactly
what the default transport raises. Requests through a proxy (``HTTPS_PROXY`` and friends) are not
handled here: :func:`lean_transport_usable` says when to keep httpx's default transport instead.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


def lean_transport_usable() -> bool:
    """False when the environment names a proxy: httpx's default transport handles those."""
    proxies = urllib.request.getproxies()
    return not any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over a single keep-alive connection (re-opened when the server closes it)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._origin: tuple[bytes, str, int] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole response (provider answers are small)."""
        timeouts = request.extensions.get("timeout", {})
        async with self._lock:
            try:
                return await self._exchange(request, timeouts)
            except BaseException:
                self._close()  # a half-read response leaves the connection unusable
                raise

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        self._close()

    async def _exchange(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response:
        reader, writer = await self._connection(request.url, timeouts.get("connect"))
        body = await request.aread()
        with _mapped(httpx.WriteError, httpx.WriteTimeout, request):
            writer.write(_request_head(request, len(body)) + body)
            async with asyncio.timeout(timeouts.get("write")):
                await writer.drain()
        with _mapped(httpx.ReadError, httpx.ReadTimeout, request):
            async with asyncio.timeout(timeouts.get("read")):
                status, reason, headers, keep_alive = _parse_head(await _read_head(reader, request), request)
                content, keep_alive = await _read_body(reader, request, status, headers, keep_alive)
        if not keep_alive:
            self._close()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def _connection(
        self, url: httpx.URL, connect_timeout: float | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        origin = (url.raw_scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        if self._writer is not None and (origin != self._origin or self._writer.is_closing()):
            self._close()
        if self._reader is not None and self._reader.at_eof():
            self._close()  # the server closed the idle connection
        if self._reader is None or self._writer is None:
            scheme, host, port = origin
            if scheme not in (b"http", b"https"):
                raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme.decode('ascii', 'replace')!r}")
            tls = self._ssl_context if scheme == b"https" else None
            with _mapped(httpx.ConnectError, httpx.ConnectTimeout, None):
                async with asyncio.timeout(connect_timeout):
                    self._reader, self._writer = await asyncio.open_connection(
                        host, port, ssl=tls, server_hostname=host if tls else None, limit=_MAX_HEADER_BYTES
                    )
            self._origin = origin
        return self._reader, self._writer

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _request_head(request: httpx.Request, body_length: int) -> bytes:
    """The request line and headers (httpx has set Host, Content-Length and the rest already)."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    has_length = False
    for name, value in request.headers.raw:
        has_length = has_length or name.lower() in (b"content-length", b"transfer-encoding")
        lines.append(name + b": " + value)
    if body_length and not has_length:
        lines.append(b"Content-Length: %d" % body_length)
    return b"\r\n".join(lines) + _HEADER_END


async def _read_head(reader: asyncio.StreamReader, request: httpx.Request) -> bytes:
    try:
        return await reader.readuntil(_HEADER_END)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            message = "Server disconnected without sending a response."
            raise httpx.RemoteProtocolError(message, request=request) from None
        raise httpx.RemoteProtocolError("Server disconnected in the middle of the headers.", request=request) from None
    except asyncio.LimitOverrunError:
        raise httpx.RemoteProtocolError("Response headers too long.", request=request) from None


def _parse_head(head: bytes, request: httpx.Request) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    lines = head[: -len(_HEADER_END)].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError("Malformed status line.", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError("Malformed response header.", request=request)
        headers.append((name, value.strip()))
    connection = b",".join(value for name, value in headers if name.lower() == b"connection").lower()
    keep_alive = b"close" not in connection and (version == b"HTTP/1.1" or b"keep-alive" in connection)
    return int(code), reason, headers, keep_alive


async def _read_body(
    reader: asyncio.StreamReader,
    request: httpx.Request,
    status: int,
    headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
) -> tuple[bytes, bool]:
    """The body bytes as framed (still content-encoded), and whether the connection can be reused."""
    if request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
        return b"", keep_alive
    encodings = [value.lower() for name, value in headers if name.lower() == b"transfer-encoding"]
    lengths = {value for name, value in headers if name.lower() == b"content-length"}
    try:
        if encodings:
            if encodings[-1].split(b",")[-1].strip() != b"chunked":
                return await reader.read(), False  # framed by the end of the connection
            return await _read_chunked(reader, request), keep_alive
        if lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise httpx.RemoteProtocolError("Invalid Content-Length.", request=request)
            return await reader.readexactly(int(next(iter(lengths)))), keep_alive
    except asyncio.IncompleteReadError:
        raise httpx.RemoteProtocolError("Server disconnected in the middle of the body.", request=request) from None
    return await reader.read(), False


async def _read_chunked(reader: asyncio.StreamReader, request: httpx.Request) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError("Malformed chunk size.", request=request) from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers: not needed
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise httpx.RemoteProtocolError("Malformed chunk.", request=request)


@contextmanager
def _mapped(
    error: type[httpx.TransportError], timeout: type[httpx.TimeoutException], request: httpx.Request | None
) -> Iterator[None]:
    """OS and TLS errors as ``error``, asyncio's timeout as ``timeout``: what httpcore raises."""
    try:
        yield
    except TimeoutError:
        raise timeout("timed out", request=request) from None
    except (OSError, ssl.SSLError, EOFError, asyncio.LimitOverrunError) as exc:
        raise error(type(exc).__name__, request=request) from None
