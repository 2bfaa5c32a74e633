"""A client's connection to one namespace, as the server sees it: :class:`Socket`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._util import SerialRunner
from ..exceptions import AckTimeout, Disconnected
from ..http.headers import Headers
from .adapter import BroadcastOptions, Encoded
from .packets import RESERVED_EVENTS, Packet, PacketType

if TYPE_CHECKING:
    from .broadcast import BroadcastOperator
    from .namespace import Handler, Namespace
    from .server import Connection, Server

__all__ = ["Done", "Handshake", "Socket"]

logger = logging.getLogger("wsio.socketio")

_EVENT = PacketType.EVENT
_ACK = PacketType.ACK

# Socket states
CONNECTING = 0
CONNECTED = 1
DISCONNECTED = 2

AckCallback = Callable[[list[Any] | None, BaseException | None], None]


class Done:
    """An awaitable that is already complete (what ``emit`` returns when nothing waits)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "<Done>"


DONE = Done()


class _Drain:
    """An awaitable that waits until a connection's buffer has room."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __await__(self) -> Generator[Any, None, None]:
        return self._conn.session.drain().__await__()


@dataclass(slots=True)
class Handshake:
    """The client's handshake, as Node's ``socket.handshake``.

    ``auth`` is the payload of the client's CONNECT packet (None if none),
    ``time`` / ``issued`` when the Engine.IO session opened.
    """

    headers: Headers
    query: dict[str, str]
    auth: dict[str, Any] | None
    address: str | None
    time: str
    issued: int
    secure: bool
    url: str
    xdomain: bool


def ack_arguments(result: Any) -> list[Any]:
    """A handler's return value as ACK arguments: None -> [], tuple -> several, else one."""
    if result is None:
        return []
    if result.__class__ is tuple:
        return list(result)
    return [result]


