"""The built-in HTTP/1.1 server: an ``asyncio.Protocol`` fed by ``httptools``.

It answers plain requests through an application object and hands WebSocket
upgrade requests over to it together with the raw transport, so the
WebSocket layer takes the socket without another copy of the data.

An application is any object with::

    async def handle(self, request: Request) -> Response
    async def handle_upgrade(self, request: Request, conn: HTTPConnection) -> Response | None

``handle_upgrade`` (optional) receives requests with ``Upgrade: websocket``:
it returns a :class:`Response` to refuse, or takes the connection with
:meth:`HTTPConnection.detach` and returns None.

``begin_request(request)`` (optional, synchronous) is called as soon as a
request's head has arrived, with the :class:`Request` that ``handle`` gets
later (its body still empty); the request is marked disconnected if the
connection is lost before it is answered. Applications use it to see
requests that are still receiving their body.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from .._util import set_nodelay, writelines
from .headers import Headers, HeadMeter
from .request import Request, Response, status_line

__all__ = ["HTTPApp", "HTTPConnection", "HTTPServer", "Limits"]

logger = logging.getLogger("wsio.http")


class HTTPApp(Protocol):
    """What the built-in server calls."""

    def handle(self, request: Request) -> Awaitable[Response]:  # pragma: no cover - protocol
        """Answer a plain HTTP request."""
        ...


class Limits:
    """Limits of the built-in HTTP server, with their defaults.

    * ``max_header_size`` (64 KiB): request line + headers; larger gets 431.
    * ``max_body_size`` (16 MiB): request body; larger gets 413. Applications
      such as the Engine.IO server set their own, smaller limit.
    * ``request_timeout`` (10 s): time to receive a whole request once its
      first byte arrived (and to send the first request after connecting);
      slower clients get 408 and are disconnected (the slowloris defence).
    * ``keepalive_timeout`` (20 s): an idle keep-alive connection is closed.
    * ``max_connections`` (10 000): further connections are closed at once.
    * ``max_pipelined`` (8): requests queued behind one in progress before
      reading from that connection pauses.
    """

    __slots__ = (
        "keepalive_timeout",
        "max_body_size",
        "max_connections",
        "max_header_size",
        "max_pipelined",
        "request_timeout",
    )

    def __init__(
        self,
        *,
        max_header_size: int = 65536,
        max_body_size: int = 16 * 2**20,
        request_timeout: float = 10.0,
        keepalive_timeout: float = 20.0,
        max_connections: int | None = 10_000,
        max_pipelined: int = 8,
    ) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.request_timeout = request_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_connections = max_connections
        self.max_pipelined = max_pipelined


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class HTTPConnection(asyncio.Protocol):
    """One client connection of the built-in server."""

    __slots__ = (
        "_body",
        "_body_size",
        "_busy",
        "_closing",
        "_continue_pending",
        "_current",
        "_deadline",
        "_detached",
        "_drain_waiter",
        "_head_meter",
        "_head_request",
        "_head_size",
        "_headers",
        "_in_head",
        "_in_request",
        "_pending",
        "_queue",
        "_timer",
        "_timer_cb",
        "_upgrade_request",
        "_url",
        "_write_paused",
        "client",
        "loop",
        "parser",
        "scheme",
        "server",
        "transport",
    )

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._in_request = False
        self._in_head = False
        self._head_meter = HeadMeter()
        self._continue_pending = False
        self._queue: deque[Request] = deque()
        self._busy = False
        self._current: Request | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_cb: Any = None
        self._deadline = 0.0
        self._detached = False
        self._closing = False
        self._pending: list[bytes] = []
        self._upgrade_request: Request | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._head_request: Request | None = None

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        limit = server.limits.max_connections
        if limit is not None and len(server.connections) >= limit:
            logger.warning("connection limit (%d) reached: refusing a connection", limit)
            transport.abort()  # type: ignore[attr-defined]
            return
        server.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        set_nodelay(transport)
        self._set_timer(server.limits.request_timeout, self._on_request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._stop_timer()
        if self._head_request is not None:
            self._head_request.set_disconnected()
            self._head_request = None
        if self._current is not None:
            self._current.set_disconnected()
        for req in self._queue:
            req.set_disconnected()
        self._queue.clear()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._detached or self._upgrade_request is not None:
            self._pending.append(data)
            return
        # httptools holds an unfinished header line until it ends: count the
        # raw head too, so an endless header cannot grow memory.
        if self._in_head and self._head_meter.feed(data) > self.server.limits.max_header_size:
            self._send_error(431, "request header fields too large")
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            rest = data[offset:]
            if rest:
                self._pending.append(rest)
        except _HTTPError as exc:
            self._send_error(exc.status, exc.message)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _HTTPError):
                self._send_error(cause.status, cause.message)
            else:  # pragma: no cover - a bug in a callback
                logger.exception("HTTP parser callback failed")
                self._send_error(500, "internal error")
        except httptools.HttpParserError as exc:
            self._send_error(400, f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool | None:
        # Half-closed by the client: finish nothing more; close when idle.
        if not self._busy and not self._queue and self._upgrade_request is None:
            self.transport.close()
        return None

    # -- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_request = True
        self._in_head = True
        self._head_meter.reset()
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._body = []
        self._body_size = 0
        if self._timer is None or not self._busy:
            self._set_timer(self.server.limits.request_timeout, self._on_request_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self.server.limits.max_header_size:
            raise _HTTPError(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.server.limits.max_header_size:
            raise _HTTPError(431, "request header fields too large")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        length = None
        expect_continue = False
        for name, value in self._headers:
            lname = name.lower()
            if lname == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _HTTPError(400, "invalid Content-Length") from None
            elif lname == "expect" and value.strip().lower() == "100-continue":
                expect_continue = True
        if length is not None and length > self.server.limits.max_body_size:
            raise _HTTPError(
                413, f"request body larger than {self.server.limits.max_body_size} bytes"
            )
        self._in_head = False
        if expect_continue:
            if self._busy or self._queue:
                # Answer earlier pipelined requests first: 100 Continue must
                # not read as an interim response to one of them.
                self._continue_pending = True
            else:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        hook = self.server.begin_request
        if hook is not None:
            req = self._head_request = self._make_request(b"")
            try:
                hook(req)
            except Exception:  # pragma: no cover - a bug in the application
                logger.exception("begin_request failed for %s", req.target)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.limits.max_body_size:
            raise _HTTPError(
                413, f"request body larger than {self.server.limits.max_body_size} bytes"
            )
        self._body.append(body)

    def _make_request(self, body: bytes) -> Request:
        parser = self.parser
        url = httptools.parse_url(self._url) if self._url else None
        raw_path = url.path.decode("latin-1") if url is not None and url.path else "/"
        try:
            path = unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            path = raw_path
        query = url.query.decode("latin-1") if url is not None and url.query else ""
        return Request(
            parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            path,
            query,
            Headers(self._headers),
            http_version=parser.get_http_version(),
            body=body,
            client=self.client,
            scheme=self.scheme,
            keep_alive=parser.should_keep_alive(),
        )

    def on_message_complete(self) -> None:
        self._in_request = False
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        req = self._head_request
        if req is None:
            req = self._make_request(body)
        else:
            self._head_request = None
            req.body = body
            req.keep_alive = self.parser.should_keep_alive()
        self._body = []
        self._cancel_timer()
        if self.parser.should_upgrade() or _wants_websocket(req.headers):
            self._upgrade_request = req
            self.transport.pause_reading()
            if not self._busy:
                self._start_next()
            return
        self._queue.append(req)
        if len(self._queue) > self.server.limits.max_pipelined:
            self.transport.pause_reading()
        if not self._busy:
            self._start_next()

    # -- request processing --------------------------------------------------

    def _start_next(self) -> None:
        if self._queue:
            req = self._queue.popleft()
            self._busy = True
            self._current = req
            self.loop.create_task(self._serve(req))
        elif self._upgrade_request is not None:
            self._busy = True
            self.loop.create_task(self._serve_upgrade(self._upgrade_request))

    async def _serve(self, req: Request) -> None:
        try:
            resp = await self.server.app.handle(req)
        except Exception:
            logger.exception("error handling %s %s", req.method, req.target)
            resp = Response.text(500, "internal server error")
        if self.transport.is_closing():
            self._busy = False
            self._current = None
            return
        if self._write_paused:
            await self._drain()
        keep_alive = req.keep_alive and not self._closing
        self._write_response(req, resp, keep_alive)
        self._current = None
        self._busy = False
        if not keep_alive:
            self.transport.close()
            return
        if len(self._queue) <= self.server.limits.max_pipelined:
            try:
                self.transport.resume_reading()
            except (RuntimeError, AttributeError):  # pragma: no cover
                pass
        if self._queue or self._upgrade_request is not None:
            self._start_next()
            return
        if self._continue_pending:
            self._continue_pending = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not self._in_request:
            self._set_timer(self.server.limits.keepalive_timeout, self._on_idle_timeout)

    async def _serve_upgrade(self, req: Request) -> None:
        handler = getattr(self.server.app, "handle_upgrade", None)
        try:
            if handler is None:
                resp: Response | None = await self.server.app.handle(req)
            else:
                resp = await handler(req, self)
        except Exception:
            logger.exception("error handling upgrade %s", req.target)
            resp = Response.text(500, "internal server error")
        if resp is not None and not self._detached:
            self._write_response(req, resp, keep_alive=False)
            self.transport.close()

    async def _drain(self) -> None:
        if not self._write_paused or self.transport.is_closing():
            return
        waiter = self.loop.create_future()
        self._drain_waiter = waiter
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def _write_response(self, req: Request, resp: Response, keep_alive: bool) -> None:
        body = resp.body
        lines = [f"{name}: {value}\r\n" for name, value in resp.headers]
        lines.append(f"Content-Length: {len(body)}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n\r\n")
        elif req.http_version == "1.0":
            lines.append("Connection: keep-alive\r\n\r\n")
        else:
            lines.append("\r\n")
        head = status_line(resp.status) + "".join(lines).encode("latin-1")
        if req.method == "HEAD":
            body = b""
        if len(body) < 16384:
            self.transport.write(head + body)
        else:
            writelines(self.transport, [head, body])

    def _send_error(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        logger.info("HTTP %d for %s: %s", status, self.client, message)
        body = message.encode()
        self.transport.write(
            status_line(status)
            + b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()

    # -- timers --------------------------------------------------------------

    # One lazily re-armed timer per connection: setting or clearing a deadline
    # (twice per request) costs an attribute write, not a call_later/cancel.

    def _set_timer(self, delay: float, callback: Any) -> None:
        deadline = self.loop.time() + delay
        self._deadline = deadline
        self._timer_cb = callback
        timer = self._timer
        if timer is None:
            self._timer = self.loop.call_at(deadline, self._on_timer)
        elif timer.when() > deadline:
            timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        self._timer_cb = None

    def _stop_timer(self) -> None:
        self._timer_cb = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        callback = self._timer_cb
        if callback is None:
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        self._timer_cb = None
        callback()

    def _on_request_timeout(self) -> None:
        self._timer = None
        if self._detached or self.transport.is_closing():
            return
        if self._in_request or (not self._busy and not self._queue):
            if self._in_request:
                self._send_error(408, "request timeout")
            else:
                self.transport.close()

    def _on_idle_timeout(self) -> None:
        self._timer = None
        if not self._busy and not self._queue and not self._in_request and not self._detached:
            self.transport.close()

    # -- upgrade hand-over ---------------------------------------------------

    def detach(self) -> bytes:
        """Give the connection away (after an accepted upgrade).

        Returns the bytes received after the request head; the caller installs
        its own protocol with ``transport.set_protocol`` and resumes reading.
        """
        self._detached = True
        self._stop_timer()
        self.server.connections.discard(self)
        pending = b"".join(self._pending)
        self._pending = []
        return pending

    def close(self) -> None:
        """Close the connection once the response in progress (if any) is sent."""
        self._closing = True
        if not self._busy and not self._queue:
            self.transport.close()


def _wants_websocket(headers: Headers) -> bool:
    value = headers.get("upgrade")
    return value is not None and "websocket" in value.lower()


class HTTPServer:
    """Listens on a socket and serves an application with :class:`HTTPConnection`."""

    def __init__(self, app: Any, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.begin_request: Callable[[Request], Any] | None = getattr(app, "begin_request", None)
        self.connections: set[HTTPConnection] = set()
        self._servers: list[asyncio.base_events.Server] = []

    async def listen(
        self,
        host: str | list[str] | None = "127.0.0.1",
        port: int = 0,
        *,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> None:
        """Start listening (``port=0`` picks a free port: see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(
                lambda: HTTPConnection(self), sock=sock, ssl=ssl, backlog=backlog
            )
        else:
            server = await loop.create_server(
                lambda: HTTPConnection(self),
                host,
                port,
                ssl=ssl,
                reuse_port=reuse_port or None,
                backlog=backlog,
            )
        self._servers.append(server)

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets."""
        return [s for srv in self._servers for s in (srv.sockets or ())]

    @property
    def port(self) -> int:
        """The port of the first listening socket."""
        return int(self.sockets[0].getsockname()[1])

    async def close(self, *, wait: bool = True) -> None:
        """Stop listening and close the plain HTTP connections when idle.

        With ``wait`` (the default), then wait (at most 5 s) until every
        connection the listeners accepted is gone (see :meth:`wait_closed`). A
        layer that owns upgraded connections passes ``wait=False``, closes
        them, then awaits :meth:`wait_closed`: since Python 3.12 that waits for
        the upgraded connections too.
        """
        for srv in self._servers:
            srv.close()
        for conn in list(self.connections):
            conn.close()
        if wait:
            await self.wait_closed()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait (at most *timeout* seconds) until the listeners closed by :meth:`close`
        have no connection left; then forget them."""
        for srv in self._servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), timeout)
            except TimeoutError:
                logger.warning("connections still open %.0f s after the server closed", timeout)
        self._servers = []
