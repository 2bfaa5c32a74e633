"""The Engine.IO v4 client: HTTP long-polling, WebSocket, and the upgrade between them.

::

    client = Client("http://127.0.0.1:8000")

    @client.on("message")
    def message(data):            # str or bytes, in arrival order
        print("got", data)

    await client.connect()
    await client.send("hello")
    await client.close()

With the default ``transports=("polling", "websocket")`` the session opens
over long-polling and then upgrades to a WebSocket when the server offers
it: the client probes the WebSocket (``2probe`` / ``3probe``), pauses
polling (it waits for its in-flight GET and POST to finish, and sends
nothing more over HTTP), sends the ``upgrade`` packet and then whatever was
queued meanwhile over the WebSocket, so messages keep their order in both
directions. If the probe fails, the session stays on polling.
``transports=("websocket",)`` opens over WebSocket directly.

The server pings, the client answers; no ping within ``pingInterval +
pingTimeout`` means the server is gone (close reason ``"ping timeout"``).

Close reasons, as the reference client names them: ``"forced close"``
(:meth:`Client.close`), ``"transport close"`` (the server closed the session
or the connection), ``"transport error"`` (a request failed), ``"ping
timeout"``, ``"parse error"`` (the server sent something undecodable).

Layers built on top (the Socket.IO client) subclass :class:`Client` and
override the hooks :meth:`~Client._on_open`, :meth:`~Client._on_message`,
:meth:`~Client._on_close` and :meth:`~Client._on_upgrade`; messages reach
``_on_message`` synchronously, in arrival order, from the transport's
callback.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import ssl as ssl_module
from base64 import b64encode
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .._util import SerialRunner, call_handler, is_async_callable
from ..http.client import CookieJar, HTTPClient, HTTPError, HTTPResponse, make_ssl_context
from ..websocket.client import connect as ws_connect
from ..websocket.connection import WebSocket
from ..websocket.exceptions import WebSocketError
from . import packets as eio
from .packets import Handshake, PacketType

__all__ = ["Client", "ConnectionError"]

logger = logging.getLogger("wsio.engineio.client")

Data = str | bytes

_MESSAGE = PacketType.MESSAGE
_PING = PacketType.PING
_CLOSE = PacketType.CLOSE
_OPEN = PacketType.OPEN
_EVENTS = ("open", "message", "close", "upgrade")

#: Packets waiting in the polling buffer above which :meth:`Client.write` returns False.
_HIGH_WATER = 1024


#: Packets in one polling POST at most (python-engineio drops any beyond 16).
MAX_BATCH_PACKETS = 16


class ConnectionError(builtins.ConnectionError):
    """The Engine.IO session could not be opened, or is not open.

    A subclass of the built-in :class:`ConnectionError` (so of :class:`OSError`);
    when a lower-level error caused it, that error is the ``__cause__``.
    """


def _polling_part(item: Data) -> str:
    if item.__class__ is str:
        return item
    return "b" + b64encode(item).decode("ascii")  # type: ignore[arg-type]


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class Client:
    """An Engine.IO v4 client session.

    Args:
        url: the server, ``http(s)://host[:port]`` or ``ws(s)://host[:port]``;
            its query parameters are sent with every request; its path is
            not used (the endpoint is ``path``).
        path: the Engine.IO endpoint (``"/engine.io/"``; Socket.IO uses
            ``"/socket.io/"``).
        transports: ``"polling"`` and/or ``"websocket"``; the session opens
            with the first one.
        upgrade: whether to upgrade from polling to WebSocket when offered.
        headers: extra request header fields, sent with every polling
            request and the WebSocket handshake.
        query: extra query parameters.
        timeout: seconds for :meth:`connect` (the whole handshake), for each
            POST, for a WebSocket probe, and for :meth:`close` to flush.
        ssl: TLS verification for https/wss: ``None`` verifies with the
            system CAs, ``False`` disables verification, or an
            :class:`ssl.SSLContext` (e.g. with a private CA).
        websocket_options: keyword arguments for
            :func:`wsio.websocket.connect` (``compression``, ``max_size``,
            ``open_timeout`` ...). By default WebSocket-level pings are off
            (Engine.IO has its own heartbeat) and ``max_size`` is 16 MiB.
        cookie_jar: a :class:`~wsio.http.client.CookieJar` to use (and keep
            across sessions); cookies the server sets (say, a sticky load
            balancer's) are sent back on every request, WebSocket included.

    Attributes: ``sid`` (the session id, kept after close), ``transport``
    (``"polling"`` or ``"websocket"``), ``handshake`` (the parsed
    :class:`~wsio.engineio.packets.Handshake`), ``connected``,
    ``close_reason``.
    """

    def __init__(
        self,
        url: str,
        *,
        path: str = "/engine.io/",
        transports: Iterable[str] = ("polling", "websocket"),
        upgrade: bool = True,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        timeout: float = 20.0,
        ssl: ssl_module.SSLContext | bool | None = None,
        websocket_options: Mapping[str, Any] | None = None,
        cookie_jar: CookieJar | None = None,
    ) -> None:
        self.transports = tuple(transports)
        if not self.transports:
            raise ValueError("at least one transport is needed")
        for name in self.transports:
            if name not in ("polling", "websocket"):
                raise ValueError(f"unknown transport {name!r}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ws", "wss"):
            raise ValueError(f"{url!r} is not an http(s):// or ws(s):// URL")
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{url!r}: credentials in the URL are not supported")
        self.url = url
        self.secure = scheme in ("https", "wss")
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        self.path = "/" + path.strip("/") + "/"
        self._http_base = f"{'https' if self.secure else 'http'}://{netloc}{self.path}"
        self._ws_base = f"{'wss' if self.secure else 'ws'}://{netloc}{self.path}"
        params = parse_qsl(parts.query, keep_blank_values=True)
        if query is not None:
            params += list(query.items()) if isinstance(query, Mapping) else list(query)
        self.query = [(k, v) for k, v in params if k not in ("EIO", "transport", "sid")]
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, Mapping):
            self.headers = list(headers.items())
        else:
            self.headers = list(headers)
        self.upgrade = upgrade
        self.timeout = timeout
        self.ssl = ssl
        self.websocket_options = dict(websocket_options or {})
        self.cookie_jar = cookie_jar if cookie_jar is not None else CookieJar()

        self.sid: str | None = None
        self.transport: str | None = None
        self.handshake: Handshake | None = None
        self.close_reason: str | None = None
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._async_events: set[str] = set()
        self._runner: SerialRunner | None = None
        self._state = "new"  # new, opening, open, closing, closed
        self._http: HTTPClient | None = None
        self._ws: WebSocket | None = None
        self._probe_ws: WebSocket | None = None
        self._buffer: deque[Data] = deque()
        self._upgrading = False
        self._max_payload: int | None = None
        self._poll_url = ""
        self._post_headers: list[tuple[str, str]] = []
        self._poll_task: asyncio.Task[None] | None = None
        self._post_task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_delay = 0.0
        self._closed_event: asyncio.Event | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<engineio.Client {self.sid} {self.transport} {self._state}>"

    # -- handlers ------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler: ``"open"`` (), ``"message"`` (data),
        ``"close"`` (reason) or ``"upgrade"`` ().

        Usable as a decorator. Handlers may be sync (called at once, in
        arrival order) or async (run one at a time, in order, in a task).
        """
        if event not in _EVENTS:
            raise ValueError(f"unknown Engine.IO client event {event!r}")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers[event] = fn
            if is_async_callable(fn):
                self._async_events.add(event)
            else:
                self._async_events.discard(event)
            return fn

        return register(handler) if handler is not None else register

    def _emit(self, event: str, *args: Any) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            return
        runner = self._runner
        if runner is None and event not in self._async_events:
            try:
                handler(*args)
            except Exception:
                logger.exception("Engine.IO client %s handler failed", event)
            return
        if runner is None:
            runner = self._runner = SerialRunner()
        runner.submit(lambda: call_handler(handler, *args))

    # Hooks for the layers built on top; the defaults call the handlers.

    def _on_open(self) -> None:
        """The session is open (``handshake`` and ``sid`` are set)."""
        self._emit("open")

    def _on_message(self, data: Data) -> None:
        """A message arrived (``str`` or ``bytes``)."""
        self._emit("message", data)

    def _on_upgrade(self) -> None:
        """The session moved to the WebSocket transport."""
        self._emit("upgrade")

    def _on_close(self, reason: str) -> None:
        """The session is over (not called when :meth:`connect` fails)."""
        self._emit("close", reason)

    # -- state -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the session is open."""
        return self._state == "open"

    @property
    def upgrading(self) -> bool:
        """Whether polling is paused for an upgrade in progress."""
        return self._upgrading

    @property
    def http_client(self) -> HTTPClient | None:
        """The HTTP client of the polling transport (None before :meth:`connect`)."""
        return self._http

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- URLs ---------------------------------------------------------------------------

    def _url(self, base: str, transport: str, sid: str | None) -> str:
        params = [*self.query, ("EIO", "4"), ("transport", transport)]
        if sid is not None:
            params.append(("sid", sid))
        return base + "?" + urlencode(params)

    def _ws_kwargs(self, url: str) -> dict[str, Any]:
        headers = [(n, v) for n, v in self.headers if n.lower() != "cookie"]
        cookies = [v for n, v in self.headers if n.lower() == "cookie"]
        jar = self.cookie_jar.header_for(url)
        if jar is not None:
            cookies.append(jar)
        if cookies:
            headers.append(("Cookie", "; ".join(cookies)))
        options: dict[str, Any] = {
            "ping_interval": None,
            "ping_timeout": None,
            "max_size": 16 * 2**20,
            "open_timeout": self.timeout,
        }
        options.update(self.websocket_options)
        options["extra_headers"] = [*options.get("extra_headers", ()), *headers]
        if self.secure and "ssl" not in self.websocket_options:
            options["ssl"] = make_ssl_context(self.ssl)
        return options

    async def _open_ws(self, url: str) -> WebSocket:
        ws = await ws_connect(url, **self._ws_kwargs(url))
        if ws.response_headers.get("Set-Cookie") is not None:
            self.cookie_jar.extract(url, ws.response_headers)
        return ws

    # -- connecting ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the session; returns once the server's ``open`` packet arrived.

        Raises :class:`ConnectionError` when the server cannot be reached,
        refuses the handshake, answers with something else than an ``open``
        packet, or does not answer within ``timeout``.
        """
        if self._state in ("opening", "open", "closing"):
            raise RuntimeError("the client is already connected or connecting")
        self._reset()
        self._state = "opening"
        loop = self._loop = asyncio.get_running_loop()
        self._closed_event = asyncio.Event()
        http = self._http = HTTPClient(ssl=self.ssl, cookie_jar=self.cookie_jar)
        first = self.transports[0]
        pending: list[eio.Packet] = []
        try:
            async with asyncio.timeout(self.timeout):
                if first == "polling":
                    pending = await self._handshake_polling(http)
                else:
                    await self._handshake_websocket()
        except ConnectionError:
            self._abandon()
            raise
        except TimeoutError as exc:
            self._abandon()
            raise ConnectionError(
                f"Engine.IO handshake with {self.url} timed out after {self.timeout} s"
            ) from exc
        except (OSError, HTTPError, WebSocketError, eio.DecodeError) as exc:
            self._abandon()
            raise ConnectionError(
                f"cannot open an Engine.IO session with {self.url}: {exc}"
            ) from exc
        except BaseException:
            self._abandon()
            raise
        if self._state != "opening":  # closed while connecting
            self._abandon()
            raise ConnectionError(f"the session with {self.url} was closed while connecting")
        self._state = "open"
        self._reset_ping_timer()
        self._on_open()
        if self._state != "open":
            return
        if self.transport == "polling":
            for packet in pending:
                self._on_packet(packet)
                if self._state != "open":
                    return
            self._poll_task = loop.create_task(self._poll_loop())
            self._flush()
            assert self.handshake is not None
            if (
                self.upgrade
                and "websocket" in self.transports
                and "websocket" in self.handshake.upgrades
            ):
                self._probe_task = loop.create_task(self._probe())
        else:
            ws = self._ws
            assert ws is not None
            ws.set_callbacks(self._on_ws_message, self._on_ws_closed)
            if self._state == "open":
                self._flush_to_ws(ws)

    def _reset(self) -> None:
        self.sid = None
        self.transport = None
        self.handshake = None
        self.close_reason = None
        self._buffer.clear()
        self._upgrading = False
        self._max_payload = None
        self._ws = self._probe_ws = None
        self._poll_task = self._post_task = self._probe_task = None

    def _set_handshake(self, packet: eio.Packet, transport: str) -> None:
        if packet.type is not _OPEN:
            raise ConnectionError(
                f"Engine.IO handshake with {self.url}: expected an open packet, "
                f"got {packet.type.name.lower()}"
            )
        handshake = eio.parse_handshake(packet)
        self.handshake = handshake
        self.sid = handshake.sid
        self.transport = transport
        self._max_payload = handshake.max_payload
        self._ping_delay = (handshake.ping_interval_ms + handshake.ping_timeout_ms) / 1000

    async def _handshake_polling(self, http: HTTPClient) -> list[eio.Packet]:
        url = self._url(self._http_base, "polling", None)
        response = await http.request("GET", url, headers=self.headers)
        if response.status != 200:
            raise ConnectionError(
                f"Engine.IO handshake with {self.url} refused: {_describe(response)}"
            )
        packets = eio.decode_payload(response.body, from_server=True)
        self._set_handshake(packets[0], "polling")
        assert self.sid is not None
        self._poll_url = self._url(self._http_base, "polling", self.sid)
        self._post_headers = [*self.headers, ("Content-Type", "text/plain;charset=UTF-8")]
        return packets[1:]

    async def _handshake_websocket(self) -> None:
        ws = await self._open_ws(self._url(self._ws_base, "websocket", None))
        self._ws = ws
        try:
            first = await ws.recv()
        except WebSocketError as exc:
            raise ConnectionError(
                f"Engine.IO handshake with {self.url}: the WebSocket closed ({exc})"
            ) from exc
        self._set_handshake(eio.decode_ws(first, from_server=True), "websocket")

    def _abandon(self) -> None:
        """Undo a failed :meth:`connect`."""
        self._state = "closed"
        self._cancel_ping_timer()
        if self._http is not None:
            self._http.abort()
        for ws in (self._ws, self._probe_ws):
            if ws is not None:
                ws.set_callbacks(None, None)
                ws.abort()
        self._ws = self._probe_ws = None
        if self._closed_event is not None:
            self._closed_event.set()

    # -- receiving --------------------------------------------------------------------------

    def _on_packet(self, packet: eio.Packet) -> None:
        ptype = packet.type
        if ptype is _MESSAGE:
            self._on_message(packet.data)  # type: ignore[arg-type]
        elif ptype is _PING:
            self._reset_ping_timer()
            self._send_item(eio.PONG_WS)
        elif ptype is _CLOSE:
            self._close("transport close")
        # pong, noop and a stray open are ignored

    def _on_ws_message(self, data: Data) -> None:
        if data.__class__ is str:
            if data[:1] == "4":
                self._on_message(data[1:])
                return
        elif data.__class__ is bytes:
            self._on_message(data)
            return
        try:
            packet = eio.decode_ws(data, from_server=True)
        except eio.DecodeError as exc:
            logger.info("Engine.IO session %s: bad packet from the server: %s", self.sid, exc)
            self._close("parse error")
            return
        self._on_packet(packet)

    def _on_ws_closed(self, ws: Any) -> None:
        if ws is self._ws and self._state in ("open", "closing"):
            self._close("transport close")

    async def _poll_loop(self) -> None:
        http = self._http
        assert http is not None
        url = self._poll_url
        headers = self.headers
        while self._state in ("open", "closing") and not self._upgrading:
            try:
                response = await http.request("GET", url, headers=headers)
            except (HTTPError, OSError) as exc:
                if self._state in ("open", "closing"):
                    logger.info("Engine.IO session %s: poll failed: %s", self.sid, exc)
                    self._close("transport error")
                return
            if self._state not in ("open", "closing"):
                return
            if response.status != 200:
                logger.info("Engine.IO session %s: poll refused: %s", self.sid, _describe(response))
                self._close("transport error")
                return
            try:
                packets = eio.decode_payload(response.body, from_server=True)
            except eio.DecodeError as exc:
                logger.info("Engine.IO session %s: bad poll payload: %s", self.sid, exc)
                self._close("parse error")
                return
            for packet in packets:
                self._on_packet(packet)
                if self._state not in ("open", "closing"):
                    return

    # -- heartbeat -------------------------------------------------------------------------------

    def _reset_ping_timer(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        assert self._loop is not None
        self._ping_timer = self._loop.call_later(self._ping_delay, self._ping_timeout)

    def _cancel_ping_timer(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None

    def _ping_timeout(self) -> None:
        self._ping_timer = None
        if self._state in ("open", "closing"):
            logger.info("Engine.IO session %s: no ping from the server: closing", self.sid)
            self._close("ping timeout")

    # -- sending ----------------------------------------------------------------------------------

    def write(self, data: Data) -> bool:
        """Queue a message (``str`` as text, bytes-like as binary) without waiting.

        Returns False when the message was dropped because the session is
        closing or closed, or when the send buffer is above its high-water
        mark (then ``await`` :meth:`drain`). Raises :class:`ValueError` for
        a message larger than the server's ``maxPayload``, or a text with
        the record separator ``"\\x1e"`` while on polling (it cannot be
        framed there); :class:`TypeError` for other types.
        """
        if self._state != "open" and self._state != "opening":
            return False
        if data.__class__ is str:
            limit = self._max_payload
            if limit is not None and len(data) * 4 + 1 > limit and _utf8_len(data) + 1 > limit:
                raise ValueError(f"message larger than the server's maxPayload ({limit} bytes)")
            if (
                self.transport != "websocket"
                and self.transports[0] == "polling"
                and eio.SEPARATOR in data
            ):
                raise ValueError("a text message sent by polling must not contain '\\x1e'")
            item: Data = "4" + data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            item = bytes(data)
            limit = self._max_payload
            if limit is not None and len(item) > limit:
                raise ValueError(f"message larger than the server's maxPayload ({limit} bytes)")
        else:
            raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")
        return self._send_item(item)

    async def send(self, data: Data) -> None:
        """Send a message; waits only while the send buffer is full.

        Raises :class:`ConnectionError` when the session is not open.
        """
        if self._state != "open" and self._state != "opening":
            raise ConnectionError("the Engine.IO session is not open")
        if not self.write(data):
            await self.drain()

    def _send_item(self, item: Data) -> bool:
        ws = self._ws
        if ws is not None:
            try:
                return ws.write_message(item)
            except WebSocketError:
                return False  # the close callback ends the session
        self._buffer.append(item)
        if self._post_task is None:
            self._flush()
        return len(self._buffer) < _HIGH_WATER

    def _flush(self) -> None:
        """Start a POST for the buffer, unless one is in flight or polling is paused."""
        if (
            self._post_task is None
            and self._buffer
            and self.transport == "polling"
            and not self._upgrading
            and self._state in ("open", "closing")
        ):
            assert self._loop is not None
            self._post_task = self._loop.create_task(self._post_loop())

    def _take_batch(self) -> str:
        """Packets from the buffer for one POST body.

        At most ``maxPayload`` bytes and :data:`MAX_BATCH_PACKETS` packets:
        some servers (python-engineio) silently drop the packets of a
        payload beyond their own packet limit (16).
        """
        buffer = self._buffer
        limit = self._max_payload
        parts: list[str] = []
        size = 0
        while buffer and len(parts) < MAX_BATCH_PACKETS:
            part = _polling_part(buffer[0])
            length = _utf8_len(part)
            if parts:
                length += 1
                if limit is not None and size + length > limit:
                    break
            parts.append(part)
            size += length
            buffer.popleft()
        return eio.SEPARATOR.join(parts)

    async def _post_loop(self) -> None:
        http = self._http
        assert http is not None
        try:
            while (
                self._buffer
                and not self._upgrading
                and self.transport == "polling"
                and self._state in ("open", "closing")
            ):
                body = self._take_batch().encode("utf-8", "surrogatepass")
                try:
                    response = await http.request(
                        "POST",
                        self._poll_url,
                        headers=self._post_headers,
                        body=body,
                        timeout=self.timeout,
                    )
                except (HTTPError, OSError) as exc:
                    if self._state in ("open", "closing"):
                        logger.info("Engine.IO session %s: POST failed: %s", self.sid, exc)
                        self._close("transport error")
                    return
                if response.status != 200:
                    if self._state in ("open", "closing"):
                        logger.info(
                            "Engine.IO session %s: POST refused: %s", self.sid, _describe(response)
                        )
                        self._close("transport error")
                    return
        finally:
            self._post_task = None
            if not self._buffer:
                self._wake_drain()

    def _flush_to_ws(self, ws: WebSocket) -> None:
        buffer = self._buffer
        while buffer:
            try:
                ws.write_message(buffer.popleft())
            except WebSocketError:
                buffer.clear()
                break
        self._wake_drain()

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark (or the session ends)."""
        ws = self._ws
        if ws is not None and self._state == "open":
            try:
                await ws.drain()
            except WebSocketError:
                pass
            return
        if not self._buffer or self._state not in ("open", "opening", "closing"):
            return
        assert self._loop is not None
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drain(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- upgrade ------------------------------------------------------------------------------------

    async def _probe(self) -> None:
        assert self._loop is not None and self.sid is not None
        url = self._url(self._ws_base, "websocket", self.sid)
        ws: WebSocket | None = None
        answered = False
        try:
            async with asyncio.timeout(self.timeout):
                ws = await self._open_ws(url)
                if self._state != "open":
                    ws.abort()
                    return
                self._probe_ws = ws
                reply: asyncio.Future[Data | None] = self._loop.create_future()

                def on_message(data: Data) -> None:
                    if not reply.done():
                        reply.set_result(data)
                        if data == eio.PONG_PROBE:
                            # Pause polling now: no new GET or POST from here on.
                            self._upgrading = True

                def on_closed(_ws: Any) -> None:
                    if not reply.done():
                        reply.set_result(None)

                ws.set_callbacks(on_message, on_closed)
                ws.write_message(eio.PING_PROBE)
                answer = await reply
                if answer != eio.PONG_PROBE:
                    raise ConnectionError(f"unexpected probe answer {answer!r}")
                answered = True
        except (TimeoutError, OSError, WebSocketError, ConnectionError) as exc:
            logger.info("Engine.IO session %s: WebSocket probe failed: %s", self.sid, exc)
            self._probe_failed(ws)
            return
        except asyncio.CancelledError:
            self._probe_failed(ws)
            raise
        assert ws is not None and answered
        # Wait for the in-flight GET and POST; the server answers the GET
        # with a noop once it has seen the probe.
        pending = [t for t in (self._poll_task, self._post_task) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending)
        if self._state not in ("open", "closing"):
            self._probe_failed(ws)
            return
        if ws.closed or not ws.open:
            logger.info("Engine.IO session %s: probe WebSocket closed during upgrade", self.sid)
            self._probe_failed(ws)
            self._resume_polling()
            return
        self._probe_ws = None
        self._ws = ws
        self.transport = "websocket"
        self._poll_task = None
        ws.set_callbacks(self._on_ws_message, self._on_ws_closed)
        try:
            ws.write_message(eio.UPGRADE_WS)
        except WebSocketError:
            self._close("transport close")
            return
        self._upgrading = False
        self._flush_to_ws(ws)
        if self._http is not None:
            self._http.abort()  # only idle connections are left
        self._on_upgrade()

    def _probe_failed(self, ws: WebSocket | None) -> None:
        if ws is not None:
            ws.set_callbacks(None, None)
            ws.abort()
        if self._probe_ws is ws:
            self._probe_ws = None
        if self._upgrading:
            self._resume_polling()

    def _resume_polling(self) -> None:
        self._upgrading = False
        if self._state == "open" and (self._poll_task is None or self._poll_task.done()):
            assert self._loop is not None
            self._poll_task = self._loop.create_task(self._poll_loop())
        self._flush()

    # -- closing ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session (reason ``"forced close"``).

        Packets already queued are sent first and the server is told with a
        ``close`` packet; an upgrade in progress is allowed to finish. Both
        waits are bounded by ``timeout``. Does nothing if already closed.
        """
        state = self._state
        if state in ("new", "closed"):
            return
        if state == "opening":
            self._close("forced close")
            return
        if state == "closing":
            await self.wait_closed()
            return
        self._state = "closing"
        try:
            async with asyncio.timeout(self.timeout):
                probe = self._probe_task
                if self._upgrading and probe is not None and not probe.done():
                    await asyncio.wait([probe])  # let the upgrade finish first
                if self._state != "closing":
                    return
                ws = self._ws
                if ws is not None:
                    self._flush_to_ws(ws)
                    ws.write_message(eio.CLOSE_WS)
                    ws.set_callbacks(None, None)
                    await ws.close(1000)
                else:
                    self._buffer.append(eio.CLOSE_WS)
                    self._flush()
                    while self._post_task is not None and self._state == "closing":
                        await asyncio.wait([self._post_task])
        except (TimeoutError, WebSocketError, OSError) as exc:
            logger.info("Engine.IO session %s: unclean close: %s", self.sid, exc)
        self._close("forced close")

    async def wait_closed(self) -> None:
        """Wait until the session is over."""
        event = self._closed_event
        if event is not None and self._state != "new":
            await event.wait()

    def _close(self, reason: str) -> None:
        """End the session once, for *reason*, and tell the hooks."""
        previous = self._state
        if previous in ("closed", "new"):
            return
        if previous == "closing":
            reason = "forced close"  # whatever ended it, close() was asked for
        self._state = "closed"
        self.close_reason = reason
        self._upgrading = False
        self._cancel_ping_timer()
        current = asyncio.current_task()
        for task in (self._poll_task, self._post_task, self._probe_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
        self._poll_task = self._post_task = self._probe_task = None
        if self._http is not None:
            self._http.abort()
        for ws in (self._ws, self._probe_ws):
            if ws is None:
                continue
            ws.set_callbacks(None, None)
            if reason == "forced close" and not ws.closed:
                assert self._loop is not None
                self._loop.create_task(_close_quietly(ws))
            else:
                ws.abort()
        self._ws = self._probe_ws = None
        self._buffer.clear()
        self._wake_drain()
        if self._closed_event is not None:
            self._closed_event.set()
        if previous != "opening":
            self._on_close(reason)


async def _close_quietly(ws: WebSocket) -> None:
    try:
        await ws.close(1000)
    except Exception:
        ws.abort()


def _describe(response: HTTPResponse) -> str:
    text = response.body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {response.status}" + (f": {text}" if text else "")
