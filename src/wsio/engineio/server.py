"""The Engine.IO v4 server: long-polling and WebSocket transports, upgrade, heartbeat."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import logging
import socket
import ssl as ssl_module
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from .. import _json
from .._util import SerialRunner, is_async_callable, new_id
from ..http.request import Request, Response
from ..http.server import HTTPConnection, HTTPServer, Limits
from ..http.static import StaticFiles
from ..websocket.deflate import DeflateOptions
from ..websocket.exceptions import ConnectionClosed, InvalidRequest
from ..websocket.server import ServerOptions, accept
from . import packets as eio
from .cluster import Router
from .session import HandshakeInfo, Session, WebSocketTransport

__all__ = ["Server"]

logger = logging.getLogger("wsio.engineio")

# Error codes of the reference server (engine.io).
UNKNOWN_TRANSPORT = 0
UNKNOWN_SID = 1
BAD_HANDSHAKE_METHOD = 2
BAD_REQUEST = 3
FORBIDDEN = 4
UNSUPPORTED_PROTOCOL_VERSION = 5

_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}

AllowRequest = Callable[[Request], "bool | str | Awaitable[bool | str | None] | None"]
Accept = Callable[..., Awaitable[WebSocketTransport]]
"""Completes a WebSocket handshake: ``await accept_ws(headers=[...])``, the headers
being extra ``(name, value)`` pairs for the 101 response."""


class Server:
    """An Engine.IO v4 server.

    Options are in seconds and bytes, with the reference server's defaults:

    * ``ping_interval`` (25) / ``ping_timeout`` (20): the server pings every
      interval; a client that does not answer within the timeout is gone
      (reason ``"ping timeout"``).
    * ``upgrade_timeout`` (10): time for a WebSocket probe to complete.
    * ``max_http_buffer_size`` (1 000 000): the largest polling POST body and
      WebSocket message; sent to clients as ``maxPayload``.
    * ``path`` ("/engine.io/"), ``transports`` (("polling", "websocket")),
      ``allow_upgrades`` (True).
    * ``cors_allowed_origins``: None (the default) allows requests without
      an ``Origin`` and same-origin ones; ``"*"`` allows all; a list allows
      those origins. Checked on polling and WebSocket requests alike (the
      defence against cross-site WebSocket hijacking); others get 403.
      ``cors_credentials`` (True) sends ``Access-Control-Allow-Credentials``.
    * ``cookie``: None, a cookie name, or a dict with ``name``, ``path``,
      ``httponly``, ``samesite``, ``secure``, ``max_age``: set on the handshake
      (for cookie-based sticky load balancing).
    * ``allow_request``: a (sync or async) function of the handshake
      :class:`~wsio.http.request.Request` returning True to accept, or False
      / an error message to refuse with 403.
    * ``http_compression`` (True) / ``compression_threshold`` (1024): gzip or
      deflate polling responses at least that large when the client accepts it.
    * ``per_message_deflate`` (False): permessage-deflate on the websocket
      transport (True, or a :class:`~wsio.websocket.DeflateOptions`). On the
      built-in server only: under ASGI the ASGI server negotiates it (see
      :mod:`wsio.asgi`).
    * ``max_outgoing_bytes`` (4 MiB) / ``max_outgoing_packets`` (10 000): the
      backlog a slow client may accumulate (bytes waiting in a WebSocket's
      write buffer; packets or bytes waiting for a long-poll) before it is
      disconnected with the reason ``"slow consumer"``. Past the 64 KiB
      high-water mark (or 64 queued packets) writes report "not writable":
      volatile packets are dropped and ``await emit(...)`` waits for room.
    """

    def __init__(
        self,
        *,
        ping_interval: float = 25,
        ping_timeout: float = 20,
        upgrade_timeout: float = 10,
        max_http_buffer_size: int = 1_000_000,
        path: str = "/engine.io/",
        transports: Sequence[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        cors_allowed_origins: str | Sequence[str] | None = None,
        cors_credentials: bool = True,
        cookie: str | Mapping[str, Any] | None = None,
        allow_request: AllowRequest | None = None,
        http_compression: bool = True,
        compression_threshold: int = 1024,
        per_message_deflate: bool | DeflateOptions = False,
        max_sessions: int | None = None,
        max_outgoing_bytes: int = 4 * 2**20,
        max_outgoing_packets: int = 10_000,
    ) -> None:
        for name in transports:
            if name not in ("polling", "websocket"):
                raise ValueError(f"unknown transport {name!r}")
        if not transports:
            raise ValueError("at least one transport is needed")
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.upgrade_timeout = upgrade_timeout
        self.max_http_buffer_size = max_http_buffer_size
        self.path = "/" + path.strip("/") + "/"
        self.transports = tuple(transports)
        self.allow_upgrades = allow_upgrades
        if isinstance(cors_allowed_origins, str) and cors_allowed_origins != "*":
            cors_allowed_origins = [cors_allowed_origins]
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        if isinstance(cookie, str):
            cookie = {"name": cookie}
        self.cookie = dict(cookie) if cookie is not None else None
        self.allow_request = allow_request
        self.http_compression = http_compression
        self.compression_threshold = compression_threshold
        if per_message_deflate is True:
            deflate: DeflateOptions | None = DeflateOptions(threshold=1024)
        elif isinstance(per_message_deflate, DeflateOptions):
            deflate = per_message_deflate
        else:
            deflate = None
        self.ws_options = ServerOptions(
            max_size=max_http_buffer_size,
            max_queue=64,
            compression=deflate,
            ping_interval=None,
            ping_timeout=None,
        )
        self.max_sessions = max_sessions
        self.max_outgoing_bytes = max_outgoing_bytes
        self.max_outgoing_packets = max_outgoing_packets
        self.sessions: dict[str, Session] = {}
        self.router: Router | None = None
        """Set to serve sessions owned by other nodes (see :mod:`wsio.engineio.cluster`)."""
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._async_handlers: dict[str, bool] = {}
        self._runners: dict[str, SerialRunner] = {}
        self._static: StaticFiles | None = None
        self._http: HTTPServer | None = None
        self._upgrades = ["websocket"] if allow_upgrades and "websocket" in self.transports else []

    # -- handlers --------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler for ``"connect"`` (session, handshake),
        ``"message"`` (session, data) or ``"disconnect"`` (session, reason).

        Usable as ``@eio.on("message")``. Handlers may be sync or async; the
        handlers of one session run one at a time, in order.
        """
        if event not in ("connect", "message", "disconnect", "upgrade"):
            raise ValueError(f"unknown Engine.IO event {event!r}")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers[event] = fn
            self._async_handlers[event] = is_async_callable(fn)
            return fn

        return register(handler) if handler is not None else register

    def _dispatch(self, session: Session, event: str, *args: Any) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            return
        runner = self._runners.get(session.sid)
        if (runner is None or not runner.busy) and not self._async_handlers[event]:
            # Nothing of this session waits and nothing to await: run inline.
            try:
                handler(session, *args)
            except Exception:
                logger.exception("Engine.IO %s handler failed", event)
            return
        if runner is None:
            runner = self._runners[session.sid] = SerialRunner()
        runner.submit(partial(handler, session, *args))

    # Hooks for layers built on top (the Socket.IO server overrides them).

    def _on_connect(self, session: Session) -> None:
        self._dispatch(session, "connect", session.handshake)

    def _on_message(self, session: Session, data: str | bytes) -> None:
        self._dispatch(session, "message", data)

    def _on_upgrade(self, session: Session) -> None:
        self._dispatch(session, "upgrade")

    def _on_close(self, session: Session, reason: str) -> None:
        self._dispatch(session, "disconnect", reason)
        runner = self._runners.pop(session.sid, None)
        if runner is not None and runner.busy:
            # Let the pending handlers (and the disconnect handler) finish.
            self._runners[session.sid] = runner
            runner.submit(lambda: self._runners.pop(session.sid, None))

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    # -- errors and CORS ---------------------------------------------------------

    def _origin_allowed(self, request: Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        allowed = self.cors_allowed_origins
        if allowed == "*":
            return True
        if allowed is None:
            host = request.headers.get("Host")
            try:
                return host is not None and urlsplit(origin).netloc == host
            except ValueError:
                return False
        return origin in allowed

    def _cors_headers(self, request: Request) -> list[tuple[str, str]]:
        origin = request.headers.get("Origin")
        if origin is None or not self._origin_allowed(request):
            return []
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self.cors_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def error_response(self, request: Request, code: int, message: str | None = None) -> Response:
        """HTTP 400 (403 for FORBIDDEN) with the reference server's JSON error body."""
        body = _json.dumps({"code": code, "message": message or _MESSAGES[code]})
        status = 403 if code == FORBIDDEN else 400
        return Response(status, body, self._cors_headers(request), "application/json")

    # -- requests ------------------------------------------------------------------

    def _check(self, request: Request) -> tuple[int, str | None] | None:
        """The error code for a request that is invalid before any session lookup."""
        query = request.query
        if query.get("transport") not in self.transports:
            return UNKNOWN_TRANSPORT, None
        if query.get("EIO") != "4":
            return UNSUPPORTED_PROTOCOL_VERSION, None
        if not self._origin_allowed(request):
            return FORBIDDEN, "origin not allowed"
        return None

    async def _allowed(self, request: Request) -> str | None:
        """None when the handshake may proceed, else the refusal message."""
        if self.max_sessions is not None and len(self.sessions) >= self.max_sessions:
            return "too many sessions"
        if self.allow_request is None:
            return None
        try:
            result = self.allow_request(request)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("allow_request failed")
            return "forbidden"
        if result is True or result is None:
            return None
        return result if isinstance(result, str) else "forbidden"

    def _handshake_info(self, request: Request) -> HandshakeInfo:
        client = request.client
        return HandshakeInfo(
            headers=request.headers,
            query=dict(request.query),
            address=client[0] if client else None,
            url=request.target,
            secure=request.scheme in ("https", "wss"),
        )

    def _open_payload(self, sid: str, upgrades: list[str]) -> str:
        return eio.encode_ws(
            eio.open_packet(
                sid,
                upgrades,
                round(self.ping_interval * 1000),
                round(self.ping_timeout * 1000),
                self.max_http_buffer_size,
            )
        )  # type: ignore[return-value]

    def _cookie_header(self, sid: str) -> list[tuple[str, str]]:
        cookie = self.cookie
        if not cookie:
            return []
        parts = [f"{cookie.get('name', 'io')}={sid}", f"Path={cookie.get('path', '/')}"]
        if cookie.get("httponly", True):
            parts.append("HttpOnly")
        if cookie.get("secure"):
            parts.append("Secure")
        if cookie.get("max_age") is not None:
            parts.append(f"Max-Age={int(cookie['max_age'])}")
        parts.append(f"SameSite={cookie.get('samesite', 'Lax')}")
        return [("Set-Cookie", "; ".join(parts))]

    def _payload_response(
        self, request: Request, body: str, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        data = body.encode()
        headers = self._cors_headers(request)
        headers.append(("Cache-Control", "no-store"))
        if extra:
            headers.extend(extra)
        if self.http_compression and len(data) >= self.compression_threshold:
            encoding = _pick_encoding(request.headers.get_all("Accept-Encoding"))
            if encoding == "gzip":
                data = gzip.compress(data, 6)
            elif encoding == "deflate":
                data = zlib.compress(data, 6)
            if encoding is not None:
                headers.append(("Content-Encoding", encoding))
                headers.append(("Vary", "Accept-Encoding"))
        return Response(200, data, headers, "text/plain; charset=UTF-8")

    def is_engineio_path(self, path: str) -> bool:
        """Whether *path* is this server's endpoint."""
        return path == self.path or path == self.path[:-1]

    def begin_request(self, request: Request) -> None:
        """Called when a request's head has arrived, before its body.

        Lets the server see two POSTs of one session in progress at the same
        time (the protocol allows one): the session is then closed. The
        built-in HTTP server and the ASGI adapter call it; *request* is the
        object later passed to :meth:`handle_request`, its body still empty.
        """
        if request.method != "POST" or not self.is_engineio_path(request.path):
            return
        sid = request.query.get("sid")
        session = self.sessions.get(sid) if sid else None
        if (
            session is not None
            and not session.closed
            and session.transport == "polling"
            and self._check(request) is None
        ):
            session.begin_post(request)

    async def handle_request(self, request: Request) -> Response:
        """Answer an Engine.IO HTTP request (handshake, poll or post)."""
        if request.method != "POST":
            return await self._handle_request(request)
        try:
            return await self._handle_request(request)
        finally:
            sid = request.query.get("sid")
            session = self.sessions.get(sid) if sid else None
            if session is not None:
                session.end_post(request)

    async def _handle_request(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            headers = self._cors_headers(request)
            if headers:
                headers += [
                    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                    (
                        "Access-Control-Allow-Headers",
                        request.headers.get("Access-Control-Request-Headers") or "content-type",
                    ),
                    ("Access-Control-Max-Age", "86400"),
                ]
            return Response(204, b"", headers)
        error = self._check(request)
        if error is not None:
            return self.error_response(request, *error)
        sid = request.query.get("sid")
        if request.query.get("transport") != "polling":
            return self.error_response(
                request, BAD_REQUEST, "use a WebSocket upgrade for this transport"
            )
        if sid is None:
            if request.method != "GET":
                return self.error_response(request, BAD_HANDSHAKE_METHOD)
            return await self._polling_handshake(request)
        session = self.sessions.get(sid)
        if session is None:
            router = self.router
            if router is not None:
                node = router.owner(sid)
                if node is not None:
                    return await router.forward_http(node, request)
            return self.error_response(request, UNKNOWN_SID)
        if session.transport != "polling" and not (session.closed and session._queue):
            return self.error_response(request, BAD_REQUEST, "session is not using polling")
        if request.method == "GET":
            result = await session.handle_poll(request)
            if isinstance(result, Response):
                return result
            return self._payload_response(request, result)
        if request.method == "POST":
            return self._handle_post(request, session)
        return self.error_response(request, BAD_REQUEST, f"method {request.method} not allowed")

    def _handle_post(self, request: Request, session: Session) -> Response:
        content_type = request.headers.get("Content-Type") or ""
        if content_type.startswith("application/octet-stream"):
            session._fail("parse error", "binary polling body")
            return self.error_response(request, BAD_REQUEST, "binary content is not valid in v4")
        if len(request.body) > self.max_http_buffer_size:
            session._fail("transport error", "payload too large")
            return Response(413, "payload too large", self._cors_headers(request), "text/plain")
        problem = session.handle_post(request.body)
        if problem is not None:
            return self.error_response(request, BAD_REQUEST, problem)
        return Response(200, "ok", self._cors_headers(request), "text/html")

    async def _polling_handshake(self, request: Request) -> Response:
        refusal = await self._allowed(request)
        if refusal is not None:
            return self.error_response(request, FORBIDDEN, refusal)
        sid = self.router.new_sid() if self.router is not None else new_id()
        session = Session(self, sid, self._handshake_info(request), "polling")
        self.sessions[sid] = session
        body = self._open_payload(sid, self._upgrades)
        response = self._payload_response(request, body, self._cookie_header(sid))
        session.start()
        self._on_connect(session)
        return response

    async def handle_websocket(self, request: Request, accept_ws: Accept) -> Response | None:
        """Answer an Engine.IO WebSocket request; *accept_ws* completes the upgrade.

        Returns a Response to refuse the request instead.
        """
        error = self._check(request)
        if error is not None:
            return self.error_response(request, *error)
        if request.query.get("transport") != "websocket":
            return self.error_response(
                request, BAD_REQUEST, "WebSocket request for another transport"
            )
        sid = request.query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None and self.router is not None:
                node = self.router.owner(sid)
                if node is not None:
                    return await self.router.relay_websocket(node, request, accept_ws)
            if session is None or session.closed:
                return self.error_response(request, UNKNOWN_SID)
            if session.transport != "polling" or session.upgrading or not self.allow_upgrades:
                return self.error_response(
                    request, BAD_REQUEST, "upgrade not possible for this session"
                )
            ws = await accept_ws()
            if session.closed or session.upgrading or session.transport != "polling":
                await ws.close(1000)
                return None
            session.start_upgrade(ws)
            return None
        refusal = await self._allowed(request)
        if refusal is not None:
            return self.error_response(request, FORBIDDEN, refusal)
        sid = self.router.new_sid() if self.router is not None else new_id()
        ws = await accept_ws(headers=self._cookie_header(sid))
        try:
            ws.write_message(self._open_payload(sid, []))
        except ConnectionClosed as exc:
            # The client's first frames already ended the connection (a
            # protocol violation, or it left): there is no session to open.
            logger.info(
                "WebSocket from %s closed before its session opened: %s", ws.remote_address, exc
            )
            return None
        session = Session(self, sid, self._handshake_info(request), "websocket")
        self.sessions[sid] = session
        session.attach_websocket(ws, listen=False)
        session.start()
        self._on_connect(session)
        # Only now deliver what the client sent already (the layer above is ready).
        session.listen()
        return None

    # -- the built-in HTTP server's application interface ------------------------

    async def handle(self, request: Request) -> Response:
        """Built-in server entry point for plain HTTP requests."""
        if self.is_engineio_path(request.path):
            return await self.handle_request(request)
        return await self.handle_other(request)

    async def handle_other(self, request: Request) -> Response:
        """Requests outside the Engine.IO path: static files, else 404."""
        if self._static is not None:
            response = self._static(request)
            if response is not None:
                return response
        return Response.text(404, "not found\n")

    async def handle_upgrade(self, request: Request, conn: HTTPConnection) -> Response | None:
        """Built-in server entry point for WebSocket upgrade requests."""
        if not self.is_engineio_path(request.path):
            return Response.text(404, "not found\n")

        async def accept_ws(headers: Sequence[tuple[str, str]] = ()) -> WebSocketTransport:
            options = self.ws_options
            if headers:
                options = replace(options, extra_headers=[*options.extra_headers, *headers])
            return accept(request, conn, options)

        try:
            return await self.handle_websocket(request, accept_ws)
        except InvalidRequest as exc:
            return Response.text(exc.status, f"{exc}\n", exc.headers)

    # -- running -------------------------------------------------------------------

    def set_static_files(self, static_files: Mapping[str, str] | None) -> None:
        """Serve files next to the endpoint: ``{"/": "index.html", "/static": "dir"}``."""
        self._static = StaticFiles(static_files) if static_files else None

    def http_limits(self) -> Limits:
        """HTTP limits suited to this server (body limit = ``max_http_buffer_size``)."""
        return Limits(max_body_size=max(self.max_http_buffer_size, 65536))

    async def start(
        self,
        host: str | list[str] | None = "127.0.0.1",
        port: int = 0,
        *,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
        static_files: Mapping[str, str] | None = None,
    ) -> HTTPServer:
        """Serve on the built-in HTTP server; returns it (``.port`` tells the port)."""
        if static_files is not None:
            self.set_static_files(static_files)
        if self.router is not None:
            await self.router.start()
        http = HTTPServer(self, self.http_limits())
        await http.listen(host, port, ssl=ssl, sock=sock, reuse_port=reuse_port)
        self._http = http
        return http

    async def shutdown(self) -> None:
        """Close every session and stop listening."""
        http = self._http
        if http is not None:
            await http.close(wait=False)
        sessions = [s for s in self.sessions.values() if not s.closed]
        if sessions:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        # Closed polling sessions wait for a GET to hand over their close
        # packet: with the server gone, none will come.
        for session in list(self.sessions.values()):
            session._forget()
        if http is not None:
            await http.close()  # the connections the sessions held are idle now
        self._http = None

    def run(self, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
        """Serve until interrupted (blocking)."""
        from ..cli import run_async, serve_until_signal

        async def main() -> None:
            http = await self.start(host, port, **kwargs)
            print(f"Engine.IO server on http://{host}:{http.port}{self.path}", flush=True)
            await serve_until_signal(self.shutdown)

        run_async(main())

    def asgi_app(self, other_app: Any = None, static_files: Mapping[str, str] | None = None) -> Any:
        """This server as an ASGI application (see :mod:`wsio.asgi`)."""
        from ..asgi import ASGIApp

        return ASGIApp(self, other_app=other_app, static_files=static_files)

    # -- introspection -------------------------------------------------------------

    def session(self, sid: str) -> Session | None:
        """The session with id *sid*, if open."""
        session = self.sessions.get(sid)
        return session if session is not None and not session.closed else None

    def __iter__(self) -> Iterable[Session]:  # pragma: no cover - convenience
        return iter(list(self.sessions.values()))


def _pick_encoding(values: list[str]) -> str | None:
    """gzip or deflate, whichever ``Accept-Encoding`` allows (gzip first), else None."""
    quality: dict[str, float] = {}
    for value in values:
        for item in value.split(","):
            name, _, params = item.strip().partition(";")
            q = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    q = float(params[2:])
                except ValueError:
                    q = 0.0
            quality[name.strip().lower()] = q
    for name in ("gzip", "deflate"):
        q = quality.get(name, quality.get("*", 0.0))
        if q > 0:
            return name
    return None
