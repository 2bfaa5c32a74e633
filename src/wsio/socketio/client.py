"""The Socket.IO v5 client: :class:`Client` (one namespace) and :class:`Manager` (the connection).

::

    import wsio

    async with wsio.Client("http://127.0.0.1:8000", auth={"token": "secret"}) as client:

        @client.on("chat")
        def chat(message):               # the return value is the acknowledgement
            print("got", message)
            return "thanks"

        await client.emit("chat", "hello")
        reply = await client.call("echo", 1, 2, timeout=5)   # -> (1, 2)

        admin = client.of("/admin")      # another namespace, same connection
        await admin.connect()

It behaves as the official ``socket.io-client`` (v4) does, with Pythonic
names. The URL's path is the namespace (``http://host/admin`` joins
``/admin``); ``path`` is the Engine.IO endpoint (``/socket.io/``).

* A :class:`Manager` owns the Engine.IO connection (:mod:`wsio.engineio`)
  and its reconnection; every :class:`Client` of a manager is one namespace
  multiplexed over that connection. ``wsio.Client(url)`` makes a manager,
  :meth:`Client.of` adds namespaces to it.
* :meth:`Client.connect` opens the connection if needed and joins the
  namespace; it raises :class:`wsio.ConnectionError` with the server's
  ``message`` and ``data`` when refused, and on failure or timeout.
* After a connection is lost, the manager reconnects with exponential
  backoff and jitter computed exactly as the official client does
  (:class:`Backoff`), then every namespace joins again. It does not after
  :meth:`Client.disconnect`, a DISCONNECT from the server, or a refusal
  (CONNECT_ERROR).
* Emits made while disconnected are buffered and sent in order once the
  namespace is joined again (``client.volatile.emit`` drops them instead).
  With ``retries=N`` every emit carries an ack id, one is in flight at a
  time and it is sent again (at most N times) until acknowledged.
* Connection state recovery: the client keeps the server's ``pid`` and the
  offset of the last event and sends them when it joins again; the server
  then replays what was missed. The offset is not passed to handlers.

Reserved events of a :class:`Client`: ``connect`` (), ``connect_error``
(a :class:`wsio.ConnectionError`), ``disconnect`` (reason). Reasons:
``"io server disconnect"``, ``"io client disconnect"`` (no reconnection);
``"transport close"``, ``"transport error"``, ``"ping timeout"``, ``"parse
error"`` (reconnection follows when enabled). Events of the
:class:`Manager` (``client.manager.on(...)``): ``open``, ``close``
(reason), ``error`` (error), ``reconnect_attempt`` (attempt),
``reconnect`` (attempt), ``reconnect_error`` (error), ``reconnect_failed``.

Handlers may be plain functions (called at once, on the event loop) or
coroutines; the handlers of one client run in arrival order, coroutines one
at a time. Acknowledgements from the server are never queued behind a
running handler.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as random_module
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._util import SerialRunner, spawn
from ..engineio.client import Client as EngineClient
from ..engineio.client import ConnectionError as EngineConnectionError
from ..exceptions import AckTimeout, ConnectionError, Disconnected
from ..http.client import CookieJar
from .namespace import Handler
from .packets import RESERVED_EVENTS, DecodeError, Packet, PacketType, make_parser
from .socket import DONE, ack_arguments, ack_result

__all__ = ["Backoff", "Client", "Manager"]

logger = logging.getLogger("wsio.socketio.client")

_CONNECT = PacketType.CONNECT
_DISCONNECT = PacketType.DISCONNECT
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK

#: Events of a :class:`Manager`.
MANAGER_EVENTS = frozenset(
    {
        "open",
        "close",
        "error",
        "reconnect",
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_failed",
    }
)

_UNSET: Any = object()

AckCallback = Callable[[list[Any] | None, BaseException | None], None]
"""Called with (ack arguments, None) on an answer, or (None, error)."""
AckEntry = AckCallback | asyncio.Future[Any]
"""What waits for an acknowledgement: a callback, or the future of a :meth:`Client.call`."""
_Future = asyncio.Future


def _settle(entry: AckEntry, args: list[Any] | None, error: BaseException | None) -> None:
    if isinstance(entry, _Future):
        if not entry.done():
            if error is None:
                entry.set_result(ack_result(args))  # type: ignore[arg-type]
            else:
                entry.set_exception(error)
    else:
        entry(args, error)


class Backoff:
    """Reconnection delays, computed as the official client's ``backo2`` does.

    The n-th delay (n counting from 0 since the last :meth:`reset`) is
    ``min * factor**n`` milliseconds, moved by a random deviation of up to
    ``jitter`` times itself, then capped at ``max`` and truncated to an
    integer. One random number ``r`` in [0, 1) decides both the size of the
    deviation (``floor(r * jitter * ms)``) and its sign (subtracted when
    ``floor(r * 10)`` is even, added when odd). ``random`` is the source of
    ``r`` (:func:`random.random` by default; inject one to test).
    """

    __slots__ = ("attempts", "factor", "jitter", "max", "ms", "random")

    def __init__(
        self,
        min: float = 100,
        max: float = 10000,
        factor: float = 2,
        jitter: float = 0,
        random: Callable[[], float] | None = None,
    ) -> None:
        if not 0 <= jitter <= 1:
            raise ValueError("the randomization factor must be between 0 and 1")
        self.ms = min
        self.max = max
        self.factor = factor
        self.jitter = jitter
        self.attempts = 0
        self.random = random if random is not None else random_module.random

    def duration(self) -> int:
        """The next delay in milliseconds (and one attempt more)."""
        try:
            ms = float(self.ms) * float(self.factor) ** self.attempts
        except OverflowError:
            ms = math.inf
        self.attempts += 1
        if self.jitter:
            rand = self.random()
            if math.isfinite(ms):
                deviation = math.floor(rand * self.jitter * ms)
                ms = ms - deviation if math.floor(rand * 10) & 1 == 0 else ms + deviation
        return int(min(ms, self.max))

    def reset(self) -> None:
        """Start counting attempts from zero again."""
        self.attempts = 0


class _Drain:
    """What ``emit`` returns when the transport's buffer is full: awaiting waits for room."""

    __slots__ = ("_engine",)

    def __init__(self, engine: EngineClient) -> None:
        self._engine = engine

    def __await__(self) -> Generator[Any, None, None]:
        return self._engine.drain().__await__()


