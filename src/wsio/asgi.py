"""Engine.IO and Socket.IO servers as an ASGI 3 application.

``ASGIApp(server)`` (or ``server.asgi_app()``) runs a :class:`wsio.engineio.Server`
(and the Socket.IO server built on it) under any ASGI server, such as uvicorn
or hypercorn, and next to another ASGI application::

    app = FastAPI()
    eio = wsio.engineio.Server(cors_allowed_origins=["https://example.com"])
    asgi = wsio.asgi.ASGIApp(eio, other_app=app)   # uvicorn module:asgi

Requests on the server's path (``/engine.io/`` or ``/socket.io/``) are
answered by the server; other paths go to static files (when given and a file
matches), then to ``other_app``, then get 404. ``lifespan`` is supported: at
shutdown every session is closed (and ``other_app`` gets the lifespan events
too).

What the ASGI server owns
-------------------------

Under ASGI the WebSocket connection and the HTTP connection belong to the
ASGI server, so some options of the built-in server are the ASGI server's
settings instead:

* **WebSocket compression**: permessage-deflate is negotiated by the ASGI
  server (uvicorn: ``--ws-per-message-deflate``, on by default), not by the
  Engine.IO ``per_message_deflate`` option, which has no effect here.
* **Size limits**: the ASGI server's own WebSocket message limit applies
  first (uvicorn: ``--ws-max-size``, 16 MiB); the adapter then closes a
  WebSocket whose message exceeds ``max_http_buffer_size`` with 1009, and
  answers an HTTP body larger than ``max_http_buffer_size`` with 413 without
  reading further.
* **Keepalive and timeouts**: WebSocket-level pings (uvicorn:
  ``--ws-ping-interval`` / ``--ws-ping-timeout``), HTTP keep-alive and
  connection limits are the ASGI server's. Engine.IO's own heartbeat
  (``ping_interval`` / ``ping_timeout``) works the same as on the built-in
  server.
* **Abandoned long-polls** are noticed through the ``http.disconnect``
  event; an ASGI server waits for pending long-polls (at most one ping
  interval) before it runs the lifespan shutdown.

Responses always carry ``Content-Length`` (never chunked), so HTTP/1.0
clients and proxies are served correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from .http.headers import Headers
from .http.request import Request, Response
from .http.static import StaticFiles
from .websocket.exceptions import ConnectionClosedError

if TYPE_CHECKING:
    from .engineio.server import Server

__all__ = ["ASGIApp", "ASGIWebSocket"]

logger = logging.getLogger("wsio.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Data = str | bytes


class ASGIApp:
    """An ASGI 3 application serving *server* (an Engine.IO or Socket.IO server).

    ``other_app``: an ASGI application for every other path (and its
    lifespan events). ``static_files``: ``{"/": "index.html", "/static":
    "dir"}``, served before ``other_app`` when a file matches.
    """

    def __init__(
        self,
        server: Server,
        other_app: Callable[..., Awaitable[None]] | None = None,
        static_files: Mapping[str, str] | None = None,
    ) -> None:
        self.server = server
        self.other_app = other_app
        self.static = StaticFiles(static_files) if static_files else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = _route_path(scope)
            if self.server.is_engineio_path(path):
                await self._engineio_http(scope, receive, send, path)
            else:
                await self._other_http(scope, receive, send, path)
        elif kind == "websocket":
            path = _route_path(scope)
            if self.server.is_engineio_path(path):
                await self._engineio_websocket(scope, receive, send, path)
            elif self.other_app is not None:
                await self.other_app(scope, receive, send)
            else:
                await _refuse_websocket(scope, receive, send, Response.text(404, "not found\n"))
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.other_app is not None:
            await self.other_app(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    # -- plain HTTP ----------------------------------------------------------------

    async def _engineio_http(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        server = self.server
        request = _make_request(scope, path)
        begin = getattr(server, "begin_request", None)
        if begin is not None:
            begin(request)
        answered = False
        try:
            body, complete = await _read_body(receive, server.max_http_buffer_size)
            if body is None:  # the client left before sending its body
                return
            request.body = body
            if not complete and not _is_session_post(server, request):
                response = Response.text(413, "payload too large\n")
            else:
                response = await self._answer(request, receive)
            answered = True
            await _send_response(send, request, response)
        finally:
            if not answered:
                request.set_disconnected()

    async def _answer(self, request: Request, receive: Receive) -> Response:
        if request.method != "GET" or "sid" not in request.query:
            return await self.server.handle_request(request)
        # A long-poll: the client may give up while it waits.
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, request))
        try:
            return await self.server.handle_request(request)
        finally:
            watcher.cancel()

    async def _other_http(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        request = _make_request(scope, path)
        if self.static is not None:
            response = self.static(request)
            if response is not None:
                await _send_response(send, request, response)
                return
        if self.other_app is not None:
            await self.other_app(scope, receive, send)
            return
        await _send_response(send, request, await self.server.handle_other(request))

    # -- WebSocket -----------------------------------------------------------------

    async def _engineio_websocket(
        self, scope: Scope, receive: Receive, send: Send, path: str
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        request = _make_request(scope, path, method="GET")
        ws = ASGIWebSocket(scope, receive, send, max_size=self.server.max_http_buffer_size)

        async def accept_ws(headers: Sequence[tuple[str, str]] = ()) -> ASGIWebSocket:
            await ws.accept(headers)
            return ws

        try:
            response = await self.server.handle_websocket(request, accept_ws)
        except Exception:
            logger.exception("error handling WebSocket request %s", request.target)
            response = Response.text(500, "internal server error\n")
        if response is not None:
            if ws.accepted:
                await ws.close(1011)
            else:
                await _refuse_websocket(scope, receive, send, response, connected=True)
            return
        await ws.run()

    # -- lifespan ------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.other_app is None:
            await self._own_lifespan(receive, send)
            return
        seen: list[Message] = []
        sent: list[str] = []

        async def receive_wrapper() -> Message:
            message = await receive()
            seen.append(message)
            if message["type"] == "lifespan.startup":
                await self._startup()
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
            return message

        async def send_wrapper(message: Message) -> None:
            sent.append(message["type"])
            await send(message)

        try:
            await self.other_app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if sent:
                raise
            # The other application does not speak lifespan: speak it alone.
            logger.debug("other_app does not support lifespan", exc_info=True)
            await self._own_lifespan(receive, send, seen[-1] if seen else None)

    async def _own_lifespan(
        self, receive: Receive, send: Send, first: Message | None = None
    ) -> None:
        message = first
        while True:
            if message is None:
                message = await receive()
            kind = message["type"]
            message = None
            if kind == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    await self._shutdown()
                except Exception as exc:  # pragma: no cover - defensive
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        # e.g. a Socket.IO server connects its Redis adapter before traffic
        startup = getattr(self.server, "startup", None)
        if startup is not None:
            await startup()

    async def _shutdown(self) -> None:
        await self.server.shutdown()


class ASGIWebSocket:
    """An ASGI WebSocket connection seen as an Engine.IO WebSocket transport.

    Implements what :class:`wsio.engineio.session.WebSocketTransport`
    requires: messages are delivered to a callback, writes are synchronous
    (queued, then sent in order by a writer task that exists only while
    there is something to send) with a high-water mark of ``write_limit``
    bytes.
    """

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        max_size: int | None = None,
        write_limit: int = 65536,
        close_timeout: float = 5.0,
    ) -> None:
        client = scope.get("client")
        self.remote_address: tuple[str, int] | None = (
            (str(client[0]), int(client[1])) if client else None
        )
        self.max_size = max_size
        self.write_limit = write_limit
        self.close_timeout = close_timeout
        self.accepted = False
        self.close_code: int | None = None
        self.failed = False
        """True when this side closed the connection for a violation (a message too big)."""
        self._receive = receive
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._on_message: Callable[[Data], None] | None = None
        self._on_closed: Callable[[Any], None] | None = None
        self._pending: deque[Data] = deque()
        self._out: deque[tuple[Message, int]] = deque()
        self._out_size = 0
        self._writer: asyncio.Task[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closing = False  # a close was queued: no more writes
        self._closed = False  # the connection is gone
        self._reading = False
        self._resume: asyncio.Event | None = None
        self._done: asyncio.Future[None] = self._loop.create_future()

    # -- handshake -------------------------------------------------------------------

    async def accept(self, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Complete the WebSocket handshake (with extra response headers)."""
        message: Message = {"type": "websocket.accept"}
        if headers:
            message["headers"] = [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ]
        await self._send(message)
        self.accepted = True

    # -- the transport interface -------------------------------------------------------

    def set_callbacks(
        self,
        on_message: Callable[[Data], None] | None,
        on_closed: Callable[[Any], None] | None = None,
    ) -> None:
        """Deliver messages to *on_message*; ``on_closed`` runs once the connection is gone."""
        self._on_message = on_message
        self._on_closed = on_closed
        self._flush_pending()
        if on_closed is not None and self._closed and self._on_closed is on_closed:
            self._on_closed = None
            on_closed(self)

    def write_message(self, message: Data) -> bool:
        """Queue a message; returns False when the queue is above ``write_limit`` bytes.

        Raises :class:`~wsio.websocket.ConnectionClosedError` once closed.
        """
        if self._closed or self._closing:
            raise ConnectionClosedError(self.close_code or 1006)
        if isinstance(message, str):
            event: Message = {"type": "websocket.send", "text": message}
        else:
            event = {"type": "websocket.send", "bytes": bytes(message)}
        size = len(message)
        self._out.append((event, size))
        self._out_size += size
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())
        return self._out_size < self.write_limit

    @property
    def writable(self) -> bool:
        """False while the queue is above its high-water mark (or the connection is gone)."""
        return not self._closed and not self._closing and self._out_size < self.write_limit

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued and not yet handed to the ASGI server."""
        return self._out_size

    async def drain(self) -> None:
        """Wait until the queue is below its high-water mark."""
        if self._out_size < self.write_limit or self._closed:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def pause_reading(self) -> None:
        """Stop delivering and taking messages until :meth:`resume_reading`."""
        if self._resume is None:
            self._resume = asyncio.Event()

    def resume_reading(self) -> None:
        """Take messages again (those held meanwhile are delivered first)."""
        resume, self._resume = self._resume, None
        self._flush_pending()
        if resume is not None:
            resume.set()

    def _flush_pending(self) -> None:
        pending = self._pending
        while pending and self._resume is None:
            callback = self._on_message
            if callback is None:
                return
            try:
                callback(pending.popleft())
            except Exception:
                logger.exception("message callback failed")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued, then a close; wait (a while) for the connection to end."""
        if not self._closed and not self._closing:
            self._queue_close(code, reason)
        if self._closed:
            return
        if self._reading:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._done), self.close_timeout)
        elif self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    def abort(self) -> None:
        """Drop what is queued and close at once."""
        if self._closed or self._closing:
            return
        self._out.clear()
        self._out_size = 0
        self._queue_close(1000, "")

    # -- internals ---------------------------------------------------------------------

    def _queue_close(self, code: int, reason: str) -> None:
        self._closing = True
        self._out.append(({"type": "websocket.close", "code": code, "reason": reason}, 0))
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        out = self._out
        try:
            while out:
                event, size = out.popleft()
                await self._send(event)
                self._out_size -= size
                if self._drain_waiters and self._out_size < self.write_limit // 4:
                    self._wake_drainers()
        except Exception as exc:
            logger.debug("WebSocket send failed: %r", exc)
            self._closing = True
            out.clear()
            self._out_size = 0
        finally:
            self._writer = None
            self._wake_drainers()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def run(self) -> None:
        """Read messages until the client disconnects (the ASGI app's lifetime)."""
        self._reading = True
        try:
            while True:
                resume = self._resume
                if resume is not None:
                    await resume.wait()
                message = await self._receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                    if self._too_big(data):
                        if not self._closing:
                            self.failed = True
                            self._queue_close(1009, "message too big")
                        continue
                    if self._closing:
                        continue
                    callback = self._on_message
                    if callback is None or self._resume is not None or self._pending:
                        # no taker yet, or paused while this was being received
                        self._pending.append(data)
                        self._flush_pending()
                        continue
                    try:
                        callback(data)
                    except Exception:
                        logger.exception("message callback failed")
                elif kind == "websocket.disconnect":
                    self.close_code = message.get("code", 1005)
                    return
        except Exception as exc:  # the ASGI server lost the connection
            logger.debug("WebSocket receive failed: %r", exc)
        finally:
            self._reading = False
            self._connection_lost()

    def _too_big(self, data: Data) -> bool:
        limit = self.max_size
        if limit is None or len(data) <= limit // 4:
            return False
        size = len(data) if data.__class__ is bytes else len(data.encode())  # type: ignore[union-attr]
        return size > limit

    def _connection_lost(self) -> None:
        self._closed = True
        if self.close_code is None:
            self.close_code = 1006
        self._out.clear()
        self._out_size = 0
        self._wake_drainers()
        if not self._done.done():
            self._done.set_result(None)
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
        callback = self._on_closed
        if callback is not None:
            self._on_closed = None
            try:
                callback(self)
            except Exception:
                logger.exception("close callback failed")


