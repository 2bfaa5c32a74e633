"""The asyncio WebSocket server: ``serve(handler, host, port, **options)``."""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..http.request import Request, Response
from ..http.server import HTTPConnection, HTTPServer, Limits
from .connection import WebSocket
from .deflate import DeflateOptions
from .exceptions import ConnectionClosed, InvalidRequest, NegotiationError
from .handshake import SubprotocolSelector, validate_request
from .protocol import Protocol, Side

__all__ = ["ServerOptions", "WebSocketServer", "accept", "resolve_compression", "serve"]

logger = logging.getLogger("wsio.websocket")

Handler = Callable[[WebSocket], Awaitable[Any]]
ProcessRequest = Callable[[Request], "Response | Awaitable[Response | None] | None"]


def resolve_compression(compression: str | DeflateOptions | None) -> DeflateOptions | None:
    """``"deflate"`` -> default :class:`DeflateOptions`, None -> no compression."""
    if compression is None:
        return None
    if compression == "deflate":
        return DeflateOptions()
    if isinstance(compression, DeflateOptions):
        return compression
    raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")


@dataclass(slots=True)
class ServerOptions:
    """Per-connection options of a WebSocket server, with their defaults.

    * ``max_size`` (1 MiB): largest incoming message, after decompression;
      bigger ones close the connection with 1009. None: no limit.
    * ``max_queue`` (16): received messages buffered before reading pauses.
      Worst-case memory per connection is about ``max_size * max_queue``.
    * ``write_limit`` (64 KiB): write-buffer high-water mark; ``send`` waits above it.
    * ``compression`` ("deflate"): accept permessage-deflate when a client
      offers it (see :mod:`wsio.websocket.deflate` for the memory cost); None refuses it.
    * ``ping_interval`` / ``ping_timeout`` (20 s / 20 s): keepalive pings;
      a connection that answers none within the timeout is closed with 1011.
      None disables them.
    * ``close_timeout`` (10 s): how long the closing handshake may take.
    * ``subprotocols``: supported subprotocols in order of preference, or a
      function picking one from the client's list.
    * ``origins``: allowed ``Origin`` values (None in the list allows requests
      without one); others get 403. None: any origin.
    * ``extra_headers``: headers added to the 101 response.
    """

    max_size: int | None = 2**20
    max_queue: int | None = 16
    write_limit: int = 65536
    compression: DeflateOptions | None = field(default_factory=DeflateOptions)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    subprotocols: Sequence[str] | SubprotocolSelector | None = None
    origins: Sequence[str | None] | None = None
    extra_headers: Sequence[tuple[str, str]] = ()


def accept(request: Request, conn: HTTPConnection, options: ServerOptions) -> WebSocket:
    """Accept a WebSocket upgrade request on the built-in server.

    Validates the request, answers 101, and moves the connection to a new
    :class:`WebSocket`. Raises :class:`InvalidRequest` (with the HTTP status
    to answer) when the request cannot be accepted.
    """
    if options.origins is not None:
        origin = request.headers.get("Origin")
        if origin not in options.origins:
            raise InvalidRequest(f"origin not allowed: {origin}", 403)
    try:
        hs = validate_request(
            request.method,
            request.http_version,
            request.headers,
            subprotocols=options.subprotocols,
            compression=options.compression,
        )
    except NegotiationError as exc:
        raise InvalidRequest(str(exc), 400) from None
    hs.extra_headers = list(options.extra_headers)
    proto = Protocol(Side.SERVER, max_size=options.max_size, deflate=hs.deflate)
    ws = WebSocket(
        proto,
        path=request.path,
        request_headers=request.headers,
        subprotocol=hs.subprotocol,
        max_queue=options.max_queue,
        write_limit=options.write_limit,
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        close_timeout=options.close_timeout,
    )
    ws.request = request
    transport = conn.transport
    initial = conn.detach()
    transport.write(hs.response())
    ws.attach(transport, initial)
    return ws


