"""The Socket.IO v5 server: :class:`Server`, and :class:`Connection` (one per Engine.IO session)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket as socket_module
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .._util import new_id, spawn
from ..engineio import Server as EngineServer
from ..engineio.session import Session
from ..exceptions import ConnectionRefused
from ..http.request import Request, Response
from ..http.server import HTTPServer
from .adapter import Adapter, BroadcastOptions, Encoded
from .broadcast import BroadcastOperator, connecting_socket
from .namespace import Handler, Namespace, NamespaceMatcher, ParentNamespace, _Emitter
from .packets import DecodeError, Packet, PacketType, make_parser
from .socket import CONNECTED, CONNECTING, DISCONNECTED, Handshake, Socket

__all__ = ["Connection", "Server"]

logger = logging.getLogger("wsio.socketio")

_CONNECT = PacketType.CONNECT
_DISCONNECT = PacketType.DISCONNECT
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK
_CONNECT_ERROR = PacketType.CONNECT_ERROR

#: Disconnect reasons after which connection state recovery keeps a session.
RECOVERABLE_REASONS = frozenset(
    {"transport close", "transport error", "ping timeout", "server shutting down"}
)

#: Runner queue length at which reading from a flooding client pauses.
MAX_PENDING_EVENTS = 256


def _items(messages: Sequence[str | bytes]) -> list[str | bytes]:
    return [("4" + m) if m.__class__ is str else m for m in messages]


class Connection:
    """A client's Engine.IO session as Socket.IO sees it: its namespaces' sockets."""

    __slots__ = ("_connect_timer", "closed", "decoder", "server", "session", "sockets")

    def __init__(self, server: Server, session: Session) -> None:
        self.server = server
        self.session = session
        self.decoder = server._decoder_factory()
        self.sockets: dict[str, Socket] = {}
        self.closed = False
        self._connect_timer: asyncio.TimerHandle | None = session.loop.call_later(
            server.connect_timeout, self._connect_timeout
        )

    def __repr__(self) -> str:
        return f"<Connection {self.session.sid} {list(self.sockets)}>"

    # -- writing ---------------------------------------------------------------------

    def write_messages(self, messages: Sequence[str | bytes]) -> bool:
        """Write the Engine.IO messages of one packet."""
        return self.session.write_items(_items(messages))

    def write_encoded(self, encoded: Encoded, volatile: bool = False) -> bool:
        """Write a packet encoded once for many recipients."""
        session = self.session
        if session._ws is not None:
            return session.write_items(encoded.items, encoded.prepared, volatile=volatile)
        return session.write_items(encoded.items, volatile=volatile)

    def _send(self, packet: Packet) -> None:
        self.write_messages(self.server.encoder.encode(packet))

    # -- receiving -------------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        """An Engine.IO message arrived."""
        if self.closed:
            return
        try:
            packet = self.decoder.feed(data)
        except DecodeError as exc:
            logger.info("closing connection %s: parse error: %s", self.session.sid, exc)
            self.close("parse error")
            return
        if packet is None:
            return
        ptype = packet.type
        if ptype is not _CONNECT and not self.sockets and self._connect_timer is not None:
            # "If the first packet isn't CONNECT the server closes."
            logger.info(
                "closing connection %s: %s before any CONNECT", self.session.sid, ptype.name
            )
            self.close("parse error")
            return
        if ptype is _EVENT:
            self._on_event(packet)
        elif ptype is _ACK:
            socket = self.sockets.get(packet.nsp)
            if socket is not None:
                socket._on_ack(packet)
        elif ptype is _CONNECT:
            self._on_connect(packet)
        elif ptype is _DISCONNECT:
            socket = self.sockets.get(packet.nsp)
            if socket is not None:
                socket._on_close("client namespace disconnect")
        else:
            logger.info("closing connection %s: unexpected %s packet", self.session.sid, ptype.name)
            self.close("parse error")

    def _on_event(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.nsp)
        if socket is None or socket._state == DISCONNECTED:
            logger.debug("event for namespace %s that is not connected: ignored", packet.nsp)
            return
        nsp = socket.nsp
        args: list[Any] = packet.data
        event = args[0]
        own = socket._handlers
        handler = own.get(event) if own else None
        if handler is None:
            handler = nsp.handler(event)
        catch_all = False
        if handler is None:
            handler = own.get("*") if own else None
            if handler is None:
                handler = nsp.handler("*")
            catch_all = handler is not None
        listeners = nsp.all_any_listeners()
        if socket._any:
            listeners = [*listeners, *(listener for _, listener in socket._any)]
        ack_id = packet.id
        runner = socket._runner
        if handler is not None and not handler.ordered and socket._state == CONNECTED:
            self._run_unordered(socket, event, args, handler, catch_all, listeners, ack_id)
            return
        if (
            (runner is None or not runner.busy)
            and socket._state == CONNECTED
            and (handler is None or not handler.is_async)
            and not any(listener.is_async for listener in listeners)
        ):
            # Nothing queued before it and nothing to await: run inline.
            self._run_sync(socket, event, args, handler, catch_all, listeners, ack_id)
            return
        runner = socket.runner
        runner.submit(
            lambda: self._run_async(socket, event, args, handler, catch_all, listeners, ack_id)
        )
        if len(runner) == MAX_PENDING_EVENTS + 1:
            # Crossing the limit (once, not for every event beyond it).
            self._throttle(socket)

    def _run_unordered(
        self,
        socket: Socket,
        event: Any,
        args: list[Any],
        handler: Handler,
        catch_all: bool,
        listeners: list[Handler],
        ack_id: int | None,
    ) -> None:
        """An ``ordered=False`` handler: start it now, whatever runs or waits before it."""
        if not handler.is_async and not any(listener.is_async for listener in listeners):
            self._run_sync(socket, event, args, handler, catch_all, listeners, ack_id)
            return
        socket._unordered += 1

        async def run() -> None:
            try:
                await self._run_async(socket, event, args, handler, catch_all, listeners, ack_id)
            finally:
                socket._unordered -= 1

        spawn(run())
        if socket._unordered == MAX_PENDING_EVENTS + 1:
            self._throttle(socket)

    def _run_sync(
        self,
        socket: Socket,
        event: Any,
        args: list[Any],
        handler: Handler | None,
        catch_all: bool,
        listeners: list[Handler],
        ack_id: int | None,
    ) -> None:
        result = None
        try:
            for listener in listeners:
                listener(socket, *args)
            if handler is not None:
                result = handler(socket, *args) if catch_all else handler(socket, *args[1:])
        except Exception:
            logger.exception("handler of %r failed (socket %s)", event, socket.id)
            result = None
        if ack_id is not None:
            socket._ack(ack_id, result)

    async def _run_async(
        self,
        socket: Socket,
        event: Any,
        args: list[Any],
        handler: Handler | None,
        catch_all: bool,
        listeners: list[Handler],
        ack_id: int | None,
    ) -> None:
        if socket._state == DISCONNECTED:
            return
        result = None
        try:
            for listener in listeners:
                r = listener(socket, *args)
                if inspect.isawaitable(r):
                    await r
            if handler is not None:
                result = handler(socket, *args) if catch_all else handler(socket, *args[1:])
                if inspect.isawaitable(result):
                    result = await result
        except Exception:
            logger.exception("handler of %r failed (socket %s)", event, socket.id)
            result = None
        if ack_id is not None:
            socket._ack(ack_id, result)

    def _throttle(self, socket: Socket) -> None:
        """A client sends events faster than its handlers finish: stop reading it for a while."""
        ws = self.session._ws
        if ws is None or not hasattr(ws, "pause_reading"):
            return
        ws.pause_reading()
        runner = socket.runner

        def check() -> None:
            if self.closed:
                return
            if len(runner) + socket._unordered <= MAX_PENDING_EVENTS // 2:
                ws.resume_reading()
            else:
                self.session.loop.call_later(0.005, check)

        self.session.loop.call_later(0.005, check)

    # -- namespace connections ---------------------------------------------------------------

    def _on_connect(self, packet: Packet) -> None:
        name = packet.nsp
        if name in self.sockets:
            logger.debug("connection %s: second CONNECT to %s ignored", self.session.sid, name)
            return
        nsp = self.server._namespace_for(name)
        if nsp is None:
            self._send(Packet(_CONNECT_ERROR, name, {"message": "Invalid namespace"}))
            return
        auth = packet.data if isinstance(packet.data, dict) else None
        recovery = self.server.recovery
        pid = offset = None
        if recovery is not None and auth is not None and ("pid" in auth or "offset" in auth):
            auth = dict(auth)
            pid = auth.pop("pid", None)
            offset = auth.pop("offset", None)
            if not auth:
                auth = None
        info = self.session.handshake
        handshake = Handshake(
            headers=info.headers,
            query=info.query,
            auth=auth,
            address=info.address,
            time=info.time,
            issued=info.issued,
            secure=info.secure,
            url=info.url,
            xdomain=info.headers.get("Origin") is not None,
        )
        socket = Socket(nsp, self, new_id(), handshake)
        self.sockets[name] = socket
        socket.runner.submit(lambda: self._connect_socket(socket, auth, pid, offset))

    async def _connect_socket(
        self, socket: Socket, auth: dict[str, Any] | None, pid: Any = None, offset: Any = None
    ) -> None:
        nsp = socket.nsp
        missed: list[list[Any]] = []
        joins: list[Awaitable[None] | None] = []
        recovery = self.server.recovery
        if recovery is not None:
            if isinstance(pid, str):
                session = None
                try:
                    session = await nsp.adapter.restore_session(
                        pid, offset if isinstance(offset, str) else None
                    )
                except Exception:
                    logger.exception("restoring session %s failed", pid)
                if (
                    session is not None
                    and session.get("sid") not in nsp.sockets
                    and not self.closed
                ):
                    socket.id = session["sid"]
                    socket.pid = pid
                    socket.data = session.get("data") or {}
                    socket.recovered = True
                    socket._since = session.get("since")
                    missed = session.get("missed_packets") or []
                    rooms = [r for r in session.get("rooms") or () if r != socket.id]
                    if rooms:
                        joins.append(nsp.adapter.add_all(socket.id, rooms))
            if socket.pid is None:
                socket.pid = new_id()
        if recovery is not None and not socket.recovered:
            try:
                await nsp.adapter.recovery_start(socket)
            except Exception:
                logger.exception("recovery_start failed")
        if socket._state != CONNECTING or self.closed:
            return
        nsp.sockets[socket.id] = socket
        joins.append(nsp.adapter.add_all(socket.id, (socket.id,)))
        if socket.recovered:
            # Events logged while the session was restored and the rooms joined
            # reach the socket neither in the replay nor live: fetch them, and
            # drop the live copies of everything replayed.
            last = missed[-1][-1] if missed else offset
            start = f"({last}" if isinstance(last, str) else socket._since
            try:
                missed += await nsp.adapter.recovery_catch_up(socket, joins, start)
            except Exception:
                logger.exception("recovery catch-up of %s failed", socket.id)
            if missed:
                socket._replayed_key = nsp.adapter.offset_key(missed[-1][-1])
        token = connecting_socket.set(socket)
        refusal: dict[str, Any] | None = None
        try:
            skip = socket.recovered and recovery is not None and recovery.skip_middlewares
            if not skip:
                for middleware in nsp.all_middlewares():
                    result = middleware(socket)
                    if inspect.isawaitable(result):
                        await result
                    if socket._state != CONNECTING:
                        return
            handler = nsp.handler("connect")
            if handler is not None:
                result = handler(socket, auth)
                if inspect.isawaitable(result):
                    await result
        except ConnectionRefused as exc:
            refusal = exc.payload()
        except Exception:
            logger.exception("connect handler of %s failed", nsp.name)
            refusal = {"message": "internal server error"}
        finally:
            connecting_socket.reset(token)
        if socket._state != CONNECTING or self.closed:
            return
        if refusal is not None:
            self._send(Packet(_CONNECT_ERROR, nsp.name, refusal))
            socket._on_close("connection refused")
            return
        self._accept(socket, missed)

    def _accept(self, socket: Socket, missed: list[list[Any]] | None = None) -> None:
        socket._state = CONNECTED
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        reply: dict[str, Any] = {"sid": socket.id}
        if socket.pid is not None:
            reply["pid"] = socket.pid
        self._send(Packet(_CONNECT, socket.nsp.name, reply))
        if socket.pid is not None:
            socket.nsp.adapter.session_started(socket)
        for data in missed or ():
            self._send(Packet(_EVENT, socket.nsp.name, data))
        held, socket._held = socket._held, None
        for item, volatile in held or ():
            if isinstance(item, Encoded):
                if (
                    socket._replayed_key is not None
                    and item.offset is not None
                    and socket.replayed(item)
                ):
                    continue  # already in the replay
                self.write_encoded(item, volatile)
            elif callable(item):
                # A broadcast (or room change) the connect handler made.
                try:
                    result = item()
                    if result is not None and inspect.isawaitable(result):
                        spawn(result)
                except Exception:
                    logger.exception("deferred broadcast failed")
            else:
                self.write_messages(item)
        deferred, socket._deferred = socket._deferred, None
        for action in deferred or ():
            try:
                result = action()
                if result is not None and inspect.isawaitable(result):
                    spawn(result)
            except Exception:
                logger.exception("deferred broadcast failed")

    def _connect_timeout(self) -> None:
        self._connect_timer = None
        if not self.closed and not any(s._state == CONNECTED for s in self.sockets.values()):
            logger.info("connection %s joined no namespace in time: closing", self.session.sid)
            self.close("connect timeout")

    def forget(self, socket: Socket) -> None:
        """Drop a socket that left (its namespace connection is over)."""
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    # -- closing ---------------------------------------------------------------------------------

    def close(self, reason: str, *, send_disconnect: bool = False) -> None:
        """End every socket with *reason* and close the Engine.IO session."""
        if self.closed:
            return
        if send_disconnect:
            for socket in list(self.sockets.values()):
                if socket._state == CONNECTED:
                    self._send(Packet(_DISCONNECT, socket.nsp.name))
        self._closed_with(reason)
        spawn(self.session.close())

    def _closed_with(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self.decoder.reset()
        for socket in list(self.sockets.values()):
            socket._on_close(reason)
        self.sockets.clear()


class _Engine(EngineServer):
    """The Engine.IO server under a Socket.IO server."""

    def __init__(self, sio: Server, **options: Any) -> None:
        super().__init__(**options)
        self.sio = sio

    async def startup(self) -> None:
        """Before serving (ASGI lifespan startup): the adapters get ready."""
        await self.sio._adapters_ready()
        if self.router is not None:
            await self.router.start()

    def _on_connect(self, session: Session) -> None:
        session.owner = Connection(self.sio, session)

    def _on_message(self, session: Session, data: str | bytes) -> None:
        session.owner.on_message(data)

    def _on_upgrade(self, session: Session) -> None:
        pass

    def _on_close(self, session: Session, reason: str) -> None:
        conn = session.owner
        if conn is not None:
            conn._closed_with("server shutting down" if self.sio._shutting_down else reason)

    async def handle_other(self, request: Request) -> Response:
        response = self.sio._serve_client(request)
        if response is not None:
            return response
        return await super().handle_other(request)

    async def shutdown(self) -> None:
        """Stopping the Engine.IO server (an ASGI lifespan does) stops Socket.IO with it."""
        await self.sio.shutdown()

    async def shutdown_engine(self) -> None:
        """Close every session and stop listening (the Engine.IO part of a shutdown)."""
        await super().shutdown()


class Server(_Emitter):
    """A Socket.IO v5 server, wire-compatible with the official Node server.

    Socket.IO options: ``path`` ("/socket.io/"), ``parser`` ("json" or
    "msgpack"), ``adapter`` (a callable making the :class:`Adapter` of a
    namespace; in-memory by default), ``connect_timeout`` (45 s: a client
    that joins no namespace in that time is dropped), ``serve_client``
    (serve the official browser bundle at ``/socket.io/socket.io.js`` when
    the npm ``socket.io-client`` package is installed, see the guide),
    ``connection_state_recovery`` (False, True or a ``RecoveryOptions``),
    ``sticky_sessions`` (True; False with a cluster adapter such as
    :class:`wsio.adapters.RedisAdapter` serves a long-polling session on any
    node, through the node that owns it: see :mod:`wsio.engineio.cluster`).
    Every :class:`wsio.engineio.Server` option is accepted too
    (``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``,
    ``cors_allowed_origins``, ``transports``, ...).
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        parser: str = "json",
        adapter: Callable[[Namespace], Adapter] | None = None,
        connect_timeout: float = 45,
        serve_client: bool = False,
        client_dist: str | None = None,
        connection_state_recovery: Any = False,
        sticky_sessions: bool = True,
        **engine_options: Any,
    ) -> None:
        self.eio = _Engine(self, path=path, **engine_options)
        self.sticky_sessions = sticky_sessions
        parser_classes = make_parser(parser)
        self.parser = parser
        self.encoder = parser_classes.encoder()
        self._decoder_factory = parser_classes.decoder
        self._adapter_factory = adapter or Adapter
        self.connect_timeout = connect_timeout
        self.serve_client = serve_client
        self.client_dist = client_dist
        from .recovery import RecoveryOptions

        if connection_state_recovery is True:
            connection_state_recovery = RecoveryOptions()
        self.recovery: RecoveryOptions | None = connection_state_recovery or None
        self.namespaces: dict[str, Namespace] = {}
        self.parents: list[ParentNamespace] = []
        self._new_namespace_handlers: list[Handler] = []
        self._pending_hooks: list[Awaitable[Any]] = []
        self._outgoing: list[Handler] = []
        self._shutting_down = False
        self._recovery_store: Any = None
        self._server_events: dict[tuple[str, Any], Handler] = {}
        self.namespaces["/"] = Namespace(self, "/")
        if not sticky_sessions:
            self._route_sessions()

    def _route_sessions(self) -> None:
        """Serve sessions owned by other nodes through them (``sticky_sessions=False``)."""
        bus = getattr(self._adapter_factory, "bus", None)
        if bus is None:
            raise ValueError(
                "sticky_sessions=False needs a cluster adapter, e.g. adapter=RedisAdapter(url)"
            )
        from ..engineio.cluster import Router

        self.eio.router = Router(self.eio, bus(self))

    def __repr__(self) -> str:
        return f"<wsio.Server {self.eio.path} {len(self.eio.sessions)} sessions>"

    # -- namespaces -----------------------------------------------------------------------

    @property
    def sockets(self) -> dict[str, Socket]:
        """The sockets of the main namespace, by id."""
        return self.namespaces["/"].sockets

    def _make_adapter(self, nsp: Namespace) -> Adapter:
        return self._adapter_factory(nsp)

    def set_adapter(
        self, adapter: Callable[[Namespace], Adapter], *, sticky_sessions: bool | None = None
    ) -> None:
        """Replace the adapter factory (the ``adapter`` option) of a server that has no clients yet.

        Every namespace gets a new adapter from *adapter*; call it before
        :meth:`start` (``wsio run --redis URL`` does, for an app built
        without one).
        """
        if self.eio.sessions:
            raise RuntimeError("set_adapter() needs a server without clients: call it first")
        import asyncio

        try:
            asyncio.get_running_loop()
            running = True
        except RuntimeError:
            running = False
        self._adapter_factory = adapter
        if sticky_sessions is not None:
            self.sticky_sessions = sticky_sessions
        if not self.sticky_sessions:
            self._route_sessions()
        for nsp in [*self.namespaces.values(), *self.parents]:
            old, nsp.adapter = nsp.adapter, adapter(nsp)
            for result in (old.close(), nsp.adapter.init()):
                if result is not None and running:
                    spawn(result)
                elif inspect.iscoroutine(result):
                    result.close()  # without a loop nothing was started: nothing to undo

    def of(self, name: str | NamespaceMatcher) -> Namespace:
        """The namespace called *name* (created on first use).

        A compiled regex or a predicate makes a dynamic namespace: every name
        a client connects to that matches gets a child namespace using the
        handlers and middlewares registered on the returned parent.
        """
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            nsp = self.namespaces.get(name)
            if nsp is None:
                nsp = self.namespaces[name] = Namespace(self, name)
                self._announce_namespace(nsp)
            return nsp
        parent = ParentNamespace(self, name)
        self.parents.append(parent)
        return parent

    def _namespace_for(self, name: str) -> Namespace | None:
        nsp = self.namespaces.get(name)
        if nsp is not None:
            return nsp
        for parent in self.parents:
            if parent.matches(name):
                child = Namespace(self, name, parent)
                self.namespaces[name] = child
                parent.children[name] = child
                self._announce_namespace(child)
                return child
        return None

    def _announce_namespace(self, nsp: Namespace) -> None:
        """Run the ``new_namespace`` hooks for *nsp*; coroutines of hooks that ran
        before the event loop did start with the server."""
        for handler in self._new_namespace_handlers:
            try:
                result = handler(nsp)
            except Exception:
                logger.exception("new_namespace handler failed")
                continue
            if inspect.isawaitable(result):
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    self._pending_hooks.append(result)
                else:
                    spawn(result)

    # -- handlers (main namespace) ------------------------------------------------------------

    def on(
        self,
        event: str | int | float,
        handler: Callable[..., Any] | None = None,
        *,
        ordered: bool = True,
    ) -> Any:
        """Register a handler on the main namespace (``@sio.on("chat")``); see
        :meth:`Namespace.on` for ``ordered``.

        ``"new_namespace"`` registers a server-level hook called with each
        namespace created afterwards, by :meth:`of` or when a client joins a
        dynamic one (as Node's ``new_namespace``; not for ``"/"``).
        """
        if event == "new_namespace":

            def register(fn: Callable[..., Any]) -> Callable[..., Any]:
                self._new_namespace_handlers.append(Handler(fn))
                return fn

            return register(handler) if handler is not None else register
        return self.namespaces["/"].on(event, handler, ordered=ordered)

    def event(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register *fn* under its own name on the main namespace."""
        return self.namespaces["/"].event(fn)

    def on_any(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call *fn* (socket, event, *args) for every incoming event of the main namespace."""
        return self.namespaces["/"].on_any(fn)

    def on_any_outgoing(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call *fn* (socket, event, *args) for every event sent to a socket (any namespace)."""
        self._outgoing.append(Handler(fn))
        return fn

    def use(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Add a middleware to the main namespace."""
        return self.namespaces["/"].use(fn)

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self.namespaces["/"])

    def _notify_outgoing(self, socket: Socket, event: Any, args: tuple[Any, ...]) -> None:
        for listener in self._outgoing:
            try:
                result = listener(socket, event, *args)
                if inspect.isawaitable(result):
                    spawn(result)
            except Exception:
                logger.exception("on_any_outgoing listener failed")

    def _notify_outgoing_broadcast(
        self,
        nsp: Namespace,
        event: Any,
        args: tuple[Any, ...],
        opts: BroadcastOptions | None = None,
    ) -> None:
        if self._outgoing:
            # Only the local recipients the broadcast selects (all when no options).
            if opts is None:
                sockets = list(nsp.sockets.values())
            else:
                sockets = nsp.adapter.local_sockets(opts)
            for socket in sockets:
                if socket._state == CONNECTED:
                    self._notify_outgoing(socket, event, args)

    async def server_side_emit(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Emit to the other nodes of the cluster (a no-op with the in-memory adapter).

        Their :meth:`on_server_event` handlers run. Without ``timeout`` no
        answer is awaited (the result is ``[]``); with one, the result is the
        list of the other nodes' answers (the handlers' return values), and
        :class:`~wsio.AckTimeout` carries the answers so far if not all came.
        """
        return await self.namespaces["/"].adapter.server_side_emit([event, *args], timeout)

    def on_server_event(
        self, event: str, handler: Callable[..., Any] | None = None, *, namespace: str = "/"
    ) -> Any:
        """Register a handler for an event another node sent with :meth:`server_side_emit`.

        ``@sio.on_server_event("name")``: the handler gets the event's
        arguments (no socket) and may be async; its return value is the
        answer the emitting node receives (Node's ``io.on("name", ...)`` for
        ``serverSideEmit``).
        """

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._server_events[(namespace, event)] = Handler(fn)
            return fn

        return register(handler) if handler is not None else register

    # -- connection state recovery -------------------------------------------------------------

    def _persist(self, socket: Socket, reason: str) -> None:
        """Keep a departing socket's state when recovery is on and the reason allows it."""
        if self.recovery is None or socket.pid is None:
            return
        if reason not in RECOVERABLE_REASONS:
            socket.nsp.adapter.discard_session(socket.pid)
            return
        session = {
            "sid": socket.id,
            "pid": socket.pid,
            "rooms": sorted(socket.rooms),
            "data": socket.data,
            "since": socket._since
            if socket._since is not None
            else socket.nsp.adapter.recovery_position(),
        }
        try:
            result = socket.nsp.adapter.persist_session(session)
            if result is not None:
                spawn(result)
        except Exception:
            logger.exception("persisting session of %s failed", socket.id)

    # -- serving -----------------------------------------------------------------------------

    def _client_dist_dir(self) -> str | None:
        candidates = [self.client_dist, os.environ.get("WSIO_CLIENT_DIST")]
        here = os.getcwd()
        candidates.append(os.path.join(here, "node_modules", "socket.io-client", "dist"))
        for candidate in candidates:
            if candidate and os.path.isdir(candidate):
                return candidate
        return None

    def _serve_client(self, request: Request) -> Response | None:
        if not self.serve_client or request.method not in ("GET", "HEAD"):
            return None
        prefix = self.eio.path
        if not request.path.startswith(prefix):
            return None
        name = request.path[len(prefix) :]
        if name not in (
            "socket.io.js",
            "socket.io.js.map",
            "socket.io.min.js",
            "socket.io.min.js.map",
            "socket.io.esm.min.js",
            "socket.io.esm.min.js.map",
            "socket.io.msgpack.min.js",
            "socket.io.msgpack.min.js.map",
        ):
            return None
        directory = self._client_dist_dir()
        if directory is None:
            return Response.text(
                404,
                "the socket.io browser client is not installed: run `npm install socket.io-client` "
                "in the working directory, or pass client_dist= / set WSIO_CLIENT_DIST\n",
            )
        filename = os.path.join(directory, name)
        if not os.path.isfile(filename):
            return Response.text(404, "not found\n")
        with open(filename, "rb") as f:
            body = f.read()
        ctype = (
            "application/json" if name.endswith(".map") else "application/javascript; charset=utf-8"
        )
        return Response(200, body, [("Cache-Control", "public, max-age=3600")], ctype)

    async def handle(self, request: Request) -> Response:
        """Built-in HTTP server entry point (plain requests)."""
        return await self.eio.handle(request)

    async def handle_upgrade(self, request: Request, conn: Any) -> Response | None:
        """Built-in HTTP server entry point (WebSocket upgrades)."""
        return await self.eio.handle_upgrade(request, conn)

    async def start(
        self,
        host: str | list[str] | None = "127.0.0.1",
        port: int = 0,
        *,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket_module.socket | None = None,
        reuse_port: bool = False,
        static_files: Mapping[str, str] | None = None,
    ) -> HTTPServer:
        """Start serving on the built-in HTTP server; returns it (``.port`` is the port)."""
        await self._adapters_ready()
        return await self.eio.start(
            host, port, ssl=ssl, sock=sock, reuse_port=reuse_port, static_files=static_files
        )

    async def _adapters_ready(self) -> None:
        """Let networked adapters connect before clients come (an adapter's optional ``ready()``)."""
        hooks, self._pending_hooks = self._pending_hooks, []
        for hook in hooks:
            spawn(hook)
        for nsp in list(self.namespaces.values()):
            ready = getattr(nsp.adapter, "ready", None)
            if ready is not None:
                await ready()

    async def shutdown(self) -> None:
        """Disconnect everyone with ``"server shutting down"`` and stop accepting."""
        self._shutting_down = True
        await self.eio.shutdown_engine()
        for nsp in list(self.namespaces.values()):
            result = nsp.adapter.close()
            if result is not None:
                await result

    def run(self, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
        """Serve until interrupted (blocking): ``sio.run(host="127.0.0.1", port=8000)``."""
        from ..cli import run_async, serve_until_signal

        async def main() -> None:
            http = await self.start(host, port, **kwargs)
            print(f"wsio: Socket.IO server on http://{host}:{http.port}{self.eio.path}", flush=True)
            await serve_until_signal(self.shutdown)

        run_async(main())

    def asgi_app(self, other_app: Any = None, static_files: Mapping[str, str] | None = None) -> Any:
        """This server as an ASGI application (uvicorn, hypercorn, mounted in Starlette/FastAPI)."""
        return self.eio.asgi_app(other_app=other_app, static_files=static_files)
