"""Emit into a Socket.IO cluster from a process that runs no server: :class:`Emitter`.

::

    import wsio

    async with wsio.Emitter("redis://127.0.0.1:6379") as emitter:
        await emitter.to("lobby").emit("news", {"title": "hello"})
        await emitter.of("/admin").emit("stats", 42)
        await emitter.in_("lobby").sockets_join("announcements")

A worker or a cron job publishes through Redis what a server's
``sio.to(room).emit(...)`` would, and every node of the cluster (wsio or Node
``socket.io`` with ``@socket.io/redis-adapter``) delivers it to its clients.
``mode`` must match the nodes' adapter: ``"sharded"`` (the default of
:class:`wsio.adapters.RedisAdapter`) or ``"classic"`` (the format of the npm
``@socket.io/redis-emitter``, which can in turn emit to wsio nodes in classic
mode).

Every method queues its message at once and returns an awaitable that
completes when the message is written to Redis, or raises
:class:`wsio.adapters.ClusterError` if it could not be. Messages are written
in order, batched in pipelines. Acknowledgements are not available: an
emitter is not a node and receives nothing. With
``connection_state_recovery``, broadcasts are logged for recovery first, as a
node logs its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any, NamedTuple

from ._util import spawn
from .adapters.redis import (
    EMITTER_UID,
    MODES,
    ClusterError,
    Codec,
    MessageType,
    Publisher,
    RequestType,
    looks_like_socket_id,
    make_client,
    wire_opts,
    wire_packet,
)
from .adapters.redis_recovery import append_to_log
from .socketio.adapter import BroadcastOptions
from .socketio.packets import RESERVED_EVENTS
from .socketio.recovery import RecoveryOptions

__all__ = ["Emitter", "EmitterOperator"]

logger = logging.getLogger("wsio.emitter")


class _Written:
    """Completes when the message is written to Redis; raises ClusterError if it was not."""

    __slots__ = ("_fut", "_url")

    def __init__(self, fut: asyncio.Future[bool], url: str) -> None:
        self._fut = fut
        self._url = url

    def __await__(self) -> Generator[Any, None, None]:
        ok = yield from asyncio.shield(self._fut).__await__()
        if not ok:
            raise ClusterError(f"could not publish to Redis at {self._url}")


class _Logged(NamedTuple):
    """A broadcast to append to a namespace's recovery log before it is published."""

    stream: str
    data: list[Any]
    opts: BroadcastOptions
    payload: Callable[[str | None], str | bytes]
    """The message to publish, given the log entry's id (None: not logged)."""


_Item = tuple[str, "str | bytes | _Logged", "asyncio.Future[bool]"]


class _Connection:
    """The redis-py client and publisher shared by an emitter and its ``of()`` siblings.

    With a recovery window, messages pass through one ordered queue: the
    broadcasts that recovery replays are appended to their namespace's log in
    Redis first (one pipeline per batch), then everything is published in
    the order it was emitted.
    """

    def __init__(
        self,
        url: str,
        mode: str,
        key_prefix: str,
        connect_timeout: float,
        recovery_window: float | None = None,
    ) -> None:
        self.url = url
        self.sharded = mode == "sharded"
        self.key_prefix = key_prefix
        self.connect_timeout = connect_timeout
        self.recovery_window = recovery_window
        self.codec = Codec()
        self.client: Any = None
        self.publisher: Publisher | None = None
        self._queue: deque[_Item] = deque()
        self._task: asyncio.Task[None] | None = None

    def _publisher(self) -> Publisher:
        if self.publisher is None:
            self.client = make_client(self.url, self.connect_timeout)
            self.publisher = Publisher(self.client, "SPUBLISH" if self.sharded else "PUBLISH")
        return self.publisher

    def publish(self, channel: str, payload: str | bytes | _Logged) -> Awaitable[None]:
        if self.recovery_window is None:
            assert not isinstance(payload, _Logged)
            return _Written(self._publisher().publish(channel, payload), self.url)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((channel, payload, fut))
        if self._task is None:
            self._task = spawn(self._drain())
        return _Written(fut, self.url)

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), 256))]
                try:
                    offsets = await self._append([item for _, item, _ in batch])
                    publisher = self._publisher()
                    for (channel, item, fut), offset in zip(batch, offsets):
                        payload = item.payload(offset) if isinstance(item, _Logged) else item
                        _chain(publisher.publish(channel, payload), fut)
                except Exception:
                    logger.exception("emitter could not publish %d message(s)", len(batch))
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_result(False)  # awaiting it raises ClusterError
        finally:
            self._task = None

    async def _append(self, items: list[str | bytes | _Logged]) -> list[str | None]:
        """Log the batch's broadcasts; their entry ids (None for the rest, or on failure)."""
        logged = [(i, item) for i, item in enumerate(items) if isinstance(item, _Logged)]
        offsets: list[str | None] = [None] * len(items)
        if not logged:
            return offsets
        import msgpack

        assert self.recovery_window is not None
        pack = msgpack.Packer(use_bin_type=True).pack
        entries = [(item.stream, item.data, item.opts) for _, item in logged]
        try:
            self._publisher()
            ids = await append_to_log(self.client, pack, entries, self.recovery_window)
        except Exception as exc:
            logger.warning("recovery log unavailable (%s): events go out without an offset", exc)
            return offsets
        for (i, _), entry in zip(logged, ids, strict=True):
            offsets[i] = entry
        return offsets

    async def close(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)
        if self.publisher is not None:
            await self.publisher.drain()
        if self.client is not None:
            await self.client.aclose()
        self.client = None
        self.publisher = None