class WebSocketServer:
    """A WebSocket server on the built-in HTTP server.

    Use :func:`serve`. ``close()`` stops accepting, closes every connection
    with 1001 (going away) and waits for the handlers to finish.
    """

    def __init__(
        self,
        handler: Handler,
        options: ServerOptions,
        *,
        process_request: ProcessRequest | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.handler = handler
        self.options = options
        self.process_request = process_request
        self.http = HTTPServer(self, limits)
        self.connections: set[WebSocket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed: asyncio.Event = asyncio.Event()

    # -- HTTP application --------------------------------------------------------

    async def _process(self, request: Request) -> Response | None:
        if self.process_request is None:
            return None
        result = self.process_request(request)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handle(self, request: Request) -> Response:
        """Plain HTTP requests: ``process_request`` or 426 Upgrade Required."""
        response = await self._process(request)
        if response is not None:
            return response
        return Response.text(
            426,
            "this endpoint speaks WebSocket: send Upgrade: websocket\n",
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )

    async def handle_upgrade(self, request: Request, conn: HTTPConnection) -> Response | None:
        """Upgrade requests: hook, checks, then the handler in its own task."""
        response = await self._process(request)
        if response is not None:
            return response
        if self._closing:
            return Response.text(503, "server shutting down\n")
        limit = self.http.limits.max_connections
        if limit is not None and len(self.connections) >= limit:
            # Upgraded connections leave the HTTP server's count: this one holds them.
            logger.warning("connection limit (%d) reached: refusing a WebSocket handshake", limit)
            return Response.text(503, "too many connections\n", [("Retry-After", "1")])
        try:
            ws = accept(request, conn, self.options)
        except InvalidRequest as exc:
            logger.info("refused WebSocket handshake from %s: %s", request.client, exc)
            return Response.text(exc.status, f"{exc}\n", exc.headers)
        self.connections.add(ws)
        task = asyncio.get_running_loop().create_task(self._run(ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _run(self, ws: WebSocket) -> None:
        try:
            await self.handler(ws)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("WebSocket handler failed for %s", ws.path)
            if ws.open:
                try:
                    await ws.close(1011, "internal error")
                except Exception:  # pragma: no cover
                    ws.abort()
        else:
            if ws.open:
                await ws.close(1000)
        finally:
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.wait_closed(), ws.close_timeout)
                except TimeoutError:  # pragma: no cover
                    ws.abort()
            self.connections.discard(ws)

    # -- lifecycle ---------------------------------------------------------------

    async def start(
        self,
        host: str | list[str] | None = "127.0.0.1",
        port: int = 0,
        *,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Start listening."""
        await self.http.listen(host, port, ssl=ssl, sock=sock, reuse_port=reuse_port)

    @property
    def port(self) -> int:
        """The listening port (useful with ``port=0``)."""
        return self.http.port

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets."""
        return self.http.sockets

    async def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop accepting, close every connection with *code*, wait for handlers."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        await self.http.close(wait=False)
        closers = [ws.close(code, reason) for ws in list(self.connections)]
        if closers:
            await asyncio.gather(*closers, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.options.close_timeout)
            for task in pending:
                task.cancel()
        await self.http.wait_closed()
        self._closed.set()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` finished."""
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def __aenter__(self) -> WebSocketServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class serve:
    """Start a WebSocket server: ``server = await serve(handler, host, port)``.

    Also an async context manager: ``async with serve(handler, "127.0.0.1", 8765) as server:``.
    Keyword options are those of :class:`ServerOptions` plus ``process_request``
    (a hook for plain HTTP requests and upgrades: return a Response to answer
    instead), ``ssl``, ``sock``, ``reuse_port``, ``max_connections``,
    ``open_timeout`` (time allowed for the opening handshake, 10 s) and
    ``limits`` (:class:`~wsio.http.server.Limits` of the HTTP layer).
    """

    def __init__(
        self,
        handler: Handler,
        host: str | list[str] | None = "127.0.0.1",
        port: int = 0,
        *,
        max_size: int | None = 2**20,
        max_queue: int | None = 16,
        write_limit: int = 65536,
        compression: str | DeflateOptions | None = "deflate",
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        open_timeout: float = 10.0,
        subprotocols: Sequence[str] | SubprotocolSelector | None = None,
        origins: Sequence[str | None] | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        process_request: ProcessRequest | None = None,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
        max_connections: int | None = 10_000,
        limits: Limits | None = None,
    ) -> None:
        options = ServerOptions(
            max_size=max_size,
            max_queue=max_queue,
            write_limit=write_limit,
            compression=resolve_compression(compression),
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            subprotocols=subprotocols,
            origins=origins,
            extra_headers=extra_headers,
        )
        if limits is None:
            limits = Limits(request_timeout=open_timeout, max_connections=max_connections)
        self.server = WebSocketServer(
            handler, options, process_request=process_request, limits=limits
        )
        self._listen = dict(host=host, port=port, ssl=ssl, sock=sock, reuse_port=reuse_port)

    async def _start(self) -> WebSocketServer:
        await self.server.start(**self._listen)  # type: ignore[arg-type]
        return self.server

    def __await__(self) -> Any:
        return self._start().__await__()

    async def __aenter__(self) -> WebSocketServer:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()