def ack_result(args: list[Any]) -> Any:
    """ACK arguments as a call result: [] -> None, [x] -> x, several -> tuple."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


class Socket:
    """One client in one namespace.

    ``id`` is random and distinct from the Engine.IO session id; ``data``
    is free for the application; ``rooms`` the rooms it is in (its own id
    included). Emits act at once and return an awaitable that completes when
    the packet is handed to the transport (awaiting is optional).
    """

    __slots__ = (
        "_acks",
        "_any",
        "_deferred",
        "_handlers",
        "_held",
        "_replayed_key",
        "_runner",
        "_since",
        "_state",
        "_unordered",
        "conn",
        "data",
        "handshake",
        "id",
        "nsp",
        "pid",
        "recovered",
        "server",
    )

    def __init__(self, nsp: Namespace, conn: Connection, sid: str, handshake: Handshake) -> None:
        self.nsp = nsp
        self.server: Server = nsp.server
        self.conn = conn
        self.id = sid
        self.handshake = handshake
        self.data: dict[str, Any] = {}
        self.recovered = False
        """Whether connection state recovery restored this socket."""
        self.pid: str | None = None
        self._state = CONNECTING
        self._acks: dict[int, AckCallback] = {}
        self._held: (
            list[tuple[Encoded | Sequence[str | bytes] | Callable[[], Any], bool]] | None
        ) = []
        self._deferred: list[Callable[[], Any]] | None = []
        self._runner: SerialRunner | None = None
        self._handlers: dict[Any, Handler] | None = None  # socket.on(...)
        self._any: list[tuple[Callable[..., Any], Handler]] | None = None  # socket.on_any(...)
        self._unordered = 0  # ordered=False handlers running
        self._replayed_key: Any = None  # recovery: the last offset replayed, comparable
        self._since: Any = None  # recovery: log position when the socket started receiving

    def __repr__(self) -> str:
        state = ("connecting", "connected", "disconnected")[self._state]
        return f"<Socket {self.id} {self.nsp.name} {state}>"

    # -- state -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is connected to its namespace."""
        return self._state == CONNECTED

    @property
    def disconnected(self) -> bool:
        """Whether the socket is gone."""
        return self._state == DISCONNECTED

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in (a copy)."""
        rooms = self.nsp.adapter.socket_rooms(self.id)
        return set(rooms) if rooms else set()

    @property
    def transport(self) -> str:
        """The current Engine.IO transport: ``"polling"`` or ``"websocket"``."""
        return self.conn.session.transport

    @property
    def runner(self) -> SerialRunner:
        """Runs this socket's event handlers one at a time, in order."""
        runner = self._runner
        if runner is None:
            runner = self._runner = SerialRunner()
        return runner

    # -- handlers of this socket only ----------------------------------------------

    def on(
        self,
        event: str | int | float,
        handler: Callable[..., Any] | None = None,
        *,
        ordered: bool = True,
    ) -> Any:
        """Handle *event* for this socket only (Node's ``socket.on``); usable as a decorator.

        The handler gets the event's arguments, without the socket (it is
        usually a closure made in the connect handler), and its return value
        is the acknowledgement. It takes precedence over the namespace's
        handler of the same event; ``"*"`` is this socket's catch-all
        (event, *args). ``"disconnecting"`` and ``"disconnect"`` get the
        reason, after the namespace's handlers of those. ``ordered`` as in
        :meth:`Namespace.on`. The handlers go with the socket.
        """

        from .namespace import socket_handler  # (namespace imports this module)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if self._handlers is None:
                self._handlers = {}
            self._handlers[event] = socket_handler(fn, ordered)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str | int | float) -> None:
        """Remove this socket's own handler of *event* (see :meth:`on`)."""
        if self._handlers is not None:
            self._handlers.pop(event, None)

    def on_any(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call *fn* (event, *args) for every event this socket receives, before its
        handler (Node's ``socket.onAny``); after the namespace's ``on_any`` listeners."""
        from .namespace import socket_handler

        if self._any is None:
            self._any = []
        self._any.append((fn, socket_handler(fn)))
        return fn

    def off_any(self, fn: Callable[..., Any] | None = None) -> None:
        """Remove *fn* from this socket's :meth:`on_any` listeners (all of them without *fn*)."""
        if self._any is not None:
            self._any = [pair for pair in self._any if fn is not None and pair[0] is not fn]

    # -- writing ----------------------------------------------------------------------

    def _write_encoded(
        self, encoded: Encoded, volatile: bool = False, packet: Packet | None = None
    ) -> bool:
        """Write a packet encoded once for many (held while connecting)."""
        if self._replayed_key is not None and encoded.offset is not None and self.replayed(encoded):
            return True
        state = self._state
        if state == CONNECTED:
            return self.conn.write_encoded(encoded, volatile)
        if state == CONNECTING and self._held is not None:
            self._held.append((encoded, volatile))
        return True

    def replayed(self, encoded: Encoded) -> bool:
        """Whether a logged event was already sent as part of the recovery replay."""
        key = self.nsp.adapter.offset_key(encoded.offset)
        return key is not None and key <= self._replayed_key

    def _write_messages(self, messages: Sequence[str | bytes]) -> bool:
        state = self._state
        if state == CONNECTED:
            return self.conn.write_messages(messages)
        if state == CONNECTING and self._held is not None:
            self._held.append((messages, False))
        return True

    def _send_packet(self, packet: Packet) -> Awaitable[None]:
        """Encode and write one packet; returns the awaitable ``emit`` hands back."""
        if self._state == DISCONNECTED:
            return DONE
        messages = self.server.encoder.encode(packet)
        if self._write_messages(messages):
            return DONE
        return _Drain(self.conn)

    def emit(
        self, event: str | int | float, *args: Any, callback: Callable[..., Any] | None = None
    ) -> Awaitable[None]:
        """Send an event to this client.

        Acts at once; the awaitable it returns completes when the packet is
        handed to the transport (or when the transport has room again).
        ``callback`` receives the client's acknowledgement arguments.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        packet = Packet(_EVENT, self.nsp.name, [event, *args])
        if callback is not None:
            ack_id = self.nsp.next_ack_id()
            packet.id = ack_id

            def on_ack(ack_args: list[Any] | None, error: BaseException | None) -> None:
                if error is None:
                    try:
                        callback(*(ack_args or ()))
                    except Exception:
                        logger.exception("ack callback failed")

            self._acks[ack_id] = on_ack
        self.server._notify_outgoing(self, event, args)
        if callback is None and self.server.recovery is not None:
            # Through the adapter, so that the packet gets an offset and is logged.
            result = self.nsp.adapter.broadcast(
                packet, BroadcastOptions(rooms=frozenset((self.id,)))
            )
            return result if result is not None else DONE
        return self._send_packet(packet)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> Awaitable[None]:
        """Emit a ``"message"`` event."""
        return self.emit("message", *args, callback=callback)

    async def call(self, event: str | int | float, *args: Any, timeout: float | None = None) -> Any:
        """Emit an event and wait for the client's acknowledgement.

        Returns the single ack argument, a tuple when there are several,
        None when there are none. Raises :class:`~wsio.AckTimeout` after
        ``timeout`` seconds and :class:`~wsio.Disconnected` if the socket goes
        away first.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        if self._state == DISCONNECTED:
            raise Disconnected(f"socket {self.id} is disconnected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        ack_id = self.nsp.next_ack_id()

        def on_ack(ack_args: list[Any] | None, error: BaseException | None) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(ack_result(ack_args or []))

        self._acks[ack_id] = on_ack
        self.server._notify_outgoing(self, event, args)
        await self._send_packet(Packet(_EVENT, self.nsp.name, [event, *args], ack_id))
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._acks.pop(ack_id, None)
            runner = self._runner
            if runner is not None and len(runner):
                # Perhaps the answer needed one of the events waiting behind
                # the handler that made this call.
                logger.warning(
                    "call(%r) on socket %s timed out while %d event(s) of the socket waited "
                    "for their handlers; if the client needs one of them handled before it "
                    "answers, register that handler with ordered=False",
                    event,
                    self.id,
                    len(runner),
                )
            raise AckTimeout(f"no acknowledgement for {event!r} within {timeout} s") from None

    def timeout(self, seconds: float) -> _SocketWithTimeout:
        """``await socket.timeout(5).call(event, ...)``: a call with a timeout."""
        return _SocketWithTimeout(self, seconds)

    def _expect_ack(self, ack_id: int, on_ack: Callable[[str, list[Any]], None]) -> bool:
        """Register the answer callback of a broadcast with acks."""
        if self._state == DISCONNECTED:
            return False
        sid = self.id

        def callback(ack_args: list[Any] | None, error: BaseException | None) -> None:
            if error is None:
                on_ack(sid, ack_args or [])

        self._acks[ack_id] = callback
        return True

    def _on_ack(self, packet: Packet) -> None:
        callback = self._acks.pop(packet.id, None)  # type: ignore[arg-type]
        if callback is None:
            logger.debug("socket %s: ack %s matches no pending emit", self.id, packet.id)
            return
        callback(packet.data, None)

    def _ack(self, ack_id: int, result: Any) -> None:
        """Answer the client's ack request *ack_id* with a handler's return value."""
        if self._state == DISCONNECTED:
            return
        try:
            args = ack_arguments(result)
            messages = self.server.encoder.encode(Packet(_ACK, self.nsp.name, args, ack_id))
        except (TypeError, ValueError):
            logger.exception("cannot encode the acknowledgement of socket %s", self.id)
            messages = self.server.encoder.encode(Packet(_ACK, self.nsp.name, [], ack_id))
        self._write_messages(messages)

    # -- rooms ------------------------------------------------------------------------

    def join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Join one room or several (at once; awaiting is optional)."""
        if self._state == DISCONNECTED:
            return DONE
        if isinstance(rooms, str):
            rooms = (rooms,)
        result = self.nsp.adapter.add_all(self.id, rooms)
        return result if result is not None else DONE

    def leave(self, room: str) -> Awaitable[None]:
        """Leave a room (at once; awaiting is optional)."""
        result = self.nsp.adapter.delete(self.id, room)
        return result if result is not None else DONE

    # -- broadcasting from this socket ------------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        from .broadcast import BroadcastOperator

        return BroadcastOperator(
            self.nsp, BroadcastOptions(except_rooms=frozenset((self.id,))), origin=self
        )

    def to(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Everyone in *room* except this socket."""
        return self._operator().to(room)

    in_ = to

    def except_(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Everyone except this socket and the members of *room*."""
        return self._operator().except_(room)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace except this socket."""
        return self._operator()

    @property
    def volatile(self) -> _SocketFlags:
        """Emit that may be dropped if the client is not ready."""
        return _SocketFlags(self, volatile=True)

    # -- disconnecting ---------------------------------------------------------------------

    def disconnect(self, close: bool = False) -> Awaitable[None]:
        """Disconnect from the namespace (``close`` also ends the whole connection).

        The client receives a DISCONNECT packet; the reason here is
        ``"server namespace disconnect"``.
        """
        if self._state == DISCONNECTED:
            return DONE
        if close:
            self.conn.close("server namespace disconnect", send_disconnect=True)
        else:
            if self._state == CONNECTED:
                self._write_messages(
                    self.server.encoder.encode(Packet(PacketType.DISCONNECT, self.nsp.name))
                )
            self._on_close("server namespace disconnect")
        return DONE

    def _on_close(self, reason: str) -> None:
        """The socket is gone: fail pending acks now, run handlers in order after queued events."""
        if self._state == DISCONNECTED:
            return
        was_connected = self._state == CONNECTED
        self._state = DISCONNECTED
        self._held = None
        self._deferred = None
        acks, self._acks = self._acks, {}
        error = Disconnected(f"socket {self.id} disconnected ({reason})")
        for callback in acks.values():
            try:
                callback(None, error)
            except Exception:  # pragma: no cover
                logger.exception("ack callback failed")
        self.conn.forget(self)
        if not was_connected:
            # Refused or never connected: no disconnect event, no rooms kept.
            self.nsp.adapter.delete_all(self.id)
            self.nsp.sockets.pop(self.id, None)
            return
        self.nsp._socket_closing(self, reason)


class _SocketWithTimeout:
    __slots__ = ("_seconds", "_socket")

    def __init__(self, socket: Socket, seconds: float) -> None:
        self._socket = socket
        self._seconds = seconds

    async def call(self, event: str | int | float, *args: Any) -> Any:
        """Emit and wait at most the timeout for the acknowledgement."""
        return await self._socket.call(event, *args, timeout=self._seconds)

    def emit(
        self, event: str | int | float, *args: Any, callback: Callable[..., Any]
    ) -> Awaitable[None]:
        """Node-style: ``callback(error, *args)`` gets an AckTimeout or the answer."""
        socket = self._socket

        async def run() -> None:
            try:
                result = await socket.call(event, *args, timeout=self._seconds)
            except (AckTimeout, Disconnected) as exc:
                callback(exc)
            else:
                callback(None, *ack_arguments(result))

        from .._util import spawn

        spawn(run())
        return DONE


class _SocketFlags:
    __slots__ = ("_socket", "_volatile")

    def __init__(self, socket: Socket, *, volatile: bool) -> None:
        self._socket = socket
        self._volatile = volatile

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Emit with the flags (a volatile packet is dropped if the client is not ready)."""
        socket = self._socket
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        if socket._state != CONNECTED:
            return DONE
        messages = socket.server.encoder.encode(Packet(_EVENT, socket.nsp.name, [event, *args]))
        socket.conn.session.write_items(
            [("4" + m) if m.__class__ is str else m for m in messages],
            volatile=self._volatile,
        )
        return DONE