class _Handlers:
    """Handlers of named events, run in arrival order (coroutines one at a time)."""

    def __init__(self) -> None:
        self._handlers: dict[Any, Handler] = {}
        self._any: list[Handler] = []
        self._any_async = False
        self._runner: SerialRunner | None = None

    def _check_event(self, event: Any) -> None:
        pass

    def on(
        self,
        event: str | int | float,
        handler: Callable[..., Any] | None = None,
        *,
        ordered: bool = True,
    ) -> Any:
        """Register the handler of *event* (one per event); usable as a decorator.

        ``"*"`` registers the catch-all, called as ``handler(event, *args)``
        for events that have no handler of their own. Events reach their
        handlers one at a time, in arrival order; ``ordered=False`` starts
        this event's handler as soon as it arrives (for an event the server
        sends while a handler awaits a ``call()`` whose answer needs it).
        """
        self._check_event(event)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers[event] = Handler(fn, ordered)
            return fn

        return register(handler) if handler is not None else register

    def event(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register *fn* as the handler of the event named like it."""
        return self.on(fn.__name__, fn)

    def off(self, event: str | int | float) -> None:
        """Remove the handler of *event*."""
        self._handlers.pop(event, None)

    def _fire(self, event: str, *args: Any) -> None:
        """Run the handler of a reserved event, after the events queued before it."""
        handler = self._handlers.get(event)
        if handler is None:
            return
        runner = self._runner
        if not handler.is_async and (runner is None or runner._task is None):
            try:
                handler(*args)
            except Exception:
                logger.exception("%s handler failed", event)
            return
        self._submit(lambda: self._run_reserved(handler, event, args))

    async def _run_reserved(self, handler: Handler, event: str, args: tuple[Any, ...]) -> None:
        try:
            result = handler(*args)
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                await result
        except Exception:
            logger.exception("%s handler failed", event)

    def _submit(self, job: Callable[[], Awaitable[Any]]) -> None:
        runner = self._runner
        if runner is None:
            runner = self._runner = SerialRunner()
        runner.submit(job)


class Manager(_Handlers):
    """One Engine.IO connection shared by namespaces, and its reconnection.

    Made by :class:`Client` (``wsio.Client(url)``); its options are the
    connection options documented there. :meth:`socket` returns the client
    of a namespace on this connection (what :meth:`Client.of` calls).

    Attributes: ``engine`` (the current :class:`wsio.engineio.Client`, or
    None), ``backoff`` (:class:`Backoff`), ``nsps`` (namespace -> client),
    ``reconnecting``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        path: str = "/socket.io/",
        transports: Iterable[str] = ("polling", "websocket"),
        upgrade: bool = True,
        reconnection: bool = True,
        reconnection_attempts: int | None = None,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        parser: str = "json",
        ssl: ssl_module.SSLContext | bool | None = None,
        websocket_options: Mapping[str, Any] | None = None,
        cookie_jar: CookieJar | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.url = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
        self._engine_options: dict[str, Any] = {
            "path": path,
            "transports": tuple(transports),
            "upgrade": upgrade,
            "headers": headers,
            "query": query,
            "timeout": timeout,
            "ssl": ssl,
            "websocket_options": websocket_options,
        }
        # Validate the URL and options now rather than at the first connect.
        EngineClient(self.url, **self._engine_options)
        self.cookie_jar = cookie_jar if cookie_jar is not None else CookieJar()
        if reconnection_attempts is not None and reconnection_attempts < 0:
            raise ValueError("reconnection_attempts must be None or at least 0")
        self.reconnection = reconnection
        self.reconnection_attempts = (
            math.inf if reconnection_attempts is None else reconnection_attempts
        )
        self.timeout = timeout
        self.backoff = Backoff(
            min=reconnection_delay * 1000,
            max=reconnection_delay_max * 1000,
            jitter=randomization_factor,
            random=random,
        )
        parser_classes = make_parser(parser)
        self.parser = parser
        self.encoder = parser_classes.encoder()
        self._decoder_factory = parser_classes.decoder
        self.decoder = self._decoder_factory()
        self.nsps: dict[str, Client] = {}
        self.engine: _Engine | None = None
        self._ready_state = "closed"  # closed, opening, open
        self.reconnecting = False
        self._skip_reconnect = False
        self._timer: asyncio.TimerHandle | None = None
        self._open_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<wsio.Manager {self.url} {self._ready_state}>"

    def _check_event(self, event: Any) -> None:
        if event not in MANAGER_EVENTS:
            raise ValueError(f"unknown manager event {event!r}")

    @property
    def connected(self) -> bool:
        """Whether the Engine.IO connection is open."""
        return self._ready_state == "open"

    def socket(
        self,
        namespace: str = "/",
        *,
        auth: Any = None,
        ack_timeout: float | None = None,
        retries: int = 0,
    ) -> Client:
        """The client of *namespace* on this connection (made on first use).

        A client already made for *namespace* is returned as it is.
        """
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        client = self.nsps.get(namespace)
        if client is None:
            client = Client._attach(self, namespace, auth, ack_timeout, retries)
        return client

    async def close(self) -> None:
        """Disconnect every namespace and close the connection (no reconnection)."""
        for client in list(self.nsps.values()):
            client._disconnect()
        self._close()
        task = self._close_task
        if task is not None:
            await asyncio.shield(task)

    # -- opening ---------------------------------------------------------------------

    def _start_open(self, retry: bool) -> None:
        """Open the connection for a :meth:`Client.connect` (not while reconnecting)."""
        self._loop = asyncio.get_running_loop()
        self._open_task = self._loop.create_task(self._first_open(retry))

    async def _first_open(self, retry: bool) -> None:
        try:
            await self._open()
        except ConnectionError as exc:
            if retry and self.reconnection and not self.reconnecting and self.backoff.attempts == 0:
                self._reconnect()
            if not self.reconnecting:
                self._give_up(exc)
        finally:
            if self._open_task is asyncio.current_task():
                self._open_task = None

    async def _open(self) -> None:
        """Open a new Engine.IO connection; raise :class:`wsio.ConnectionError` on failure."""
        engine = _Engine(self, self.url, cookie_jar=self.cookie_jar, **self._engine_options)
        self._detach()
        self.engine = engine
        self._ready_state = "opening"
        self._skip_reconnect = False
        try:
            await engine.connect()
        except EngineConnectionError as exc:
            if self.engine is engine:
                self.engine = None
                self._ready_state = "closed"
            error = ConnectionError(str(exc))
            self._on_error(error)
            raise error from exc
        except asyncio.CancelledError:
            if self.engine is engine:
                self.engine = None
                self._ready_state = "closed"
            raise

    def _onopen(self, engine: _Engine) -> None:
        """The Engine.IO connection is open: every active namespace sends CONNECT."""
        self._ready_state = "open"
        self.decoder = self._decoder_factory()
        self._fire("open")
        for client in list(self.nsps.values()):
            if client._active and self.engine is engine:
                client._onopen()

    def _on_error(self, error: ConnectionError) -> None:
        self._fire("error", error)
        for client in list(self.nsps.values()):
            if client._active and not client.connected:
                client._onerror(error)

    # -- receiving ----------------------------------------------------------------------

    def _ondata(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data)
        except DecodeError as exc:
            logger.info("Socket.IO client %s: bad packet from the server: %s", self.url, exc)
            self._onclose("parse error")
            return
        if packet is None:
            return
        client = self.nsps.get(packet.nsp)
        if client is None or not client._active:
            return
        ptype = packet.type
        if ptype is _ACK:
            client._onack(packet)
        elif ptype is _EVENT:
            client._onevent(packet)
        elif ptype is _CONNECT:
            client._onconnect_packet(packet)
        elif ptype is _DISCONNECT:
            client._ondisconnect()
        else:
            client._onconnect_error(packet)

    # -- closing and reconnecting ----------------------------------------------------------

    def _detach(self) -> None:
        """Stop listening to the current engine and close it (in the background)."""
        engine = self.engine
        if engine is None:
            return
        self.engine = None
        engine._on_message = _ignore  # type: ignore[method-assign]
        if engine._state not in ("closed", "new"):
            self._close_task = spawn(engine.close())

    def _onclose(self, reason: str) -> None:
        """The connection is over for *reason* (the engine closed, or we close it)."""
        self._detach()
        self.decoder.reset()
        self.backoff.reset()
        was_open = self._ready_state != "closed"
        self._ready_state = "closed"
        if was_open:
            self._fire("close", reason)
        for client in list(self.nsps.values()):
            if client._active:
                client._onclose(reason)
        if self.reconnection and not self._skip_reconnect:
            self._reconnect()
        else:
            self._give_up(None)

    def _destroy(self, client: Client) -> None:
        """*client* left: close the connection when no namespace is active any more."""
        for other in self.nsps.values():
            if other._active:
                return
        self._close()

    def _close(self) -> None:
        self._skip_reconnect = True
        self.reconnecting = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._open_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._open_task = None
        if self._ready_state != "closed" or self.engine is not None:
            self._onclose("forced close")

    def _reconnect(self) -> None:
        if self.reconnecting or self._skip_reconnect:
            return
        if self.backoff.attempts >= self.reconnection_attempts:
            self.backoff.reset()
            self.reconnecting = False
            self._fire("reconnect_failed")
            self._give_up(ConnectionError("reconnection failed: no more attempts"))
            return
        delay = self.backoff.duration() / 1000
        self.reconnecting = True
        loop = self._loop or asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._start_attempt)

    def _start_attempt(self) -> None:
        self._timer = None
        if self._skip_reconnect:
            return
        assert self._loop is not None
        self._open_task = self._loop.create_task(self._attempt())

    async def _attempt(self) -> None:
        try:
            self._fire("reconnect_attempt", self.backoff.attempts)
            if self._skip_reconnect:
                return
            try:
                await self._open()
            except ConnectionError as exc:
                self.reconnecting = False
                self._reconnect()
                self._fire("reconnect_error", exc)
                return
            attempt = self.backoff.attempts
            self.reconnecting = False
            self.backoff.reset()
            self._fire("reconnect", attempt)
        finally:
            if self._open_task is asyncio.current_task():
                self._open_task = None

    def _give_up(self, error: ConnectionError | None) -> None:
        """No reconnection will follow: clients waiting to connect fail, ``wait()`` returns."""
        for client in list(self.nsps.values()):
            if client._active:
                client._give_up(error)


