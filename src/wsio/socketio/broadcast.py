"""Broadcasting: ``sio.to(room).except_(other).emit(...)`` and friends."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..exceptions import AckTimeout
from .adapter import BroadcastOptions
from .packets import RESERVED_EVENTS, Packet, PacketType
from .socket import CONNECTING, DONE, Socket, ack_result

if TYPE_CHECKING:
    from .namespace import Namespace

__all__ = ["BroadcastOperator", "connecting_socket"]

#: The socket whose middlewares / connect handler are running in this context.
#: Broadcasts made there wait until that socket's CONNECT reply is sent.
connecting_socket: contextvars.ContextVar[Socket | None] = contextvars.ContextVar(
    "wsio_connecting_socket", default=None
)


def _rooms(room: str | Iterable[str]) -> Iterable[str]:
    return (room,) if isinstance(room, str) else room


def _deferred(action: Callable[[], Any]) -> bool:
    """Hold *action* if we run inside a connect handler; True when held.

    It joins the socket's held packets, so that it runs after the CONNECT
    reply in the order the handler made it, between that socket's own emits.
    """
    socket = connecting_socket.get()
    if socket is None or socket._state != CONNECTING or socket._held is None:
        return False
    socket._held.append((action, False))
    return True


def _act(action: Callable[[], Awaitable[None] | None]) -> Awaitable[None]:
    """Run *action* now, or hold it (see :func:`_deferred`); awaitable either way."""
    if _deferred(action):
        return DONE
    result = action()
    return result if result is not None else DONE


class BroadcastOperator:
    """An immutable selection of recipients plus flags; every method returns a new one."""

    __slots__ = ("_timeout", "nsp", "opts", "origin")

    def __init__(
        self,
        nsp: Namespace,
        opts: BroadcastOptions | None = None,
        *,
        timeout: float | None = None,
        origin: Socket | None = None,
    ) -> None:
        self.nsp = nsp
        self.opts = opts or BroadcastOptions()
        self._timeout = timeout
        self.origin = origin

    def _with(self, **changes: Any) -> BroadcastOperator:
        timeout = changes.pop("timeout", self._timeout)
        return BroadcastOperator(
            self.nsp, replace(self.opts, **changes), timeout=timeout, origin=self.origin
        )

    # -- selection ------------------------------------------------------------------

    def to(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Also target *room* (or rooms)."""
        return self._with(rooms=self.opts.rooms | frozenset(_rooms(room)))

    in_ = to

    def except_(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Leave out the members of *room* (or rooms)."""
        return self._with(except_rooms=self.opts.except_rooms | frozenset(_rooms(room)))

    @property
    def volatile(self) -> BroadcastOperator:
        """May be dropped for clients that are not ready to receive."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only this node's clients (with a multi-node adapter)."""
        return self._with(local=True)

    def compress(self, flag: bool = True) -> BroadcastOperator:
        """Allow or forbid compression."""
        return self._with(compress=flag)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """A timeout for :meth:`call` (broadcast acknowledgements)."""
        return self._with(timeout=seconds)

    # -- emitting ---------------------------------------------------------------------

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send an event to every selected client (encoded once).

        Acts at once (or, inside a connect handler, right after that
        socket's CONNECT reply); awaiting the result is optional.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        packet = Packet(PacketType.EVENT, self.nsp.name, [event, *args])
        nsp = self.nsp
        adapter = nsp.adapter
        opts = self.opts

        def send() -> Awaitable[None] | None:
            nsp.server._notify_outgoing_broadcast(nsp, event, args, opts)
            return adapter.broadcast(packet, opts)

        return _act(send)

    def send(self, *args: Any) -> Awaitable[None]:
        """Emit a ``"message"`` event."""
        return self.emit("message", *args)

    async def call(
        self, event: str | int | float, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Broadcast and collect every client's acknowledgement.

        Returns the list of answers (each the single ack argument, a tuple
        for several, None for none). Raises :class:`~wsio.AckTimeout` carrying
        the answers received so far when not all clients answered in time.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        timeout = timeout if timeout is not None else self._timeout
        if timeout is None:
            raise ValueError(
                "a broadcast with acknowledgements needs a timeout: use .timeout(seconds)"
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        responses: list[Any] = []
        expected = 0
        pending_counts = 0
        counted = False

        def check() -> None:
            if counted and pending_counts <= 0 and len(responses) >= expected and not done.done():
                done.set_result(None)

        def on_count(n: int) -> None:
            nonlocal expected, pending_counts
            expected += n
            pending_counts -= 1
            check()

        def on_ack(sid: str, ack_args: list[Any]) -> None:
            responses.append(ack_result(ack_args))
            check()

        server_count = self.nsp.adapter.server_count()
        if not isinstance(server_count, int):
            server_count = await server_count
        pending_counts = 1 if self.opts.local else max(int(server_count), 1)
        packet = Packet(PacketType.EVENT, self.nsp.name, [event, *args], self.nsp.next_ack_id())
        self.nsp.server._notify_outgoing_broadcast(self.nsp, event, args, self.opts)
        result = self.nsp.adapter.broadcast_with_ack(packet, self.opts, on_count, on_ack)
        if result is not None:
            await result
        counted = True
        check()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            raise AckTimeout(
                f"{len(responses)} of {expected} clients answered {event!r} within {timeout} s",
                list(responses),
            ) from None
        return list(responses)

    # -- acting on the selected sockets ---------------------------------------------------------

    async def fetch_sockets(self) -> list[Any]:
        """The selected sockets (remote ones as descriptions with a multi-node adapter)."""
        return await self.nsp.adapter.fetch_sockets(self.opts)

    def sockets_join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make the selected sockets join *rooms*."""
        rooms = list(_rooms(rooms))
        adapter = self.nsp.adapter
        opts = self.opts
        return _act(lambda: adapter.add_sockets(opts, rooms))

    def sockets_leave(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make the selected sockets leave *rooms*."""
        rooms = list(_rooms(rooms))
        adapter = self.nsp.adapter
        opts = self.opts
        return _act(lambda: adapter.del_sockets(opts, rooms))

    def disconnect_sockets(self, close: bool = False) -> Awaitable[None]:
        """Disconnect the selected sockets."""
        adapter = self.nsp.adapter
        opts = self.opts
        return _act(lambda: adapter.disconnect_sockets(opts, close))

    def __repr__(self) -> str:
        return f"<BroadcastOperator {self.nsp.name} {self.opts}>"
