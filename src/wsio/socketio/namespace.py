"""Namespaces: handlers, middlewares, sockets and the broadcast shortcuts."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._util import is_async_callable
from .adapter import Adapter
from .broadcast import BroadcastOperator
from .socket import Socket

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Handler", "Namespace", "ParentNamespace"]

logger = logging.getLogger("wsio.socketio")

NamespaceMatcher = re.Pattern[str] | Callable[[str], bool]


class Handler:
    """A registered handler: the function, whether it is async, how many arguments it
    takes, and whether it waits its turn behind the events that came before it."""

    __slots__ = ("fn", "is_async", "max_args", "ordered")

    def __init__(self, fn: Callable[..., Any], ordered: bool = True) -> None:
        self.fn = fn
        self.ordered = ordered
        self.is_async = is_async_callable(fn)
        self.max_args: int | None = None
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):  # builtins without signatures
            return
        count = 0
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                return
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                count += 1
        self.max_args = count

    def __call__(self, *args: Any) -> Any:
        if self.max_args is not None and len(args) > self.max_args:
            args = args[: self.max_args]
        return self.fn(*args)


def socket_handler(fn: Callable[..., Any], ordered: bool = True) -> Handler:
    """A handler registered on one socket (``socket.on``): called without the socket."""
    inner = Handler(fn)
    handler = Handler(lambda socket, *args: inner(*args), ordered)
    handler.is_async = inner.is_async
    return handler


class _Emitter:
    """Broadcast shortcuts shared by namespaces and the server."""

    def _operator(self) -> BroadcastOperator:
        raise NotImplementedError

    def to(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Target the members of *room* (chainable)."""
        return self._operator().to(room)

    in_ = to

    def except_(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Leave out the members of *room* (chainable)."""
        return self._operator().except_(room)

    @property
    def volatile(self) -> BroadcastOperator:
        """Broadcast that may be dropped for clients not ready to receive."""
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        """Broadcast to this node's clients only."""
        return self._operator().local

    def compress(self, flag: bool = True) -> BroadcastOperator:
        """Allow or forbid compression of the broadcast."""
        return self._operator().compress(flag)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Broadcast with acknowledgements: ``await sio.timeout(5).call(event)``."""
        return self._operator().timeout(seconds)

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send an event to every client of the namespace."""
        return self._operator().emit(event, *args)

    def send(self, *args: Any) -> Awaitable[None]:
        """Emit a ``"message"`` event to every client."""
        return self._operator().send(*args)

    async def fetch_sockets(self) -> list[Any]:
        """Every socket of the namespace (across nodes with a multi-node adapter)."""
        return await self._operator().fetch_sockets()

    def sockets_join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make every socket join *rooms*."""
        return self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make every socket leave *rooms*."""
        return self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> Awaitable[None]:
        """Disconnect every socket."""
        return self._operator().disconnect_sockets(close)


class Namespace(_Emitter):
    """A namespace: its event handlers, middlewares, sockets and adapter.

    ``sio.of("/admin")`` returns one; the main namespace is ``sio.of("/")``.
    """

    def __init__(self, server: Server, name: str, parent: ParentNamespace | None = None) -> None:
        self.server = server
        self.name = name
        self.parent = parent
        self.sockets: dict[str, Socket] = {}
        self.handlers: dict[str | int | float, Handler] = {}
        self.middlewares: list[Handler] = []
        self.any_listeners: list[Handler] = []
        self._ack_id = 0
        self.adapter: Adapter = server._make_adapter(self)
        result = self.adapter.init()
        if result is not None:
            from .._util import spawn

            spawn(result)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} ({len(self.sockets)} sockets)>"

    def next_ack_id(self) -> int:
        """A fresh acknowledgement id (one counter per namespace, as Node's)."""
        self._ack_id += 1
        return self._ack_id

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self)

    # -- registration ---------------------------------------------------------------

    def on(
        self,
        event: str | int | float,
        handler: Callable[..., Any] | None = None,
        *,
        ordered: bool = True,
    ) -> Any:
        """Register the handler of *event* (``@nsp.on("chat")``).

        Reserved: ``"connect"`` (socket, auth), ``"disconnect"`` and
        ``"disconnecting"`` (socket, reason); ``"*"`` handles events that have
        no handler of their own (socket, event, *args). Other handlers get
        (socket, *args) and their return value is the acknowledgement.

        A socket's events reach their handlers one at a time, in arrival
        order. ``ordered=False`` lets this event's handler start as soon as
        the event arrives, next to one still running: for an event a client
        sends while a handler of the same socket awaits ``socket.call()``
        whose answer needs it (otherwise the call can only time out).
        """

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            name = "connect" if event == "connection" else event
            self.handlers[name] = Handler(fn, ordered)
            return fn

        return register(handler) if handler is not None else register

    def event(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register *fn* as the handler of the event named like it."""
        return self.on(fn.__name__, fn)

    def on_any(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call *fn* (socket, event, *args) for every incoming event, before its handler."""
        self.any_listeners.append(Handler(fn))
        return fn

    def use(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Add a middleware: ``fn(socket)`` runs before the connect handler, in order.

        It may be async; raising :class:`~wsio.ConnectionRefused` refuses the client.
        """
        self.middlewares.append(Handler(fn))
        return fn

    def handler(self, event: str | int | float) -> Handler | None:
        """The handler of *event* (a child namespace falls back to its parent's)."""
        h = self.handlers.get(event)
        if h is None and self.parent is not None:
            h = self.parent.handlers.get(event)
        return h

    def all_middlewares(self) -> list[Handler]:
        """The middlewares that run for this namespace (parent's first)."""
        if self.parent is not None:
            return [*self.parent.middlewares, *self.middlewares]
        return self.middlewares

    def all_any_listeners(self) -> list[Handler]:
        """The on_any listeners for this namespace."""
        if self.parent is not None:
            return [*self.parent.any_listeners, *self.any_listeners]
        return self.any_listeners

    # -- socket lifecycle ----------------------------------------------------------------

    def _socket_closing(self, socket: Socket, reason: str) -> None:
        """A connected socket is gone: disconnecting, leave rooms, disconnect (in order)."""
        runner = socket.runner
        own = socket._handlers or {}
        # The namespace's handler, then the socket's own (socket.on).
        disconnecting = [
            h for h in (self.handler("disconnecting"), own.get("disconnecting")) if h is not None
        ]
        disconnect = [
            h for h in (self.handler("disconnect"), own.get("disconnect")) if h is not None
        ]

        def call_all(handlers: list[Handler], what: str) -> None:
            for handler in handlers:
                try:
                    handler(socket, reason)
                except Exception:
                    logger.exception("%s handler failed", what)

        async def await_all(handlers: list[Handler], what: str) -> None:
            for handler in handlers:
                try:
                    result = handler(socket, reason)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("%s handler failed", what)

        if not runner.busy and not any(h.is_async for h in (*disconnecting, *disconnect)):
            # Nothing queued and nothing to await: finish synchronously.
            call_all(disconnecting, "disconnecting")
            self._forget(socket, reason)
            call_all(disconnect, "disconnect")
            return

        async def finish() -> None:
            await await_all(disconnecting, "disconnecting")
            self._forget(socket, reason)
            await await_all(disconnect, "disconnect")

        runner.submit(finish)

    def _forget(self, socket: Socket, reason: str) -> None:
        """Between the two handlers: keep its state for recovery (if that applies),
        leave every room, drop the socket from the namespace."""
        self.server._persist(socket, reason)
        self.adapter.delete_all(socket.id)
        self.sockets.pop(socket.id, None)


class ParentNamespace(Namespace):
    """Handlers for dynamic namespaces: every matching name gets a child namespace.

    Broadcasting on the parent reaches the sockets of every child.
    """

    def __init__(self, server: Server, matcher: NamespaceMatcher) -> None:
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}
        label = (
            matcher.pattern
            if isinstance(matcher, re.Pattern)
            else getattr(matcher, "__name__", "?")
        )
        super().__init__(server, f"<dynamic {label}>")

    def matches(self, name: str) -> bool:
        """Whether *name* belongs to this parent."""
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.fullmatch(name) is not None
        try:
            return bool(self.matcher(name))
        except Exception:
            logger.exception("namespace predicate failed")
            return False

    def _operator(self) -> BroadcastOperator:
        return _ParentOperator(self)


class _ParentOperator(BroadcastOperator):
    """Broadcasts of a parent namespace go to all of its children."""

    __slots__ = ()

    def _with(self, **changes: Any) -> BroadcastOperator:
        from dataclasses import replace

        timeout = changes.pop("timeout", self._timeout)
        return _ParentOperator(self.nsp, replace(self.opts, **changes), timeout=timeout)

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        parent = self.nsp
        assert isinstance(parent, ParentNamespace)
        for child in list(parent.children.values()):
            BroadcastOperator(child, self.opts).emit(event, *args)
        from .socket import DONE

        return DONE

    async def fetch_sockets(self) -> list[Any]:
        parent = self.nsp
        assert isinstance(parent, ParentNamespace)
        result: list[Any] = []
        for child in list(parent.children.values()):
            result.extend(await BroadcastOperator(child, self.opts).fetch_sockets())
        return result
