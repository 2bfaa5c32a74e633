"""The asyncio WebSocket client: ``async with connect(url) as ws:``."""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .._util import set_nodelay
from ..http.headers import Headers
from .connection import WebSocket
from .deflate import DeflateOptions
from .exceptions import InvalidHandshake, InvalidResponse, InvalidURI
from .handshake import build_request, generate_key, parse_response_head, validate_response
from .protocol import Protocol, Side
from .server import resolve_compression

__all__ = ["connect", "parse_uri"]


def parse_uri(uri: str) -> tuple[bool, str, int, str, str]:
    """Split a ws:// or wss:// URL into ``(secure, host, port, resource, host_header)``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"{uri!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(f"{uri!r} is not a ws:// or wss:// URL")
    if not parts.hostname:
        raise InvalidURI(f"{uri!r} has no host")
    if parts.username or parts.password:
        raise InvalidURI(f"{uri!r}: credentials in the URL are not supported")
    secure = parts.scheme == "wss"
    host = parts.hostname
    default_port = 443 if secure else 80
    port = port or default_port
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    host_header = f"[{host}]" if ":" in host else host
    if port != default_port:
        host_header += f":{port}"
    return secure, host, port, resource, host_header


class _Handshake(asyncio.Protocol):
    """Sends the upgrade request and reads the response head."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = bytearray()
        self.done: asyncio.Future[tuple[int, Headers, bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self.transport: asyncio.Transport | None = None
        self.head: tuple[int, str, Headers, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.done.done():
            return
        try:
            if self.head is None:
                self.head = parse_response_head(self.buffer)
                if self.head is None:
                    return
            status, _reason, headers, size = self.head
            if status == 101:
                assert self.transport is not None
                self.transport.pause_reading()
                self.done.set_result((status, headers, bytes(self.buffer[size:])))
                return
            # A refusal: read its body (bounded) for the error message.
            length = headers.get("Content-Length")
            body = bytes(self.buffer[size:])
            if length is not None and length.isdigit() and len(body) < min(int(length), 65536):
                return
            self.done.set_result((status, headers, body[:65536]))
        except InvalidResponse as exc:
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if self.head is not None and self.head[0] != 101:
                status, _reason, headers, size = self.head
                self.done.set_result((status, headers, bytes(self.buffer[size:])))
            else:
                self.done.set_exception(
                    InvalidResponse("connection closed during the opening handshake")
                )


class connect:
    """Open a WebSocket connection: ``ws = await connect(url)`` or ``async with connect(url) as ws``.

    Options: ``subprotocols`` to offer, ``compression`` ("deflate", None or
    :class:`DeflateOptions`), ``extra_headers``, ``origin``, ``open_timeout``
    (10 s for TCP + TLS + handshake), ``ssl`` (an SSLContext; wss:// URLs get
    the default verifying context), ``server_hostname``, ``sock`` (an
    already connected socket), and the per-connection options ``max_size``,
    ``max_queue``, ``write_limit``, ``ping_interval``, ``ping_timeout``,
    ``close_timeout`` documented on :class:`~wsio.websocket.server.ServerOptions`.
    """

    def __init__(
        self,
        uri: str,
        *,
        subprotocols: Sequence[str] = (),
        compression: str | DeflateOptions | None = "deflate",
        extra_headers: Sequence[tuple[str, str]] = (),
        origin: str | None = None,
        open_timeout: float | None = 10.0,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        sock: socket.socket | None = None,
        max_size: int | None = 2**20,
        max_queue: int | None = 16,
        write_limit: int = 65536,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        user_agent: str | None = "wsio",
    ) -> None:
        self.uri = uri
        self.subprotocols = list(subprotocols)
        self.compression = resolve_compression(compression)
        self.extra_headers = list(extra_headers)
        self.origin = origin
        self.open_timeout = open_timeout
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.sock = sock
        self.max_size = max_size
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.user_agent = user_agent
        self._ws: WebSocket | None = None

    async def _connect(self) -> WebSocket:
        secure, host, port, resource, host_header = parse_uri(self.uri)
        ctx: ssl_module.SSLContext | None
        if isinstance(self.ssl, ssl_module.SSLContext):
            ctx = self.ssl
        elif self.ssl is False:
            ctx = None
        elif secure or self.ssl is True:
            ctx = ssl_module.create_default_context()
        else:
            ctx = None
        key = generate_key()
        request = build_request(
            host_header,
            resource,
            key,
            origin=self.origin,
            subprotocols=self.subprotocols,
            compression=self.compression,
            extra_headers=self.extra_headers,
            user_agent=self.user_agent,
        )
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {"ssl": ctx}
        if ctx is not None:
            kwargs["server_hostname"] = self.server_hostname or host
        if self.sock is not None:
            kwargs["sock"] = self.sock
        else:
            kwargs["host"] = host
            kwargs["port"] = port

        async def handshake() -> WebSocket:
            transport, hs = await loop.create_connection(lambda: _Handshake(request), **kwargs)
            try:
                status, headers, rest = await hs.done
                subprotocol, deflate = validate_response(
                    status,
                    headers,
                    key,
                    subprotocols=self.subprotocols,
                    compression=self.compression,
                    body=rest,
                )
            except BaseException:
                transport.abort()
                raise
            proto = Protocol(Side.CLIENT, max_size=self.max_size, deflate=deflate)
            ws = WebSocket(
                proto,
                path=urlsplit(self.uri).path or "/",
                response_headers=headers,
                subprotocol=subprotocol,
                max_queue=self.max_queue,
                write_limit=self.write_limit,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
            )
            set_nodelay(transport)
            ws.attach(transport, rest)
            return ws

        try:
            if self.open_timeout is None:
                return await handshake()
            return await asyncio.wait_for(handshake(), self.open_timeout)
        except TimeoutError:
            raise InvalidHandshake(f"timed out connecting to {self.uri}") from None

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def __aenter__(self) -> WebSocket:
        self._ws = await self._connect()
        return self._ws

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