# -- helpers ---------------------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    """The path below the application's mount point."""
    path: str = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root) and path != root:
        path = path[len(root) :]
    return path


def _make_request(scope: Scope, path: str, method: str | None = None) -> Request:
    query = scope.get("query_string") or b""
    query_string = query.decode("latin-1")
    raw = scope.get("raw_path")
    target = raw.decode("latin-1") if raw else path
    if query_string:
        target += "?" + query_string
    client = scope.get("client")
    return Request(
        method or scope.get("method", "GET"),
        target,
        path,
        query_string,
        Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]),
        http_version=scope.get("http_version", "1.1"),
        client=(str(client[0]), int(client[1])) if client else None,
        scheme=scope.get("scheme", "http"),
    )


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The body (None if the client left) and whether it is complete (False: over *limit*)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body") or b""
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks), False
        if not message.get("more_body", False):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), True


def _is_session_post(server: Server, request: Request) -> bool:
    """A POST for a known session: the server answers 413 itself and closes the session."""
    sid = request.query.get("sid")
    return request.method == "POST" and sid is not None and sid in server.sessions


async def _watch_disconnect(receive: Receive, request: Request) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            request.set_disconnected()
            return


async def _send_response(send: Send, request: Request, response: Response) -> None:
    body = response.body
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    headers.append((b"content-length", b"%d" % len(body)))
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if request.method == "HEAD" else body}
        )
    except Exception:
        if not request.disconnected:
            raise


async def _refuse_websocket(
    scope: Scope, receive: Receive, send: Send, response: Response, *, connected: bool = False
) -> None:
    """Answer a WebSocket request with *response*, or a close when the server can't."""
    if not connected:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        headers.append((b"content-length", b"%d" % len(response.body)))
        await send(
            {"type": "websocket.http.response.start", "status": response.status, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008})