def _ignore(data: Any) -> None:
    pass


class _Engine(EngineClient):
    """The Engine.IO client under a manager: its hooks go to the manager."""

    def __init__(self, manager: Manager, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._manager = manager
        # The hot path: messages go straight to the manager's decoder.
        self._on_message = manager._ondata  # type: ignore[method-assign]

    def _on_open(self) -> None:
        if self._manager.engine is self:
            self._manager._onopen(self)

    def _on_close(self, reason: str) -> None:
        if self._manager.engine is self:
            self._manager._onclose(reason)

    def _on_upgrade(self) -> None:
        pass


class _Queued:
    """An emit in the retry queue (``retries`` option)."""

    __slots__ = ("ack", "data", "on_result", "pending", "timeout", "tries")

    def __init__(self, data: list[Any], ack: AckCallback | None, timeout: float | None) -> None:
        self.data = data
        self.ack = ack
        self.timeout = timeout
        self.tries = 0
        self.pending = False
        self.on_result: AckCallback | None = None


class Client(_Handlers):
    """A Socket.IO client: one namespace of a server, as ``socket.io-client``'s ``Socket``.

    Args:
        url: ``http(s)://host[:port][/namespace][?query]`` (``ws(s)://`` too);
            the path is the namespace, the query is sent with every request.
        auth: the CONNECT payload (a dict), or a function returning one
            (sync or async, called at every connection attempt).
        headers: extra HTTP header fields for every request and the WebSocket
            handshake (cookies from the server are added and kept).
        query: extra query parameters.
        path: the Engine.IO endpoint on the server.
        transports: ``"polling"`` and/or ``"websocket"``, tried in that
            order; ``upgrade`` allows the move from polling to WebSocket.
        reconnection: reconnect after the connection is lost.
        reconnection_attempts: attempts before giving up (None: no limit).
        reconnection_delay, reconnection_delay_max, randomization_factor:
            the backoff (seconds, seconds, 0..1), see :class:`Backoff`.
        timeout: seconds for :meth:`connect` (Engine.IO handshake and the
            namespace's CONNECT reply).
        ack_timeout: default timeout of :meth:`call` (and of each try with
            ``retries``), None for none.
        retries: send every emit with an ack id, one at a time, until the
            server acknowledges it, at most ``retries`` more times after a
            timeout (``ack_timeout``) or a lost connection (at-least-once).
        parser: ``"json"`` (the default parser) or ``"msgpack"``.
        ssl: TLS verification: None verifies with the system's CAs, False
            does not verify, or an :class:`ssl.SSLContext` (a private CA...).
        websocket_options: options of :func:`wsio.websocket.connect`.
        cookie_jar: a :class:`wsio.http.client.CookieJar` to keep cookies in.
        random: the random source of the backoff's jitter (tests).

    Attributes: ``id`` (the socket id, None while not connected),
    ``connected``, ``recovered`` (whether connection state recovery
    restored the session), ``active`` (whether it is connected or will try
    to be), ``nsp``, ``manager``.
    """

    manager: Manager

    def __init__(
        self,
        url: str,
        *,
        auth: Any = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        path: str = "/socket.io/",
        transports: Iterable[str] = ("polling", "websocket"),
        upgrade: bool = True,
        reconnection: bool = True,
        reconnection_attempts: int | None = None,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        ack_timeout: float | None = None,
        retries: int = 0,
        parser: str = "json",
        ssl: ssl_module.SSLContext | bool | None = None,
        websocket_options: Mapping[str, Any] | None = None,
        cookie_jar: CookieJar | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        try:
            nsp = urlsplit(url).path or "/"
        except ValueError as exc:
            raise ValueError(f"invalid URL {url!r}: {exc}") from None
        manager = Manager(
            url,
            headers=headers,
            query=query,
            path=path,
            transports=transports,
            upgrade=upgrade,
            reconnection=reconnection,
            reconnection_attempts=reconnection_attempts,
            reconnection_delay=reconnection_delay,
            reconnection_delay_max=reconnection_delay_max,
            randomization_factor=randomization_factor,
            timeout=timeout,
            parser=parser,
            ssl=ssl,
            websocket_options=websocket_options,
            cookie_jar=cookie_jar,
            random=random,
        )
        self._setup(manager, nsp, auth, ack_timeout, retries)
        self._owns_manager = True

    @classmethod
    def _attach(
        cls, manager: Manager, nsp: str, auth: Any, ack_timeout: float | None, retries: int
    ) -> Client:
        client = cls.__new__(cls)
        client._setup(manager, nsp, auth, ack_timeout, retries)
        client._owns_manager = False
        return client

    def _setup(
        self, manager: Manager, nsp: str, auth: Any, ack_timeout: float | None, retries: int
    ) -> None:
        _Handlers.__init__(self)
        if auth is not None and not isinstance(auth, dict) and not callable(auth):
            raise TypeError("auth must be a dict or a function returning one")
        if retries < 0:
            raise ValueError("retries must be at least 0")
        if "," in nsp:
            raise ValueError(f"invalid namespace {nsp!r}")
        self.manager = manager
        self.nsp = nsp
        self.auth = auth
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.id: str | None = None
        self.connected = False
        self.recovered = False
        self._active = False
        self._pid: str | None = None
        self._last_offset: str | None = None
        self._ids = 0
        self._acks: dict[int, AckEntry] = {}
        self._ack_timers: dict[int, asyncio.TimerHandle] = {}
        self._send_buffer: list[tuple[int | None, Sequence[str | bytes]]] = []
        self._recv_buffer: list[tuple[list[Any], int | None]] = []
        self._queue: deque[_Queued] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._retry = False
        self._connect_timer: asyncio.TimerHandle | None = None
        self._finished: asyncio.Event | None = None
        manager.nsps[nsp] = self

    def __repr__(self) -> str:
        state = "connected" if self.connected else "active" if self._active else "disconnected"
        return f"<wsio.Client {self.manager.url} {self.nsp} {self.id} {state}>"

    # -- state ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether the client is connected or trying to (reconnecting included)."""
        return self._active

    @property
    def disconnected(self) -> bool:
        """Whether the client is not connected."""
        return not self.connected

    @property
    def transport(self) -> str | None:
        """The current Engine.IO transport (``"polling"``, ``"websocket"``) or None."""
        engine = self.manager.engine
        return engine.transport if engine is not None else None

    def of(
        self,
        namespace: str,
        *,
        auth: Any = None,
        ack_timeout: float | None = _UNSET,
        retries: int | None = None,
    ) -> Client:
        """The client of another *namespace* over the same connection (call :meth:`connect`).

        ``ack_timeout`` and ``retries`` default to this client's.
        """
        return self.manager.socket(
            namespace,
            auth=auth,
            ack_timeout=self.ack_timeout if ack_timeout is _UNSET else ack_timeout,
            retries=self.retries if retries is None else retries,
        )

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owns_manager:
            await self.manager.close()
        else:
            await self.disconnect()

    # -- connecting --------------------------------------------------------------------------

    async def connect(self, *, retry: bool = False) -> None:
        """Join the namespace, opening the connection first if needed.

        Returns once the server accepted. Raises :class:`wsio.ConnectionError`
        when the server refuses (with its ``message`` and ``data``), when the
        connection cannot be opened, or after ``timeout``. With
        ``retry=True`` a connection that cannot be opened is tried again
        with the reconnection backoff, ``reconnection_attempts`` times.
        Does nothing when already connected.
        """
        if self.connected:
            return
        if self._waiter is not None:
            await asyncio.shield(self._waiter)
            return
        loop = asyncio.get_running_loop()
        manager = self.manager
        manager._loop = loop
        waiter = self._waiter = loop.create_future()
        self._retry = retry
        self._active = True
        if self._finished is not None:
            self._finished.clear()
        if manager._ready_state == "open":
            self._onopen()
        elif (
            manager._ready_state == "closed"
            and not manager.reconnecting
            and manager._open_task is None
        ):
            manager._start_open(retry)
        try:
            if retry:
                await waiter
            else:
                async with asyncio.timeout(manager.timeout):
                    await waiter
        except TimeoutError:
            error = ConnectionError(
                f"timeout: no answer from {manager.url} within {manager.timeout} s"
            )
            self._fire("connect_error", error)
            self._abandon()
            raise error from None
        except ConnectionError:
            self._abandon()
            raise
        except asyncio.CancelledError:
            if not self.connected:
                self._abandon()
            raise
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _abandon(self) -> None:
        """A :meth:`connect` failed: this client is done."""
        self._cancel_connect_timer()
        if self._active:
            self._active = False
            self.manager._destroy(self)
        self._set_finished()

    def _fail_waiter(self, error: BaseException) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _onopen(self) -> None:
        """The connection is open: send CONNECT (with the auth payload)."""
        auth = self.auth
        if callable(auth):
            result = auth()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                spawn(self._connect_with(result))
                return
            auth = result
        self._send_connect(auth)

    async def _connect_with(self, auth: Awaitable[Any]) -> None:
        engine = self.manager.engine
        try:
            data = await auth
        except Exception as exc:
            logger.exception("the auth function of %s failed", self.nsp)
            error = ConnectionError(f"the auth function failed: {exc!r}")
            self._fire("connect_error", error)
            self._fail_waiter(error)
            return
        if self._active and self.manager.engine is engine and engine is not None:
            self._send_connect(data)

    def _send_connect(self, auth: Any) -> None:
        if auth is not None and not isinstance(auth, dict):
            error = ConnectionError("auth must be a dict")
            self._fire("connect_error", error)
            self._fail_waiter(error)
            return
        if self._pid is not None:
            payload: dict[str, Any] = {"pid": self._pid}
            if self._last_offset is not None:
                payload["offset"] = self._last_offset
            if auth:
                payload.update(auth)
            auth = payload
        self._packet(Packet(_CONNECT, self.nsp, auth))
        if self._waiter is not None and self._retry:
            self._cancel_connect_timer()
            loop = self.manager._loop or asyncio.get_running_loop()
            self._connect_timer = loop.call_later(self.manager.timeout, self._connect_timed_out)

    def _cancel_connect_timer(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if self.connected or self._waiter is None:
            return
        error = ConnectionError(f"timeout: {self.nsp} got no CONNECT reply")
        self._fire("connect_error", error)
        self._fail_waiter(error)

    def _onconnect_packet(self, packet: Packet) -> None:
        data = packet.data
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str):
            error = ConnectionError(
                "the server's CONNECT reply has no sid: it is not a Socket.IO v5 "
                "server (Socket.IO 3 or later)"
            )
            self._fire("connect_error", error)
            self._fail_waiter(error)
            return
        pid = data.get("pid")
        self._onconnect(sid, pid if isinstance(pid, str) else None)

    def _onconnect(self, sid: str, pid: str | None) -> None:
        self._cancel_connect_timer()
        self.id = sid
        self.recovered = pid is not None and pid == self._pid
        self._pid = pid
        if not self.recovered:
            self._last_offset = None
        self.connected = True
        received, self._recv_buffer = self._recv_buffer, []
        for args, ack_id in received:
            self._dispatch(args, ack_id)
        buffered, self._send_buffer = self._send_buffer, []
        for _ack_id, messages in buffered:
            try:
                self._write(messages)
            except ValueError as exc:  # larger than this server's maxPayload
                logger.error("buffered packet dropped: %s", exc)
        self._drain_queue(force=True)
        self._fire("connect")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _onconnect_error(self, packet: Packet) -> None:
        data = packet.data
        if isinstance(data, dict):
            message = data.get("message")
            error = ConnectionError(
                str(message) if message is not None else "connection refused", data.get("data")
            )
        else:
            error = ConnectionError(str(data))
        self._cancel_connect_timer()
        if self._active:
            self._active = False
            self.manager._destroy(self)
        self._fire("connect_error", error)
        self._fail_waiter(error)
        self._set_finished()

    def _onerror(self, error: ConnectionError) -> None:
        """The connection could not be opened (not connected yet)."""
        self._fire("connect_error", error)
        if not self._retry:
            self._fail_waiter(error)

    def _give_up(self, error: ConnectionError | None) -> None:
        """The manager will not reconnect: this client is done."""
        if self._waiter is not None:
            self._fail_waiter(error or ConnectionError("the connection could not be opened"))
            return  # connect() cleans up
        if self.connected:
            return
        self._active = False
        self._set_finished()

    # -- disconnecting ------------------------------------------------------------------------

    async def disconnect(self) -> None:
        """Leave the namespace (reason ``"io client disconnect"``); no reconnection follows.

        The connection closes when no other namespace uses it; this waits
        until it has (the DISCONNECT packet is sent first).
        """
        self._disconnect()
        task = self.manager._close_task
        if task is not None and not task.done():
            await asyncio.shield(task)

    def _disconnect(self) -> None:
        was_connected = self.connected
        if was_connected:
            self._packet(Packet(_DISCONNECT, self.nsp))
        self._cancel_connect_timer()
        self._fail_waiter(ConnectionError("disconnect() was called while connecting"))
        if self._active:
            self._active = False
            self.manager._destroy(self)
        if was_connected:
            self._onclose("io client disconnect")
        self._set_finished()

    def _ondisconnect(self) -> None:
        """The server disconnected this namespace."""
        if self._active:
            self._active = False
            self.manager._destroy(self)
        self._onclose("io server disconnect")
        self._set_finished()

    def _onclose(self, reason: str) -> None:
        was_connected = self.connected
        self.connected = False
        self.id = None
        self._cancel_connect_timer()
        if was_connected:
            self._fire("disconnect", reason)
        self._clear_acks()
        if self._waiter is not None and not self._retry:
            error = ConnectionError(f"the connection closed while connecting ({reason})")
            self._fire("connect_error", error)
            self._fail_waiter(error)

    def _clear_acks(self) -> None:
        if not self._acks:
            return
        buffered = {ack_id for ack_id, _ in self._send_buffer if ack_id is not None}
        for ack_id in [i for i in self._acks if i not in buffered]:
            entry = self._acks.pop(ack_id)
            timer = self._ack_timers.pop(ack_id, None)
            if timer is not None:
                timer.cancel()
            try:
                _settle(entry, None, Disconnected("socket has been disconnected"))
            except Exception:
                logger.exception("ack callback failed")

    async def wait(self) -> None:
        """Wait until the client is disconnected for good (no reconnection will follow)."""
        if self._finished is None:
            self._finished = asyncio.Event()
            if not self._active:
                self._finished.set()
        await self._finished.wait()

    def _set_finished(self) -> None:
        if self._finished is not None:
            self._finished.set()

    # -- sending -----------------------------------------------------------------------------

    def _packet(self, packet: Packet) -> None:
        engine = self.manager.engine
        if engine is None:
            return
        for message in self.manager.encoder.encode(packet):
            engine.write(message)

    def _write(self, messages: Sequence[str | bytes]) -> Awaitable[None]:
        engine = self.manager.engine
        if engine is None:
            return DONE
        ok = True
        for message in messages:
            ok = engine.write(message)
        return DONE if ok else _Drain(engine)

    def emit(
        self, event: str | int | float, *args: Any, callback: Callable[..., Any] | None = None
    ) -> Awaitable[None]:
        """Send an event; acts at once, awaiting is optional.

        While disconnected the event is buffered and sent in order after the
        next (re)connection. ``callback`` is called with the server's
        acknowledgement arguments. The awaitable completes when the packet is
        handed to the transport (or the transport has room again).
        """
        if event.__class__ is str and event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        ack = _plain_ack(callback) if callback is not None else None
        if self.retries:
            self._add_to_queue([event, *args], ack, self.ack_timeout)
            return DONE
        return self._send_event([event, *args], ack, self.ack_timeout, False)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> Awaitable[None]:
        """Emit a ``"message"`` event."""
        return self.emit("message", *args, callback=callback)

    async def call(
        self, event: str | int | float, *args: Any, timeout: float | None = _UNSET
    ) -> Any:
        """Emit an event and wait for the server's acknowledgement.

        Returns the single ack argument, a tuple when there are several, None
        when there are none. Raises :class:`wsio.AckTimeout` after
        ``timeout`` seconds (default: the ``ack_timeout`` option; None waits
        forever) and :class:`wsio.Disconnected` when the connection is lost
        after the event was sent (an event still buffered waits for the
        reconnection). With ``retries``, ``timeout`` is per try.
        """
        if event.__class__ is str and event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        if timeout is _UNSET:
            timeout = self.ack_timeout
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.retries:

            def on_ack(args: list[Any] | None, error: BaseException | None) -> None:
                _settle(fut, args, error)

            self._add_to_queue([event, *args], on_ack, timeout)
        else:
            written = self._send_event([event, *args], fut, timeout, False)
            if written is not DONE:
                await written
        return await fut

    def timeout(self, seconds: float) -> _WithTimeout:
        """``await client.timeout(5).call(event, ...)``: a call with a timeout."""
        return _WithTimeout(self, seconds)

    @property
    def volatile(self) -> _Volatile:
        """``client.volatile.emit(...)``: dropped, not buffered, while disconnected."""
        return _Volatile(self)

    def _send_event(
        self,
        data: list[Any],
        ack: AckEntry | None,
        timeout: float | None,
        volatile: bool,
    ) -> Awaitable[None]:
        packet = Packet(_EVENT, self.nsp, data)
        ack_id: int | None = None
        if ack is not None:
            ack_id = packet.id = self._ids
            self._ids = ack_id + 1
        messages = self.manager.encoder.encode(packet)
        if ack is not None:
            assert ack_id is not None
            self._acks[ack_id] = ack
            if timeout is not None:
                loop = self.manager._loop or asyncio.get_running_loop()
                self._ack_timers[ack_id] = loop.call_later(
                    timeout, self._ack_timed_out, ack_id, timeout
                )
        if self.connected:
            return self._write(messages)
        if not volatile:
            self._send_buffer.append((ack_id, messages))
        return DONE

    def _ack_timed_out(self, ack_id: int, timeout: float) -> None:
        self._ack_timers.pop(ack_id, None)
        entry = self._acks.pop(ack_id, None)
        if entry is None:
            return
        self._send_buffer = [item for item in self._send_buffer if item[0] != ack_id]
        _settle(
            entry, None, AckTimeout(f"operation has timed out (no acknowledgement in {timeout} s)")
        )

    def _add_to_queue(
        self, data: list[Any], ack: AckCallback | None, timeout: float | None
    ) -> None:
        # Validate now: a packet that cannot be encoded must fail the emit, not the queue.
        self.manager.encoder.encode(Packet(_EVENT, self.nsp, data, 0))
        entry = _Queued(data, ack, timeout)
        queue = self._queue

        def on_result(args: list[Any] | None, error: BaseException | None) -> None:
            if not queue or queue[0] is not entry:
                return  # already acknowledged
            if error is not None:
                if entry.tries > self.retries:
                    queue.popleft()
                    if ack is not None:
                        ack(None, error)
            else:
                queue.popleft()
                if ack is not None:
                    ack(args, None)
            entry.pending = False
            self._drain_queue()

        entry.on_result = on_result
        queue.append(entry)
        self._drain_queue()

    def _drain_queue(self, force: bool = False) -> None:
        if not self.connected or not self._queue:
            return
        entry = self._queue[0]
        if entry.pending and not force:
            return
        entry.pending = True
        entry.tries += 1
        self._send_event(entry.data, entry.on_result, entry.timeout, False)

    # -- receiving -------------------------------------------------------------------------------

    def on_any(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: *fn* (event, *args) sees every event, before its handler."""
        listener = Handler(fn)
        self._any.append(listener)
        self._any_async = self._any_async or listener.is_async
        return fn

    def _onack(self, packet: Packet) -> None:
        ack_id: int = packet.id  # type: ignore[assignment]
        entry = self._acks.pop(ack_id, None)
        if entry is None:
            logger.debug("ack %s matches no pending emit", ack_id)
            return
        if self._ack_timers:
            timer = self._ack_timers.pop(ack_id, None)
            if timer is not None:
                timer.cancel()
        if entry.__class__ is _Future:
            if not entry.done():
                entry.set_result(ack_result(packet.data))
        else:
            _settle(entry, packet.data, None)

    def _onevent(self, packet: Packet) -> None:
        args: list[Any] = packet.data
        ack_id = packet.id
        if self._pid is not None and ack_id is None and len(args) > 1 and args[-1].__class__ is str:
            # Connection state recovery: the server appended the event's offset.
            self._last_offset = args.pop()
        if not self.connected:
            self._recv_buffer.append((args, ack_id))
            return
        self._dispatch(args, ack_id)

    def _dispatch(self, args: list[Any], ack_id: int | None) -> None:
        event = args[0]
        handler = self._handlers.get(event)
        catch_all = False
        if handler is None:
            handler = self._handlers.get("*")
            catch_all = handler is not None
        runner = self._runner
        if handler is not None and not handler.ordered and (handler.is_async or self._any_async):
            spawn(self._run_event(handler, catch_all, args, ack_id))
            return
        if (
            (
                runner is None
                or runner._task is None
                or (handler is not None and not handler.ordered)
            )
            and (handler is None or not handler.is_async)
            and not self._any_async
        ):
            # Nothing queued or running before it and nothing to await: run inline.
            result: Any = None
            try:
                for listener in self._any:
                    listener(*args)
                if handler is not None:
                    result = handler(*args) if catch_all else handler(*args[1:])
                    if asyncio.iscoroutine(result):
                        # A plain function that returned a coroutine: await it, in turn.
                        self._submit(lambda: self._finish_event(result, event, ack_id))
                        return
            except Exception:
                logger.exception("handler of %r failed", event)
                result = None
            if ack_id is not None:
                self._ack(ack_id, result)
            return
        self._submit(lambda: self._run_event(handler, catch_all, args, ack_id))

    async def _finish_event(self, result: Awaitable[Any], event: Any, ack_id: int | None) -> None:
        try:
            value = await result
        except Exception:
            logger.exception("handler of %r failed", event)
            value = None
        if ack_id is not None:
            self._ack(ack_id, value)

    async def _run_event(
        self, handler: Handler | None, catch_all: bool, args: list[Any], ack_id: int | None
    ) -> None:
        result = None
        try:
            for listener in self._any:
                r = listener(*args)
                if asyncio.iscoroutine(r) or isinstance(r, Awaitable):
                    await r
            if handler is not None:
                result = handler(*args) if catch_all else handler(*args[1:])
                if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                    result = await result
        except Exception:
            logger.exception("handler of %r failed", args[0])
            result = None
        if ack_id is not None:
            self._ack(ack_id, result)

    def _ack(self, ack_id: int, result: Any) -> None:
        if not self.connected:
            return
        try:
            messages = self.manager.encoder.encode(
                Packet(_ACK, self.nsp, ack_arguments(result), ack_id)
            )
        except (TypeError, ValueError):
            logger.exception("cannot encode the acknowledgement %s", ack_id)
            messages = self.manager.encoder.encode(Packet(_ACK, self.nsp, [], ack_id))
        self._write(messages)


def _plain_ack(callback: Callable[..., Any]) -> AckCallback:
    """An ack callback that calls *callback* with the answer, and ignores errors (as Node does)."""

    def ack(args: list[Any] | None, error: BaseException | None) -> None:
        if error is None:
            try:
                callback(*(args or ()))
            except Exception:
                logger.exception("ack callback failed")

    return ack


class _Volatile:
    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send the event now if connected, else drop it."""
        if event.__class__ is str and event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        return self._client._send_event([event, *args], None, None, True)


class _WithTimeout:
    __slots__ = ("_client", "_seconds")

    def __init__(self, client: Client, seconds: float) -> None:
        self._client = client
        self._seconds = seconds

    async def call(self, event: str | int | float, *args: Any) -> Any:
        """:meth:`Client.call` with this timeout."""
        return await self._client.call(event, *args, timeout=self._seconds)