def _chain(source: asyncio.Future[bool], target: asyncio.Future[bool]) -> None:
    """Complete *target* with *source*'s result."""

    def done(f: asyncio.Future[bool]) -> None:
        if not target.done():
            target.set_result(bool(not f.cancelled() and f.exception() is None and f.result()))

    source.add_done_callback(done)


class EmitterOperator:
    """An immutable selection of recipients plus flags (what :class:`Emitter` methods return)."""

    __slots__ = ("_conn", "nsp", "opts")

    def __init__(self, conn: _Connection, nsp: str, opts: BroadcastOptions) -> None:
        self._conn = conn
        self.nsp = nsp
        self.opts = opts

    def _with(self, **changes: Any) -> EmitterOperator:
        from dataclasses import replace

        return EmitterOperator(self._conn, self.nsp, replace(self.opts, **changes))

    # -- selection

    def to(self, room: str | Iterable[str]) -> EmitterOperator:
        """Also target *room* (or rooms)."""
        rooms = (room,) if isinstance(room, str) else tuple(room)
        return self._with(rooms=self.opts.rooms | frozenset(rooms))

    in_ = to

    def except_(self, room: str | Iterable[str]) -> EmitterOperator:
        """Leave out the members of *room* (or rooms)."""
        rooms = (room,) if isinstance(room, str) else tuple(room)
        return self._with(except_rooms=self.opts.except_rooms | frozenset(rooms))

    @property
    def volatile(self) -> EmitterOperator:
        """May be dropped for clients that are not ready to receive."""
        return self._with(volatile=True)

    def compress(self, flag: bool = True) -> EmitterOperator:
        """Allow or forbid compression."""
        return self._with(compress=flag)

    # -- messages

    def _cluster(self, kind: MessageType, data: dict[str, Any]) -> str | bytes:
        message = {"type": int(kind), "data": data, "uid": EMITTER_UID, "nsp": self.nsp}
        return self._conn.codec.json_or_pack(message)

    def _channel(self) -> str:
        return f"{self._conn.key_prefix}#{self.nsp}#"

    def _request_channel(self) -> str:
        return f"{self._conn.key_prefix}-request#{self.nsp}#"

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send an event to every selected client of the cluster."""
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        conn = self._conn
        opts = self.opts
        data = [event, *args]
        channel = self._channel()
        single = next(iter(opts.rooms)) if len(opts.rooms) == 1 else None
        if single is not None and (not conn.sharded or not looks_like_socket_id(single)):
            channel += f"{single}#"

        def payload(offset: str | None = None) -> str | bytes:
            packet = wire_packet(self.nsp, data if offset is None else [*data, offset])
            if conn.sharded:
                return self._cluster(
                    MessageType.BROADCAST, {"packet": packet, "opts": wire_opts(opts)}
                )
            return conn.codec.pack([EMITTER_UID, packet, wire_opts(opts)])

        if conn.recovery_window is not None and not opts.volatile:
            stream = f"{conn.key_prefix}#{self.nsp}#log"
            return conn.publish(channel, _Logged(stream, data, opts, payload))
        return conn.publish(channel, payload())

    def send(self, *args: Any) -> Awaitable[None]:
        """Emit a ``"message"`` event."""
        return self.emit("message", *args)

    def _operation(self, kind: str, extra: dict[str, Any]) -> Awaitable[None]:
        conn = self._conn
        opts = wire_opts(self.opts, flags=False)
        if conn.sharded:
            types = {
                "join": MessageType.SOCKETS_JOIN,
                "leave": MessageType.SOCKETS_LEAVE,
                "disconnect": MessageType.DISCONNECT_SOCKETS,
            }
            return conn.publish(
                self._channel(), self._cluster(types[kind], {"opts": opts, **extra})
            )
        classic = {
            "join": RequestType.REMOTE_JOIN,
            "leave": RequestType.REMOTE_LEAVE,
            "disconnect": RequestType.REMOTE_DISCONNECT,
        }
        message = {"type": int(classic[kind]), "opts": opts, **extra}
        return conn.publish(self._request_channel(), conn.codec.json_or_pack(message))

    def sockets_join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make the selected sockets join *rooms*."""
        return self._operation(
            "join", {"rooms": [rooms] if isinstance(rooms, str) else list(rooms)}
        )

    def sockets_leave(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make the selected sockets leave *rooms*."""
        return self._operation(
            "leave", {"rooms": [rooms] if isinstance(rooms, str) else list(rooms)}
        )

    def disconnect_sockets(self, close: bool = False) -> Awaitable[None]:
        """Disconnect the selected sockets (``close`` also closes their connections)."""
        return self._operation("disconnect", {"close": bool(close)})

    def __repr__(self) -> str:
        return f"<EmitterOperator {self.nsp} {self.opts}>"


class Emitter:
    """Publishes Socket.IO broadcasts and operations into a Redis-backed cluster.

    Args:
        url: the Redis the nodes use (``redis://``, ``rediss://``, ``unix://``).
        mode: ``"sharded"`` or ``"classic"``, as the nodes' adapter.
        key_prefix: the nodes' channel prefix.
        nsp: the namespace (``emitter.of("/admin")`` for another one).
        connect_timeout: seconds allowed to connect.
        connection_state_recovery: the nodes' setting (``True`` or their
            :class:`wsio.RecoveryOptions`), so that what the emitter
            broadcasts (volatile broadcasts aside) goes into the cluster's
            recovery log in Redis first: a client that was away when it was
            emitted gets it on recovery. Off by default (and for npm nodes).

    ``to``/``in_``/``except_``/``volatile``/``compress`` select and flag,
    ``emit``/``send`` broadcast, ``sockets_join``/``sockets_leave``/
    ``disconnect_sockets`` act on sockets and ``server_side_emit`` reaches the
    nodes' :meth:`wsio.Server.on_server_event` handlers (no acknowledgements).
    Close it (or use ``async with``) to flush and release the connection.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        mode: str = "sharded",
        key_prefix: str = "socket.io",
        nsp: str = "/",
        connect_timeout: float = 5.0,
        connection_state_recovery: bool | RecoveryOptions = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        recovery = connection_state_recovery
        if recovery is True:
            recovery = RecoveryOptions()
        window = recovery.max_disconnection_duration if recovery else None
        self._conn = _Connection(url, mode, key_prefix, connect_timeout, window)
        self.nsp = nsp if nsp.startswith("/") else "/" + nsp
        self.mode = mode

    @classmethod
    def _sibling(cls, conn: _Connection, nsp: str, mode: str) -> Emitter:
        emitter = cls.__new__(cls)
        emitter._conn = conn
        emitter.nsp = nsp
        emitter.mode = mode
        return emitter

    def __repr__(self) -> str:
        return f"<wsio.Emitter {self.mode} {self.nsp}>"

    def of(self, nsp: str) -> Emitter:
        """An emitter for namespace *nsp*, sharing this one's connection."""
        return Emitter._sibling(self._conn, nsp if nsp.startswith("/") else "/" + nsp, self.mode)

    def _operator(self) -> EmitterOperator:
        return EmitterOperator(self._conn, self.nsp, BroadcastOptions())

    def to(self, room: str | Iterable[str]) -> EmitterOperator:
        """Target the members of *room* (chainable)."""
        return self._operator().to(room)

    in_ = to

    def except_(self, room: str | Iterable[str]) -> EmitterOperator:
        """Leave out the members of *room* (chainable)."""
        return self._operator().except_(room)

    @property
    def volatile(self) -> EmitterOperator:
        """A broadcast that may be dropped for clients that are not ready."""
        return self._operator().volatile

    def compress(self, flag: bool = True) -> EmitterOperator:
        """Allow or forbid compression."""
        return self._operator().compress(flag)

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send an event to every client of the namespace, on every node."""
        return self._operator().emit(event, *args)

    def send(self, *args: Any) -> Awaitable[None]:
        """Emit a ``"message"`` event to every client."""
        return self._operator().send(*args)

    def sockets_join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make every socket of the namespace join *rooms*."""
        return self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make every socket of the namespace leave *rooms*."""
        return self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> Awaitable[None]:
        """Disconnect every socket of the namespace."""
        return self._operator().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> Awaitable[None]:
        """Run the nodes' ``on_server_event`` handlers of *event* (their answers are not collected)."""
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        conn = self._conn
        packet = [event, *args]
        if conn.sharded:
            message: dict[str, Any] = {
                "type": int(MessageType.SERVER_SIDE_EMIT),
                "data": {"packet": packet},
                "uid": EMITTER_UID,
                "nsp": self.nsp,
            }
            channel = f"{conn.key_prefix}#{self.nsp}#"
        else:
            message = {
                "uid": EMITTER_UID,
                "type": int(RequestType.SERVER_SIDE_EMIT),
                "data": packet,
            }
            channel = f"{conn.key_prefix}-request#{self.nsp}#"
        return conn.publish(channel, conn.codec.json_or_pack(message))

    async def close(self) -> None:
        """Write what is queued and close the connection (shared with ``of()`` siblings)."""
        await self._conn.close()

    async def __aenter__(self) -> Emitter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
