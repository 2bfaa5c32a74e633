"""Socket.IO across several nodes through Redis: :class:`RedisAdapter`.

::

    import wsio
    from wsio.adapters import RedisAdapter

    sio = wsio.Server(adapter=RedisAdapter("redis://127.0.0.1:6379"))

    @sio.on("chat")
    async def chat(socket, text):
        await sio.to("lobby").emit("chat", text)    # reaches "lobby" on every node

Every node connects to the same Redis. Each broadcast acts on the local
clients at once and is published for the other nodes; ``fetch_sockets``,
``server_side_emit`` with acknowledgements and broadcasts with acks ask the
other nodes and return as soon as every node alive has answered (Redis tells
how many nodes subscribe: ``PUBSUB SHARDNUMSUB`` / ``NUMSUB``).

Two wire formats, both those of the npm ``@socket.io/redis-adapter`` 8, so
wsio and Node ``socket.io`` nodes can serve one cluster together:

* ``mode="sharded"`` (default): the format of its ``createShardedAdapter``
  with subscription mode ``"dynamic"``: Redis 7 sharded pub/sub
  (``SSUBSCRIBE``/``SPUBLISH``), one channel per namespace
  (``socket.io#/#``), one per public room (``socket.io#/#room#``) and one for
  the answers to each node (``socket.io#/#<uid>#``). Messages are JSON, or
  msgpack when they hold binary data.
* ``mode="classic"``: the format of its ``createAdapter`` (Redis pub/sub,
  msgpack broadcasts, JSON requests on ``socket.io-request#/#`` and answers
  on ``socket.io-response#/#``), which the npm ``@socket.io/redis-emitter``
  speaks too. Where Node subscribes to a pattern and discards the broadcasts
  of rooms it does not hold, wsio subscribes to the exact channel of each of
  its rooms, so Redis sends a node only what concerns its clients.

A broadcast to one room travels on that room's channel: a node that has no
client in the room never receives it, and a node never decodes a message
before knowing, from its channel, that it concerns its clients. The
subscriber connection is read by a small RESP reader built for this (the
channel name is checked before the payload is parsed); publishing and
queries use redis-py's asyncio client, batched in pipelines.

When Redis goes away, the node keeps serving its own clients: broadcasts
reach the local ones, messages for the other nodes are dropped and counted,
requests waiting for other nodes fail with :class:`ClusterError`, and the
adapter reconnects with exponential backoff and jitter. The loss window
(when, how long, how many messages) is logged on ``wsio.adapters.redis``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import secrets
import ssl as ssl_module
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from .._json import dumps as json_dumps
from .._json import loads as json_loads
from .._util import spawn
from ..exceptions import AckTimeout, WsioError
from ..http.headers import Headers
from ..socketio.adapter import Adapter, BroadcastOptions
from ..socketio.packets import Packet, PacketType
from ..socketio.socket import DONE, Handshake
from .redis_recovery import SharedRecovery, recoverable

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace
    from ..socketio.server import Server
    from ..socketio.socket import Socket

__all__ = [
    "ClusterError",
    "ClusterTimeout",
    "RedisAdapter",
    "RedisNamespaceAdapter",
    "RemoteSocket",
]

logger = logging.getLogger("wsio.adapters.redis")

INSTALL_HINT = "pip install 'wsio[redis]' (redis-py and msgpack)"

MODES = ("sharded", "classic")


class ClusterError(WsioError):
    """A request to the other nodes could not be completed (Redis unreachable, connection lost)."""


class ClusterTimeout(ClusterError, TimeoutError):
    """Not every node answered a request (``fetch_sockets``) in time."""


def _require_redis() -> tuple[Any, Any]:
    """The ``redis.asyncio`` and ``msgpack`` modules, or a clear ImportError."""
    try:
        import msgpack
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ImportError(f"wsio's Redis adapter needs {exc.name!r}: {INSTALL_HINT}") from None
    return aioredis, msgpack


# -- the wire formats -----------------------------------------------------------------


class MessageType(IntEnum):
    """Message types of the sharded format (``socket.io-adapter``'s ClusterAdapter)."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


class RequestType(IntEnum):
    """Request types of the classic format (``@socket.io/redis-adapter``'s createAdapter)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


#: The uid the npm emitters (and :class:`wsio.Emitter`) put in their messages.
EMITTER_UID = "emitter"


def looks_like_socket_id(room: Any) -> bool:
    """Node's rule: a 20-character room is a socket id and has no channel of its own."""
    return isinstance(room, str) and len(room) == 20


def wire_opts(opts: BroadcastOptions, flags: bool = True) -> dict[str, Any]:
    """Broadcast options as Node's adapters write them (only the flags that are set)."""
    wire: dict[str, Any] = {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}
    if flags:
        f: dict[str, Any] = {}
        if opts.volatile:
            f["volatile"] = True
        if not opts.compress:
            f["compress"] = False
        wire["flags"] = f
    return wire


def opts_from_wire(d: Any) -> BroadcastOptions:
    """Broadcast options from a message (Node's or wsio's)."""
    if not isinstance(d, dict):
        return BroadcastOptions()
    flags = d.get("flags") or {}
    if not isinstance(flags, dict):
        flags = {}
    compress = flags.get("compress")
    return BroadcastOptions(
        rooms=frozenset(r for r in d.get("rooms") or () if isinstance(r, str)),
        except_rooms=frozenset(r for r in d.get("except") or () if isinstance(r, str)),
        volatile=bool(flags.get("volatile", False)),
        compress=True if compress is None else bool(compress),
    )


def wire_packet(nsp: str, data: list[Any]) -> dict[str, Any]:
    """An EVENT packet as Node's adapters carry it (without an ack id)."""
    return {"type": int(PacketType.EVENT), "data": data, "nsp": nsp}


class Codec:
    """JSON (``JSON.stringify``'s dialect) and msgpack (``notepack.io``'s) for cluster messages."""

    __slots__ = ("_packb", "_unpackb")

    def __init__(self) -> None:
        _, msgpack = _require_redis()
        self._packb: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
        unpackb = msgpack.unpackb

        def ext_hook(code: int, payload: bytes) -> Any:
            if code == 0:
                # notepack's legacy forms: undefined (one zero byte) and ArrayBuffer.
                return None if payload == b"\x00" else payload
            return msgpack.ExtType(code, payload)

        def unpack(data: bytes) -> Any:
            value = unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook, timestamp=3)
            if b"\xd6\xff" in data or b"\xd7\xff" in data or b"\xc7\x0c\xff" in data:
                value = _dates_to_iso(value)
            return value

        self._unpackb = unpack

    def pack(self, obj: Any) -> bytes:
        """msgpack, bytes as ``bin``."""
        return self._packb(obj)

    def json_or_pack(self, obj: Any) -> str | bytes:
        """JSON unless *obj* holds binary data (or anything else JSON cannot hold): msgpack."""
        try:
            return json_dumps(obj)
        except TypeError:
            return self._packb(obj)

    def decode(self, data: bytes) -> Any:
        """A message: JSON when it starts with ``{``, msgpack otherwise."""
        if data[:1] == b"{":
            return json_loads(data)
        return self._unpackb(data)

    def unpack(self, data: bytes) -> Any:
        """msgpack only."""
        return self._unpackb(data)


def _dates_to_iso(obj: Any) -> Any:
    """msgpack timestamps (a JavaScript Date) as the ISO text ``JSON.stringify`` gives them."""
    if isinstance(obj, datetime):
        utc = obj.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(obj, list):
        return [_dates_to_iso(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _dates_to_iso(v) for k, v in obj.items()}
    return obj


def describe_socket(socket: Socket) -> dict[str, Any]:
    """A local socket as ``fetchSockets`` answers describe it (Node's field names)."""
    hs = socket.handshake
    headers: dict[str, Any] = {}
    for name, value in hs.headers:
        key = name.lower()
        old = headers.get(key)
        if old is None:
            headers[key] = value
        elif isinstance(old, list):
            old.append(value)
        elif key == "set-cookie":
            headers[key] = [old, value]
        else:
            headers[key] = f"{old}, {value}"
    return {
        "id": socket.id,
        "handshake": {
            "headers": headers,
            "time": hs.time,
            "address": hs.address,
            "xdomain": hs.xdomain,
            "secure": hs.secure,
            "issued": hs.issued,
            "url": hs.url,
            "query": dict(hs.query),
            "auth": hs.auth if hs.auth is not None else {},
        },
        "rooms": sorted(socket.rooms),
        "data": socket.data,
    }


def _handshake_from_wire(d: Any) -> Handshake:
    if not isinstance(d, dict):
        d = {}
    items: list[tuple[str, str]] = []
    headers = d.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            for v in value if isinstance(value, list) else [value]:
                items.append((str(name), str(v)))
    query = d.get("query")
    auth = d.get("auth")
    return Handshake(
        headers=Headers(items),
        query={str(k): str(v) for k, v in query.items()} if isinstance(query, dict) else {},
        auth=auth if isinstance(auth, dict) else None,
        address=d.get("address") if isinstance(d.get("address"), str) else None,
        time=str(d.get("time") or ""),
        issued=int(d.get("issued") or 0),
        secure=bool(d.get("secure")),
        url=str(d.get("url") or ""),
        xdomain=bool(d.get("xdomain")),
    )


class RemoteSocket:
    """A socket of another node, as :meth:`fetch_sockets` returns it.

    ``id``, ``handshake`` (a :class:`~wsio.Handshake`), ``rooms`` (a set) and
    ``data`` are a snapshot; :meth:`emit`, :meth:`join`, :meth:`leave` and
    :meth:`disconnect` act on the socket through the cluster.
    """

    __slots__ = ("_adapter", "data", "handshake", "id", "rooms")

    def __init__(self, adapter: RedisNamespaceAdapter, d: dict[str, Any]) -> None:
        self._adapter = adapter
        self.id: str = str(d.get("id"))
        self.handshake = _handshake_from_wire(d.get("handshake"))
        self.rooms: set[str] = {r for r in d.get("rooms") or () if isinstance(r, str)}
        self.data: Any = d.get("data")

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id} {self._adapter.nsp.name}>"

    def _opts(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset((self.id,)))

    def emit(self, event: str | int | float, *args: Any) -> Awaitable[None]:
        """Send an event to this socket."""
        from ..socketio.broadcast import BroadcastOperator

        return BroadcastOperator(self._adapter.nsp, self._opts()).emit(event, *args)

    def join(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make this socket join *rooms*."""
        rooms = [rooms] if isinstance(rooms, str) else list(rooms)
        result = self._adapter.add_sockets(self._opts(), rooms)
        return result if result is not None else DONE

    def leave(self, rooms: str | Iterable[str]) -> Awaitable[None]:
        """Make this socket leave *rooms*."""
        rooms = [rooms] if isinstance(rooms, str) else list(rooms)
        result = self._adapter.del_sockets(self._opts(), rooms)
        return result if result is not None else DONE

    def disconnect(self, close: bool = False) -> Awaitable[None]:
        """Disconnect this socket (``close`` also closes its connection)."""
        result = self._adapter.disconnect_sockets(self._opts(), close)
        return result if result is not None else DONE


# -- RESP: the subscriber connection --------------------------------------------------


class _ReplyError(str):
    """An error reply (``-ERR ...``)."""


class _Incomplete(Exception):
    pass


_INCOMPLETE = _Incomplete()


def _read_value(buf: bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2 value at *pos*: (value, position after it); raises _Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _INCOMPLETE
    kind = buf[pos]
    if kind == 0x24:  # $ bulk string
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        start = end + 2
        stop = start + n
        if stop + 2 > len(buf):
            raise _INCOMPLETE
        return bytes(buf[start:stop]), stop + 2
    if kind == 0x2A:  # * array
        n = int(buf[pos + 1 : end])
        pos = end + 2
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = _read_value(buf, pos)
            items.append(item)
        return items, pos
    if kind == 0x3A:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 0x2B:  # + simple string
        return bytes(buf[pos + 1 : end]), end + 2
    if kind == 0x2D:  # - error
        return _ReplyError(buf[pos + 1 : end].decode("utf-8", "replace")), end + 2
    raise ValueError(f"unexpected RESP type byte {kind!r}")


def encode_command(*args: str | bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        b = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


_MESSAGE_KINDS = frozenset((b"message", b"smessage"))
_CONFIRM_KINDS = frozenset((b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe"))


class _Subscriber(asyncio.Protocol):
    """The subscriber connection: pushes in, handlers called with each message's payload."""

    def __init__(self, link: _RedisLink) -> None:
        self.link = link
        self.handlers = link.handlers
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[BaseException | None] = loop.create_future()
        self.replies: deque[asyncio.Future[Any]] = deque()
        self.confirms: deque[list[Any]] = deque()  # [remaining replies, future]
        self.seen = True
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket as socket_module

            with contextlib.suppress(OSError):
                sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_KEEPALIVE, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket_module.IPPROTO_TCP, socket_module.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.seen = True
        buf = self.buffer
        buf += data
        pos = 0
        size = len(buf)
        try:
            while pos < size:
                try:
                    value, pos = _read_value(buf, pos)
                except _Incomplete:
                    break
                self._dispatch(value)
        except ValueError as exc:
            logger.error("unreadable data from Redis (%s): reconnecting", exc)
            self.abort(exc)
            return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = exc or ConnectionResetError("Redis closed the connection")
        for fut in self.replies:
            if not fut.done():
                fut.set_exception(error)
        self.replies.clear()
        for _, fut in self.confirms:
            if fut is not None and not fut.done():
                fut.set_result(False)
        self.confirms.clear()
        if not self.closed.done():
            self.closed.set_result(error)

    # -- messages

    def _dispatch(self, value: Any) -> None:
        if value.__class__ is list and value:
            kind = value[0]
            if kind in _MESSAGE_KINDS and len(value) == 3:
                self.link.received += 1
                handler = self.handlers.get(value[1])
                if handler is not None:
                    try:
                        handler(value[2])
                    except Exception:
                        logger.exception("handling a message from %r failed", value[1])
                return
            if kind in _CONFIRM_KINDS:
                confirms = self.confirms
                if confirms:
                    head = confirms[0]
                    head[0] -= 1
                    if head[0] <= 0:
                        confirms.popleft()
                        fut = head[1]
                        if fut is not None and not fut.done():
                            fut.set_result(True)
                return
            if kind == b"pong":
                return
        if isinstance(value, _ReplyError):
            if self.replies:
                fut = self.replies.popleft()
                if not fut.done():
                    fut.set_exception(ClusterError(f"Redis: {value}"))
                return
            if self.confirms:
                # A refused (S)SUBSCRIBE: sharded mode on a Redis older than 7, an ACL...
                _, fut = self.confirms.popleft()
                error = ClusterError(f"Redis refused a subscription: {value}")
                if fut is not None and not fut.done():
                    fut.set_exception(error)
                else:
                    logger.error("%s", error)
                return
            logger.error("Redis answered with an error: %s", value)
            return
        if value == b"PONG" and not self.replies:
            return
        if self.replies:
            fut = self.replies.popleft()
            if not fut.done():
                fut.set_result(value)

    # -- commands

    def write(self, data: bytes) -> None:
        """Send raw command bytes (dropped when the connection is gone)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def request(self, *args: str | bytes) -> asyncio.Future[Any]:
        """Send a command whose reply is not a push (AUTH, PING before subscribing)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies.append(fut)
        self.write(encode_command(*args))
        return fut

    def subscription(self, command: str, channels: list[bytes]) -> asyncio.Future[bool]:
        """(S)SUBSCRIBE / (S)UNSUBSCRIBE; the future is True once Redis confirmed every channel."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.transport is None or self.transport.is_closing():
            fut.set_result(False)
            return fut
        if command.startswith("S"):
            # One channel per command, as Node does: cluster-safe.
            for i, channel in enumerate(channels):
                self.confirms.append([1, fut if i == len(channels) - 1 else None])
                self.write(encode_command(command, channel))
        else:
            for start in range(0, len(channels), 1000):
                chunk = channels[start : start + 1000]
                last = start + 1000 >= len(channels)
                self.confirms.append([len(chunk), fut if last else None])
                self.write(encode_command(command, *chunk))
        return fut

    def start_health_checks(self, interval: float) -> None:
        """PING every *interval* seconds; no data at all for two intervals means the link is dead."""
        if interval <= 0:
            return
        loop = asyncio.get_running_loop()
        misses = 0

        def tick() -> None:
            nonlocal misses
            if self.transport is None or self.transport.is_closing():
                return
            if self.seen:
                misses = 0
            else:
                misses += 1
                if misses >= 2:
                    self.abort(TimeoutError(f"no answer from Redis for {2 * interval:g} s"))
                    return
            self.seen = False
            self.write(b"*1\r\n$4\r\nPING\r\n")
            self._timer = loop.call_later(interval, tick)

        self._timer = loop.call_later(interval, tick)

    def abort(self, exc: BaseException) -> None:
        """Drop the connection now."""
        if not self.closed.done():
            self.closed.set_result(exc)
        if self.transport is not None:
            self.transport.abort()


# -- the link: one subscriber connection and one redis-py client per server ---------------


#: Messages waiting to be written to Redis above which a broadcast's awaitable
#: waits for them (flow control); below it, it completes at once.
HIGH_WATER = 1024


class _Published:
    """What a broadcast returns when Redis lags: completes once the backlog is written (never raises)."""

    __slots__ = ("_fut",)

    def __init__(self, fut: asyncio.Future[bool]) -> None:
        self._fut = fut

    def __await__(self) -> Generator[Any, None, None]:
        yield from asyncio.shield(self._fut).__await__()


def _flow(link: _RedisLink, fut: asyncio.Future[bool] | None) -> Awaitable[None] | None:
    """Nothing to wait for unless the publisher is behind (as a socket's emit and its buffer)."""
    if fut is None or link.publisher is None or link.publisher.backlog <= HIGH_WATER:
        return None
    return _Published(fut)


class Publisher:
    """Publishes through a redis-py client, every message queued in one loop turn in one pipeline.

    :meth:`publish` queues at once and returns a future that is True once
    the batch was written (False if it failed). Messages go out in order.
    """

    def __init__(
        self, client: Any, command: str, on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        self.client = client
        self.command = command
        self.on_error = on_error
        self._queue: list[tuple[str, str | bytes]] = []
        self._batch: asyncio.Future[bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        """Messages written."""
        self.backlog = 0
        """Messages queued or being written."""
        self.failed = 0
        """Messages that could not be written."""

    def publish(self, channel: str, payload: str | bytes) -> asyncio.Future[bool]:
        """Queue one message."""
        self._queue.append((channel, payload))
        self.backlog += 1
        batch = self._batch
        if batch is None:
            batch = self._batch = asyncio.get_running_loop().create_future()
        if self._task is None:
            self._task = spawn(self._flush())
        return batch

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let this loop turn's other messages join the batch
            while self._queue:
                items, self._queue = self._queue, []
                batch, self._batch = self._batch, None
                ok = True
                try:
                    if len(items) == 1:
                        await self.client.execute_command(self.command, *items[0])
                    else:
                        pipe = self.client.pipeline(transaction=False)
                        for channel, payload in items:
                            pipe.execute_command(self.command, channel, payload)
                        await pipe.execute()
                    self.sent += len(items)
                except Exception as exc:
                    ok = False
                    self.failed += len(items)
                    if self.on_error is not None:
                        self.on_error(exc)
                    else:
                        logger.error(
                            "publishing %d message(s) to Redis failed: %s", len(items), exc
                        )
                self.backlog -= len(items)
                if batch is not None and not batch.done():
                    batch.set_result(ok)
        finally:
            self._task = None
            if self._queue:
                self._task = spawn(self._flush())

    async def drain(self) -> None:
        """Wait until everything queued so far was written (or failed)."""
        while self._task is not None:
            batch = self._batch
            task = self._task
            if batch is not None:
                await asyncio.shield(batch)
            else:
                await asyncio.shield(task)


def make_client(url: str, connect_timeout: float) -> Any:
    """A redis-py asyncio client for *url* that fails fast instead of retrying."""
    aioredis, _ = _require_redis()
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=max(connect_timeout, 1.0) * 2,
        retry=Retry(NoBackoff(), 0),
        socket_keepalive=True,
        protocol=2,
    )


class _RedisLink:
    """A server's connection to Redis, shared by the adapters of all its namespaces."""

    def __init__(self, factory: RedisAdapter) -> None:
        self.factory = factory
        self.sharded = factory.mode == "sharded"
        self.handlers: dict[bytes, Callable[[bytes], None]] = {}
        self.adapters: set[RedisNamespaceAdapter] = set()
        self.up = False
        self.client: Any = None
        self.publisher: Publisher | None = None
        self._proto: _Subscriber | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Event | None = None
        self._closing = False
        self.dropped = 0
        """Messages for the other nodes dropped while Redis was unreachable."""
        self.received = 0
        """Messages Redis delivered on the subscriber connection."""
        self._down_since: float | None = None
        self._dropped_at_down = 0
        self._sub_cmd = "SSUBSCRIBE" if self.sharded else "SUBSCRIBE"
        self._unsub_cmd = "SUNSUBSCRIBE" if self.sharded else "UNSUBSCRIBE"

    # -- lifecycle

    def ensure_started(self) -> None:
        """Start connecting (needs a running event loop); idempotent."""
        if self._task is not None or self._closing:
            return
        f = self.factory
        self.client = make_client(f.url, f.connect_timeout)
        self.publisher = Publisher(
            self.client, "SPUBLISH" if self.sharded else "PUBLISH", self._publish_failed
        )
        self._first_attempt = asyncio.Event()
        self._task = spawn(self._run())

    async def ready(self) -> None:
        """Wait for the first connection attempt (success or failure); never raises."""
        self.ensure_started()
        if self._first_attempt is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._first_attempt.wait(), self.factory.connect_timeout * 2 + 1
                )

    async def close(self) -> None:
        """Flush what is queued, then close both connections."""
        self._closing = True
        if self.publisher is not None and self.up:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.publisher.drain(), self.factory.connect_timeout)
        if self._proto is not None:
            self._proto.abort(ConnectionAbortedError("adapter closed"))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.up = False
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
            self.client = None

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            proto = None
            try:
                proto = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                if self._first_attempt is not None:
                    self._first_attempt.set()
                if attempt == 1:
                    if self._down_since is None:
                        self._down_since = time.monotonic()
                        self._dropped_at_down = self.dropped
                        logger.error(
                            "cannot connect to Redis at %s (%s): this node serves its own "
                            "clients only until it can; retrying",
                            self.factory.safe_url,
                            str(exc) or exc.__class__.__name__,
                        )
                    else:
                        logger.warning(
                            "reconnecting to Redis failed (%s): retrying",
                            str(exc) or exc.__class__.__name__,
                        )
                else:
                    logger.debug("Redis connection attempt %d failed: %s", attempt, exc)
                f = self.factory
                delay = min(f.reconnect_delay_max, f.reconnect_delay * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            attempt = 0
            self._went_up()
            if self._first_attempt is not None:
                self._first_attempt.set()
            reason = await proto.closed
            self._proto = None
            if self._closing:
                return
            self._went_down(reason)

    async def _connect(self) -> _Subscriber:
        f = self.factory
        loop = asyncio.get_running_loop()
        params = f.connection_params
        proto: _Subscriber | None = None

        def make_protocol() -> _Subscriber:
            nonlocal proto
            proto = _Subscriber(self)
            return proto

        try:
            if params.get("path"):
                await asyncio.wait_for(
                    loop.create_unix_connection(make_protocol, params["path"]), f.connect_timeout
                )
            else:
                ssl_ctx = ssl_module.create_default_context() if params.get("ssl") else None
                host = params.get("host") or "localhost"
                await asyncio.wait_for(
                    loop.create_connection(
                        make_protocol,
                        host,
                        int(params.get("port") or 6379),
                        ssl=ssl_ctx,
                        server_hostname=host if ssl_ctx is not None else None,
                    ),
                    f.connect_timeout,
                )
            assert proto is not None
            if params.get("password"):
                auth = ["AUTH", params["password"]]
                if params.get("username"):
                    auth.insert(1, params["username"])
                await asyncio.wait_for(proto.request(*auth), f.connect_timeout)
            await asyncio.wait_for(self.client.ping(), f.connect_timeout)
            # From here on, new subscriptions go straight to this connection.
            self._proto = proto
            channels = list(self.handlers)
            if channels:
                confirmed = proto.subscription(self._sub_cmd, channels)
                if not await asyncio.wait_for(confirmed, f.connect_timeout):
                    raise ConnectionResetError("Redis closed the connection while subscribing")
            proto.start_health_checks(f.health_check_interval)
            return proto
        except BaseException:
            self._proto = None
            if proto is not None and proto.transport is not None:
                proto.transport.abort()
            raise

    def _went_up(self) -> None:
        self.up = True
        if self._down_since is not None:
            lost = time.monotonic() - self._down_since
            dropped = self.dropped - self._dropped_at_down
            logger.warning(
                "Redis connection restored after %.1f s; %d message(s) for the other nodes "
                "were dropped meanwhile",
                lost,
                dropped,
            )
            self._down_since = None
        else:
            logger.info("connected to Redis at %s", self.factory.safe_url)

    def _went_down(self, reason: BaseException | None) -> None:
        if not self.up:
            return
        self.up = False
        self._down_since = time.monotonic()
        self._dropped_at_down = self.dropped
        logger.warning(
            "Redis connection lost (%s): this node keeps serving its own clients; messages "
            "for the other nodes are dropped and requests fail until it is back",
            reason or "closed",
        )
        error = ClusterError(f"the connection to Redis was lost ({reason or 'closed'})")
        for adapter in list(self.adapters):
            adapter._fail_requests(error)

    def _publish_failed(self, exc: BaseException) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if not isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            logger.error("Redis refused a published message: %s", exc)
            return
        if self.up:
            logger.warning("publishing to Redis failed: %s", exc)
        proto = self._proto
        if proto is not None:
            proto.abort(exc)  # the subscriber reconnects and tells everyone
        else:
            self._went_down(exc)

    # -- subscriptions and publishing

    def subscribe(
        self, channels: Iterable[str], handler: Callable[[bytes], None]
    ) -> Awaitable[Any] | None:
        """Route *channels* to *handler*; the result completes when Redis confirmed them."""
        new = []
        handlers = self.handlers
        for channel in channels:
            key = channel.encode()
            if key not in handlers:
                new.append(key)
            handlers[key] = handler
        proto = self._proto
        if not new or proto is None:
            return None
        return proto.subscription(self._sub_cmd, new)

    def unsubscribe(self, channels: Iterable[str]) -> None:
        """Stop receiving *channels*."""
        gone = []
        for channel in channels:
            key = channel.encode()
            if self.handlers.pop(key, None) is not None:
                gone.append(key)
        proto = self._proto
        if gone and proto is not None:
            proto.subscription(self._unsub_cmd, gone)

    def publish(self, channel: str, payload: str | bytes) -> asyncio.Future[bool] | None:
        """Queue a message; None (and counted as dropped) while Redis is unreachable."""
        if not self.up or self.publisher is None:
            self.dropped += 1
            return None
        return self.publisher.publish(channel, payload)

    async def command(self, *args: Any) -> Any:
        """A Redis command through redis-py; ClusterError when Redis is unreachable."""
        if not self.up or self.client is None:
            raise ClusterError(f"Redis at {self.factory.safe_url} is unreachable")
        try:
            return await self.client.execute_command(*args)
        except Exception as exc:
            raise ClusterError(f"Redis command {args[0]} failed: {exc}") from exc


# -- the factory ------------------------------------------------------------------------


class RedisAdapter:
    """The Redis adapter factory: ``wsio.Server(adapter=RedisAdapter(url))``.

    Args:
        url: ``redis://[[user]:password@]host[:port]``, ``rediss://...``
            (TLS) or ``unix:///path``.
        mode: ``"sharded"`` (Redis 7 sharded pub/sub, the format of the npm
            ``createShardedAdapter``) or ``"classic"`` (plain pub/sub, the
            format of the npm ``createAdapter`` and ``@socket.io/redis-emitter``).
        key_prefix: the channel prefix (Node's ``channelPrefix`` / ``key``).
        request_timeout: seconds to wait for the other nodes' answers to
            ``fetch_sockets`` (``server_side_emit`` takes its own timeout).
        connect_timeout: seconds allowed for connecting and each query.
        reconnect_delay, reconnect_delay_max: the reconnection backoff (the
            delay doubles from the first to the second, with jitter).
        health_check_interval: seconds between PINGs on the subscriber
            connection; no data for two intervals means the connection is dead.

    The server calls it with each namespace; the adapters of one server
    share one subscriber connection and one redis-py client.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        mode: str = "sharded",
        key_prefix: str = "socket.io",
        request_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_delay: float = 0.1,
        reconnect_delay_max: float = 5.0,
        health_check_interval: float = 5.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        _require_redis()
        from redis.asyncio.connection import parse_url

        self.url = url
        self.connection_params: dict[str, Any] = dict(parse_url(url))
        cls = self.connection_params.pop("connection_class", None)
        if cls is not None and "SSL" in cls.__name__:
            self.connection_params["ssl"] = True
        self.mode = mode
        self.key_prefix = key_prefix
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.health_check_interval = health_check_interval
        self.codec = Codec()
        self._links: weakref.WeakKeyDictionary[Server, _RedisLink] = weakref.WeakKeyDictionary()

    @property
    def safe_url(self) -> str:
        """The URL without its password (for logs)."""
        p = self.connection_params
        if p.get("path"):
            return f"unix://{p['path']}"
        scheme = "rediss" if p.get("ssl") else "redis"
        return f"{scheme}://{p.get('host') or 'localhost'}:{p.get('port') or 6379}"

    def __repr__(self) -> str:
        return f"<RedisAdapter {self.mode} {self.safe_url} prefix={self.key_prefix!r}>"

    def __call__(self, nsp: Namespace) -> RedisNamespaceAdapter:
        link = self._links.get(nsp.server)
        if link is None or link._closing:
            link = self._links[nsp.server] = _RedisLink(self)
        cls = ShardedRedisAdapter if self.mode == "sharded" else ClassicRedisAdapter
        return cls(nsp, self, link)

    def link_of(self, server: Server) -> _RedisLink | None:
        """The Redis link of *server* (tests, introspection)."""
        return self._links.get(server)

    def bus(self, server: Server) -> Any:
        """The cluster bus of *server* (for ``wsio.Server(sticky_sessions=False)``)."""
        from .redis_bus import RedisBus

        link = self._links.get(server)
        if link is None or link._closing:
            link = self._links[server] = _RedisLink(self)
        return RedisBus(self, link)


# -- the namespace adapters -------------------------------------------------------------------


class _Pending:
    """A request waiting for the other nodes' answers."""

    __slots__ = ("answers", "expected", "future", "kind", "received")

    def __init__(self, kind: str, expected: int) -> None:
        self.kind = kind
        self.expected = expected
        self.received = 0
        self.answers: list[Any] = []
        self.future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

    def add(self, items: list[Any], count_as_node: bool = True) -> None:
        self.answers.extend(items)
        if count_as_node:
            self.received += 1
        if self.received >= self.expected and not self.future.done():
            self.future.set_result(self.answers)


class _AckRequest:
    """A broadcast with acknowledgements this node sent: where the other nodes' answers go."""

    __slots__ = ("acks", "counts", "expected_nodes", "nodes", "on_ack", "on_count", "timer")

    def __init__(
        self,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
        expected_nodes: int | None,
    ) -> None:
        self.on_count = on_count
        self.on_ack = on_ack
        self.expected_nodes = expected_nodes
        self.nodes = 0
        self.counts = 0
        self.acks = 0
        self.timer: asyncio.TimerHandle | None = None

    def complete(self) -> bool:
        return (
            self.expected_nodes is not None
            and self.nodes >= self.expected_nodes
            and self.acks >= self.counts
        )


#: How long a broadcast-with-ack request keeps collecting late answers, at least.
ACK_RETENTION = 120.0


class RedisNamespaceAdapter(Adapter):
    """The adapter of one namespace on one node (made by :class:`RedisAdapter`).

    Every method acts on the local sockets at once; what concerns the other
    nodes is queued for Redis and written in order, batched in pipelines.
    Like a socket's emit and its send buffer, what a broadcast returns
    completes at once unless more than :data:`HIGH_WATER` messages wait to be
    written; then it completes when they are (flow control). Namespaces
    whose name does not start with ``/`` (the parents of dynamic namespaces)
    stay local.
    """

    def __init__(self, nsp: Namespace, factory: RedisAdapter, link: _RedisLink) -> None:
        super().__init__(nsp)
        self.factory = factory
        self.link = link
        self.codec = factory.codec
        self.uid = self._new_uid()
        self.cluster = nsp.name.startswith("/")
        prefix = factory.key_prefix
        self.channel = f"{prefix}#{nsp.name}#"
        """The namespace's broadcast channel."""
        self._requests: dict[str, _Pending] = {}
        self._ack_requests: dict[str, _AckRequest] = {}
        self._room_channels: set[str] = set()
        self._joining: list[Awaitable[Any]] | None = None
        self._last_count: int | None = None
        self._own: tuple[bytes, ...] | None = None
        self._closed = False
        self._recovery = SharedRecovery(self) if self.cluster else None
        if self.cluster:
            link.adapters.add(self)
            self._subscribe_fixed()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.nsp.name} uid={self.uid}>"

    # -- hooks for the two formats

    def _new_uid(self) -> str:
        return secrets.token_hex(8)

    def _subscribe_fixed(self) -> None:
        raise NotImplementedError

    def _fixed_channels(self) -> list[str]:
        raise NotImplementedError

    def _wants_room_channel(self, room: str) -> bool:
        raise NotImplementedError

    def room_channel(self, room: str) -> str:
        """The channel of broadcasts to *room* alone."""
        return f"{self.channel}{room}#"

    def _on_room_message(self, data: bytes) -> None:
        raise NotImplementedError

    def _publish_broadcast(
        self, packet: Packet, opts: BroadcastOptions
    ) -> asyncio.Future[bool] | None:
        raise NotImplementedError

    def _publish_ack_broadcast(
        self, packet: Packet, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        raise NotImplementedError

    def _publish_operation(
        self, kind: str, opts: BroadcastOptions, extra: dict[str, Any]
    ) -> asyncio.Future[bool] | None:
        raise NotImplementedError

    def _publish_fetch(
        self, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        raise NotImplementedError

    def _publish_server_side_emit(
        self, packet: list[Any], request_id: str | None
    ) -> asyncio.Future[bool] | None:
        raise NotImplementedError

    async def _count(self) -> int:
        raise NotImplementedError

    # -- lifecycle

    def init(self) -> Awaitable[None] | None:
        """Connect when there is a running loop (otherwise :meth:`ready` or first use does)."""
        if not self.cluster:
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self.ready()

    async def ready(self) -> None:
        """Wait until the first attempt to connect to Redis is over (never raises)."""
        if self.cluster:
            await self.link.ready()

    async def close(self) -> None:
        """Unsubscribe; the last adapter of a server closes its Redis connections."""
        if self._closed or not self.cluster:
            return
        self._closed = True
        if self._recovery is not None:
            await self._recovery.close(self.factory.connect_timeout)
        self._fail_requests(ClusterError("the adapter was closed"))
        link = self.link
        link.unsubscribe([*self._fixed_channels(), *map(self.room_channel, self._room_channels)])
        self._room_channels.clear()
        link.adapters.discard(self)
        if not link.adapters:
            await link.close()

    def server_count(self) -> int | Awaitable[int]:
        """How many nodes serve this namespace (Redis counts the subscribers)."""
        if not self.cluster:
            return 1
        self.link.ensure_started()
        return self._server_count()

    async def _server_count(self) -> int:
        count = max(await self._count(), 1)
        self._last_count = count
        return count

    def _fail_requests(self, error: ClusterError) -> None:
        requests, self._requests = self._requests, {}
        for pending in requests.values():
            if not pending.future.done():
                pending.future.set_exception(error)

    # -- rooms: one channel per room (which rooms depends on the format)

    def add_all(self, sid: str, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Join *rooms* locally; new rooms' channels are subscribed (awaitable: confirmed)."""
        if not self.cluster:
            return super().add_all(sid, rooms)
        joining: list[Awaitable[Any]] = []
        self._joining = joining
        try:
            super().add_all(sid, rooms)
        finally:
            self._joining = None
        if not joining:
            return None
        return _confirmed(joining)

    def on_create_room(self, room: str) -> None:
        """A room appeared on this node: subscribe to its channel if it has one."""
        if not self.cluster or self._closed or not self._wants_room_channel(room):
            return
        self._room_channels.add(room)
        self.link.ensure_started()
        result = self.link.subscribe((self.room_channel(room),), self._on_room_message)
        if result is not None and self._joining is not None:
            self._joining.append(result)

    def on_delete_room(self, room: str) -> None:
        """A room left this node: unsubscribe from its channel."""
        if room in self._room_channels:
            self._room_channels.discard(room)
            self.link.unsubscribe((self.room_channel(room),))

    # -- broadcasting

    def _is_local_target(self, opts: BroadcastOptions) -> bool:
        """Only local sockets can match: a local option, or one room that is a local socket's id."""
        if opts.local or not self.cluster:
            return True
        rooms = opts.rooms
        if len(rooms) == 1 and not opts.except_rooms:
            for room in rooms:
                return room in self.sids
        return False

    def _shared_recovery(self) -> bool:
        """Whether recovery's log and sessions live in Redis (recovery on, namespace clustered)."""
        return self._recovery is not None and self.nsp.server.recovery is not None

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> Awaitable[None] | None:
        """Deliver locally and publish for the other nodes (unless ``local``).

        With connection state recovery on, a recoverable event is first
        logged in Redis (its entry id is its offset), then delivered.
        """
        if self._shared_recovery() and recoverable(packet, opts):
            assert self._recovery is not None
            self.link.ensure_started()
            return self._recovery.broadcast(packet, opts, not self._is_local_target(opts))
        if self._is_local_target(opts):
            return super().broadcast(packet, opts)
        self.link.ensure_started()
        # Encode for the wire before the local delivery may append a recovery offset.
        fut = self._publish_broadcast(packet, opts)
        super().broadcast(packet, opts)
        return _flow(self.link, fut)

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> Awaitable[None] | None:
        """Deliver locally, ask the other nodes to do the same and forward their answers."""
        if opts.local or not self.cluster:
            return super().broadcast_with_ack(packet, opts, on_count, on_ack)
        self.link.ensure_started()
        request_id = secrets.token_hex(8)
        # The count the caller fetched just before (BroadcastOperator.call does).
        expected = self._last_count - 1 if self._last_count is not None else None
        self._last_count = None
        request = _AckRequest(on_count, on_ack, expected)
        if expected is None or expected > 0:
            self._ack_requests[request_id] = request
            retention = max(self.factory.request_timeout, ACK_RETENTION)
            request.timer = asyncio.get_running_loop().call_later(
                retention, self._ack_requests.pop, request_id, None
            )
            fut = self._publish_ack_broadcast(packet, opts, request_id)
        else:
            fut = None
        super().broadcast_with_ack(packet, opts, on_count, on_ack)
        return _flow(self.link, fut)

    def _ack_count(self, request_id: Any, count: Any) -> None:
        request = self._ack_requests.get(request_id)
        if request is None:
            return
        n = int(count) if isinstance(count, (int, float)) else 0
        request.nodes += 1
        request.counts += n
        request.on_count(n)
        self._ack_done(request_id, request)

    def _ack_answer(self, request_id: Any, arg: Any) -> None:
        request = self._ack_requests.get(request_id)
        if request is None:
            return
        request.acks += 1
        request.on_ack("", [arg])
        self._ack_done(request_id, request)

    def _ack_done(self, request_id: Any, request: _AckRequest) -> None:
        if request.complete():
            self._ack_requests.pop(request_id, None)
            if request.timer is not None:
                request.timer.cancel()

    def _deliver_logged(
        self, packet: Packet, opts: BroadcastOptions, publish: bool, offset: str | None
    ) -> None:
        """Send a logged event on: to the other nodes, then to the local sockets."""
        if publish:
            self._publish_broadcast(packet, opts)
        self.deliver(self.encode(packet), opts, packet, offset)  # type: ignore[arg-type]

    def _remote_broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        """A broadcast from another node: deliver it to the local sockets."""
        if not isinstance(packet, dict):
            return
        data = packet.get("data")
        if not isinstance(data, list) or not data:
            return
        p = Packet(PacketType.EVENT, self.nsp.name, data)
        server = self.nsp.server
        if server._outgoing:
            server._notify_outgoing_broadcast(self.nsp, data[0], tuple(data[1:]), opts)
        if self._shared_recovery() and recoverable(p, opts):
            # Logged by the sending node already: its last argument is the offset.
            offset = data[-1] if isinstance(data[-1], str) else None
            self.deliver(self.encode(p), opts, p, offset)  # type: ignore[arg-type]
            return
        Adapter.broadcast(self, p, opts)

    def _remote_ack_broadcast(
        self,
        packet: Any,
        opts: BroadcastOptions,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> None:
        if not isinstance(packet, dict) or not isinstance(packet.get("data"), list):
            on_count(0)
            return
        data = packet["data"]
        p = Packet(PacketType.EVENT, self.nsp.name, data, self.nsp.next_ack_id())
        Adapter.broadcast_with_ack(self, p, opts, on_count, on_ack)

    # -- operations on sockets

    def _operation(
        self, kind: str, opts: BroadcastOptions, extra: dict[str, Any]
    ) -> Awaitable[None] | None:
        if opts.local or not self.cluster:
            return None
        self.link.ensure_started()
        fut = self._publish_operation(kind, opts, extra)
        return _flow(self.link, fut)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Make the selected sockets join *rooms*, on every node."""
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        return self._operation("join", opts, {"rooms": rooms})

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> Awaitable[None] | None:
        """Make the selected sockets leave *rooms*, on every node."""
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        return self._operation("leave", opts, {"rooms": rooms})

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> Awaitable[None] | None:
        """Disconnect the selected sockets, on every node."""
        # Published first: the local part may close sockets of the selection's rooms.
        result = self._operation("disconnect", opts, {"close": bool(close)})
        super().disconnect_sockets(opts, close)
        return result

    # -- requests

    def _new_request(self, kind: str, expected: int) -> tuple[str, _Pending]:
        request_id = secrets.token_hex(8)
        pending = _Pending(kind, expected)
        self._requests[request_id] = pending
        return request_id, pending

    def _answer(self, request_id: Any, kind: str, items: list[Any]) -> None:
        pending = self._requests.get(request_id) if isinstance(request_id, str) else None
        if pending is None or pending.kind != kind:
            return
        pending.add(items)
        if pending.future.done():
            self._requests.pop(request_id, None)

    async def _wait(
        self, request_id: str, pending: _Pending, sent: asyncio.Future[bool] | None, timeout: float
    ) -> list[Any]:
        try:
            if sent is None or not await asyncio.shield(sent):
                raise ClusterError(f"Redis at {self.factory.safe_url} is unreachable")
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            self._requests.pop(request_id, None)
            if not pending.future.done():
                pending.future.cancel()

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """The selected sockets: local :class:`~wsio.Socket` objects, then :class:`RemoteSocket`\\ s.

        Raises :class:`ClusterError` when Redis is unreachable and
        :class:`ClusterTimeout` when a node did not answer within
        ``request_timeout``.
        """
        local: list[Any] = self.local_sockets(opts)
        if opts.local or not self.cluster:
            return local
        self.link.ensure_started()
        count = await self._server_count()
        if count <= 1:
            return local
        request_id, pending = self._new_request("fetch", count - 1)
        sent = self._publish_fetch(opts, request_id)
        timeout = self.factory.request_timeout
        try:
            answers = await self._wait(request_id, pending, sent, timeout)
        except TimeoutError:
            raise ClusterTimeout(
                f"fetch_sockets: {pending.received} of {pending.expected} other node(s) "
                f"answered within {timeout:g} s"
            ) from None
        remote = [RemoteSocket(self, d) for d in answers if isinstance(d, dict)]
        return local + remote

    async def server_side_emit(self, packet: list[Any], timeout: float | None = None) -> list[Any]:
        """Emit *packet* (``[event, *args]``) to the other nodes' ``on_server_event`` handlers.

        Without a timeout nothing is awaited but the publication (the result
        is ``[]``); with one, the result is every other node's answer, as
        soon as all of them answered, and :class:`~wsio.AckTimeout` (with
        the answers so far) is raised when the time is up. Raises
        :class:`ClusterError` when Redis is unreachable.
        """
        if not self.cluster:
            return []
        self.link.ensure_started()
        if timeout is None:
            sent = self._publish_server_side_emit(list(packet), None)
            if sent is None or not await asyncio.shield(sent):
                raise ClusterError(f"Redis at {self.factory.safe_url} is unreachable")
            return []
        count = await self._server_count()
        if count <= 1:
            return []
        request_id, pending = self._new_request("emit", count - 1)
        sent = self._publish_server_side_emit(list(packet), request_id)
        try:
            return list(await self._wait(request_id, pending, sent, timeout))
        except TimeoutError:
            raise AckTimeout(
                f"{pending.received} of {pending.expected} other node(s) answered "
                f"{packet[0]!r} within {timeout:g} s",
                list(pending.answers),
            ) from None

    def _server_event(self, packet: Any, reply: Callable[[Any], None] | None) -> None:
        """Run this node's handler of a server-side event from another node."""
        if not isinstance(packet, list) or not packet:
            return
        handlers = getattr(self.nsp.server, "_server_events", None) or {}
        handler = handlers.get((self.nsp.name, packet[0]))
        if handler is None:
            logger.debug("no on_server_event handler for %r in %s", packet[0], self.nsp.name)
            return

        async def run() -> None:
            try:
                result = handler(*packet[1:])
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                logger.exception("server event handler of %r failed", packet[0])
                return
            if reply is not None:
                if isinstance(result, tuple):
                    result = list(result)
                reply(result)

        spawn(run())

    def _local_descriptions(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        return [describe_socket(s) for s in self.local_sockets(opts)]

    def _encode_answer(self, message: dict[str, Any]) -> str | bytes:
        try:
            return self.codec.json_or_pack(message)
        except (TypeError, ValueError) as exc:
            logger.error(
                "cannot encode an answer for another node (%s): sending it without data", exc
            )
            sockets = message.get("data", message).get("sockets")
            if isinstance(sockets, list):
                for s in sockets:
                    s["data"] = None
            return self.codec.json_or_pack(message)

    # -- connection state recovery (shared through Redis) ----------------------------------

    def recovery_position(self) -> Any:
        """Where a socket that was sent nothing starts (decided when it leaves, in Redis)."""
        if self._shared_recovery():
            return None
        return super().recovery_position()

    async def recovery_start(self, socket: Any) -> None:
        """Note the log position a new socket starts from (in Redis)."""
        if self._shared_recovery():
            assert self._recovery is not None
            self.link.ensure_started()
            await self._recovery.start(socket)

    def session_started(self, socket: Any) -> None:
        """Keep a refreshed snapshot of the session in Redis (survives a crash of this node)."""
        if self._shared_recovery():
            assert self._recovery is not None
            self._recovery.session_started(socket)

    async def recovery_catch_up(
        self, socket: Any, pending: list[Awaitable[None] | None], start: Any
    ) -> list[list[Any]]:
        """Once the socket's room channels are subscribed, the events logged meanwhile."""
        await super().recovery_catch_up(socket, pending, start)
        if not self._shared_recovery() or not isinstance(start, str):
            return []
        assert self._recovery is not None
        try:
            return await self._recovery.read(start, set(socket.rooms))
        except ClusterError as exc:
            logger.warning("recovery catch-up of %s failed: %s", socket.id, exc)
            return []

    def offset_key(self, offset: Any) -> Any:
        """Stream entry ids compare as (milliseconds, sequence)."""
        if not self._shared_recovery() or not isinstance(offset, str):
            return None
        ms, _, seq = offset.partition("-")
        try:
            return (int(ms), int(seq))
        except ValueError:
            return None

    def discard_session(self, pid: str) -> None:
        """Delete the session from Redis (the socket left for good)."""
        if self._shared_recovery():
            assert self._recovery is not None
            self._recovery.discard(pid)

    def persist_session(self, session: dict[str, Any]) -> Awaitable[None] | None:
        """Keep the session in Redis (any node can restore it, even after a restart)."""
        if self._shared_recovery():
            assert self._recovery is not None
            return self._recovery.persist(session)
        return super().persist_session(session)

    async def restore_session(self, pid: str, offset: str | None) -> dict[str, Any] | None:
        """The session and its missed events, from Redis."""
        if not self._shared_recovery():
            return await super().restore_session(pid, offset)
        assert self._recovery is not None
        self.link.ensure_started()
        try:
            return await self._recovery.restore(pid, offset)
        except ClusterError as exc:
            logger.warning("cannot restore session %s: %s", pid, exc)
            return None


class _Confirmed:
    """Awaits subscription confirmations; never raises."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Awaitable[Any]]) -> None:
        self._items = items

    def __await__(self) -> Generator[Any, None, None]:
        for item in self._items:
            with contextlib.suppress(Exception):
                yield from asyncio.ensure_future(item).__await__()


def _confirmed(items: list[Awaitable[Any]]) -> Awaitable[None]:
    return _Confirmed(items)

    # -- sharded format ----------------------------------------------------------------------


class ShardedRedisAdapter(RedisNamespaceAdapter):
    """The sharded format (npm ``createShardedAdapter``, subscription mode "dynamic")."""

    def _fixed_channels(self) -> list[str]:
        return [self.channel, self.response_channel(self.uid)]

    def response_channel(self, uid: str) -> str:
        """Where the answers for node *uid* go."""
        return f"{self.channel}{uid}#"

    def _subscribe_fixed(self) -> None:
        self.link.subscribe(self._fixed_channels(), self._on_message)

    def _wants_room_channel(self, room: str) -> bool:
        # Public rooms only: a socket's own room travels on the namespace channel.
        return room not in self.sids

    def _on_room_message(self, data: bytes) -> None:
        self._on_message(data)

    async def _count(self) -> int:
        reply = await self.link.command("PUBSUB", "SHARDNUMSUB", self.channel)
        return _numsub(reply)

    # -- publishing

    def _message(self, kind: MessageType, data: dict[str, Any] | None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": int(kind)}
        if data is not None:
            message["data"] = data
        message["uid"] = self.uid
        message["nsp"] = self.nsp.name
        return message

    def _publish(self, channel: str, message: dict[str, Any]) -> asyncio.Future[bool] | None:
        return self.link.publish(channel, self.codec.json_or_pack(message))

    def _publish_broadcast(
        self, packet: Packet, opts: BroadcastOptions
    ) -> asyncio.Future[bool] | None:
        message = self._message(
            MessageType.BROADCAST,
            {"packet": wire_packet(self.nsp.name, packet.data), "opts": wire_opts(opts)},
        )
        channel = self.channel
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            if not looks_like_socket_id(room):
                channel = self.room_channel(room)
        return self._publish(channel, message)

    def _publish_ack_broadcast(
        self, packet: Packet, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        message = self._message(
            MessageType.BROADCAST,
            {
                "packet": wire_packet(self.nsp.name, packet.data),
                "requestId": request_id,
                "opts": wire_opts(opts),
            },
        )
        return self._publish(self.channel, message)

    def _publish_operation(
        self, kind: str, opts: BroadcastOptions, extra: dict[str, Any]
    ) -> asyncio.Future[bool] | None:
        types = {
            "join": MessageType.SOCKETS_JOIN,
            "leave": MessageType.SOCKETS_LEAVE,
            "disconnect": MessageType.DISCONNECT_SOCKETS,
        }
        return self._publish(
            self.channel, self._message(types[kind], {"opts": wire_opts(opts), **extra})
        )

    def _publish_fetch(
        self, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        return self._publish(
            self.channel,
            self._message(
                MessageType.FETCH_SOCKETS, {"opts": wire_opts(opts), "requestId": request_id}
            ),
        )

    def _publish_server_side_emit(
        self, packet: list[Any], request_id: str | None
    ) -> asyncio.Future[bool] | None:
        data: dict[str, Any] = {"packet": packet}
        if request_id is not None:
            data = {"requestId": request_id, "packet": packet}
        return self._publish(self.channel, self._message(MessageType.SERVER_SIDE_EMIT, data))

    def _respond(self, requester: Any, kind: MessageType, data: dict[str, Any]) -> None:
        if not isinstance(requester, str):
            return
        message = self._message(kind, data)
        self.link.publish(self.response_channel(requester), self._encode_answer(message))

    # -- receiving

    def _own_suffixes(self) -> tuple[bytes, bytes]:
        """How this node's own messages end, in JSON and in msgpack (``_message`` puts uid, nsp last)."""
        json_tail = f',"uid":"{self.uid}","nsp":{json_dumps(self.nsp.name)}}}'.encode()
        pack_tail = self.codec.pack({"uid": self.uid, "nsp": self.nsp.name})[1:]
        return json_tail, pack_tail

    def _on_message(self, raw: bytes) -> None:
        own = self._own
        if own is None:
            own = self._own = self._own_suffixes()
        if raw.endswith(own[0]) or raw.endswith(own[1]):
            return  # our own message, back from Redis: not even decoded
        try:
            message = self.codec.decode(raw)
        except Exception as exc:
            logger.debug("ignoring an unreadable message: %s", exc)
            return
        if not isinstance(message, dict):
            return
        uid = message.get("uid")
        if uid == self.uid or message.get("nsp") != self.nsp.name:
            return
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(data, dict):
            data = {}
        if kind == MessageType.BROADCAST:
            opts = opts_from_wire(data.get("opts"))
            request_id = data.get("requestId")
            if request_id is None:
                self._remote_broadcast(data.get("packet"), opts)
                return

            def on_count(n: int) -> None:
                self._respond(
                    uid,
                    MessageType.BROADCAST_CLIENT_COUNT,
                    {"requestId": request_id, "clientCount": n},
                )

            def on_ack(sid: str, args: list[Any]) -> None:
                self._respond(
                    uid,
                    MessageType.BROADCAST_ACK,
                    {"requestId": request_id, "packet": args[0] if args else None},
                )

            self._remote_ack_broadcast(data.get("packet"), opts, on_count, on_ack)
        elif kind == MessageType.SOCKETS_JOIN:
            Adapter.add_sockets(self, opts_from_wire(data.get("opts")), _rooms(data.get("rooms")))
        elif kind == MessageType.SOCKETS_LEAVE:
            Adapter.del_sockets(self, opts_from_wire(data.get("opts")), _rooms(data.get("rooms")))
        elif kind == MessageType.DISCONNECT_SOCKETS:
            Adapter.disconnect_sockets(
                self, opts_from_wire(data.get("opts")), bool(data.get("close"))
            )
        elif kind == MessageType.FETCH_SOCKETS:
            sockets = self._local_descriptions(opts_from_wire(data.get("opts")))
            self._respond(
                uid,
                MessageType.FETCH_SOCKETS_RESPONSE,
                {"requestId": data.get("requestId"), "sockets": sockets},
            )
        elif kind == MessageType.SERVER_SIDE_EMIT:
            request_id = data.get("requestId")
            reply = None
            if request_id is not None:

                def reply(result: Any) -> None:
                    self._respond(
                        uid,
                        MessageType.SERVER_SIDE_EMIT_RESPONSE,
                        {"requestId": request_id, "packet": result},
                    )

            self._server_event(data.get("packet"), reply)
        elif kind == MessageType.FETCH_SOCKETS_RESPONSE:
            found = data.get("sockets")
            self._answer(data.get("requestId"), "fetch", found if isinstance(found, list) else [])
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self._answer(data.get("requestId"), "emit", [data.get("packet")])
        elif kind == MessageType.BROADCAST_CLIENT_COUNT:
            self._ack_count(data.get("requestId"), data.get("clientCount"))
        elif kind == MessageType.BROADCAST_ACK:
            self._ack_answer(data.get("requestId"), data.get("packet"))


# -- classic format ------------------------------------------------------------------------


class ClassicRedisAdapter(RedisNamespaceAdapter):
    """The classic format (npm ``createAdapter``; the npm ``@socket.io/redis-emitter`` too)."""

    def __init__(self, nsp: Namespace, factory: RedisAdapter, link: _RedisLink) -> None:
        prefix = factory.key_prefix
        self.request_channel = f"{prefix}-request#{nsp.name}#"
        self.shared_response_channel = f"{prefix}-response#{nsp.name}#"
        super().__init__(nsp, factory, link)

    def _new_uid(self) -> str:
        return secrets.token_hex(3)  # six characters, as Node's uid2(6)

    def response_channel(self, uid: str) -> str:
        """The answers meant for node *uid* alone."""
        return f"{self.shared_response_channel}{uid}#"

    def _fixed_channels(self) -> list[str]:
        return [
            self.channel,
            self.request_channel,
            self.shared_response_channel,
            self.response_channel(self.uid),
        ]

    def _subscribe_fixed(self) -> None:
        link = self.link
        link.subscribe((self.channel,), self._on_room_message)
        link.subscribe((self.request_channel,), self._on_request)
        link.subscribe(
            (self.shared_response_channel, self.response_channel(self.uid)), self._on_response
        )

    def _wants_room_channel(self, room: str) -> bool:
        # Node publishes a broadcast to one room, socket ids included, on that room's channel.
        return True

    async def _count(self) -> int:
        reply = await self.link.command("PUBSUB", "NUMSUB", self.request_channel)
        return _numsub(reply)

    # -- publishing

    def _publish_json(self, channel: str, message: dict[str, Any]) -> asyncio.Future[bool] | None:
        return self.link.publish(channel, self.codec.json_or_pack(message))

    def _publish_broadcast(
        self, packet: Packet, opts: BroadcastOptions
    ) -> asyncio.Future[bool] | None:
        payload = self.codec.pack(
            [self.uid, wire_packet(self.nsp.name, packet.data), wire_opts(opts)]
        )
        channel = self.channel
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            channel = self.room_channel(room)
        return self.link.publish(channel, payload)

    def _publish_ack_broadcast(
        self, packet: Packet, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        payload = self.codec.pack(
            {
                "uid": self.uid,
                "requestId": request_id,
                "type": int(RequestType.BROADCAST),
                "packet": wire_packet(self.nsp.name, packet.data),
                "opts": wire_opts(opts),
            }
        )
        return self.link.publish(self.request_channel, payload)

    def _publish_operation(
        self, kind: str, opts: BroadcastOptions, extra: dict[str, Any]
    ) -> asyncio.Future[bool] | None:
        types = {
            "join": RequestType.REMOTE_JOIN,
            "leave": RequestType.REMOTE_LEAVE,
            "disconnect": RequestType.REMOTE_DISCONNECT,
        }
        message = {
            "uid": self.uid,
            "type": int(types[kind]),
            "opts": wire_opts(opts, flags=False),
            **extra,
        }
        return self._publish_json(self.request_channel, message)

    def _publish_fetch(
        self, opts: BroadcastOptions, request_id: str
    ) -> asyncio.Future[bool] | None:
        message = {
            "uid": self.uid,
            "requestId": request_id,
            "type": int(RequestType.REMOTE_FETCH),
            "opts": wire_opts(opts, flags=False),
        }
        return self._publish_json(self.request_channel, message)

    def _publish_server_side_emit(
        self, packet: list[Any], request_id: str | None
    ) -> asyncio.Future[bool] | None:
        message: dict[str, Any] = {"uid": self.uid, "type": int(RequestType.SERVER_SIDE_EMIT)}
        if request_id is not None:
            message["requestId"] = request_id
        message["data"] = packet
        return self._publish_json(self.request_channel, message)

    def _respond(
        self, request: dict[str, Any], message: dict[str, Any], pack: bool = False
    ) -> None:
        uid = request.get("uid")
        channel = (
            self.response_channel(uid)
            if isinstance(uid, str) and uid != EMITTER_UID
            else self.shared_response_channel
        )
        payload = self.codec.pack(message) if pack else self._encode_answer(message)
        self.link.publish(channel, payload)

    # -- receiving

    def _own_prefixes(self) -> tuple[bytes, bytes, bytes]:
        """How this node's own broadcasts and requests start (uid first, see the publishers)."""
        uid = self.codec.pack(self.uid)
        return b"\x93" + uid, f'{{"uid":"{self.uid}"'.encode(), self.codec.pack("uid") + uid

    def _on_room_message(self, raw: bytes) -> None:
        own = self._own
        if own is None:
            own = self._own = self._own_prefixes()
        if raw.startswith(own[0]):
            return  # our own broadcast, back from Redis: not even decoded
        try:
            message = self.codec.unpack(raw)
        except Exception as exc:
            logger.debug("ignoring an unreadable broadcast: %s", exc)
            return
        if not isinstance(message, list) or len(message) < 3:
            return
        uid, packet, opts = message[0], message[1], message[2]
        if uid == self.uid or not isinstance(packet, dict):
            return
        if packet.get("nsp", "/") != self.nsp.name:
            return
        self._remote_broadcast(packet, opts_from_wire(opts))

    def _on_request(self, raw: bytes) -> None:
        own = self._own
        if own is None:
            own = self._own = self._own_prefixes()
        if raw.startswith(own[1]) or raw.startswith(own[2], 1):
            return  # our own request (JSON, or a msgpack map): already done locally
        try:
            request = self.codec.decode(raw)
        except Exception as exc:
            logger.debug("ignoring an unreadable request: %s", exc)
            return
        if not isinstance(request, dict):
            return
        if request.get("uid") == self.uid:
            return  # our own: already done locally
        kind = request.get("type")
        request_id = request.get("requestId")
        if kind == RequestType.SOCKETS:
            ids = sorted(self.sockets(_rooms(request.get("rooms"))))
            self._respond(request, {"requestId": request_id, "sockets": ids})
        elif kind == RequestType.ALL_ROOMS:
            self._respond(request, {"requestId": request_id, "rooms": sorted(self.rooms)})
        elif kind in (
            RequestType.REMOTE_JOIN,
            RequestType.REMOTE_LEAVE,
            RequestType.REMOTE_DISCONNECT,
        ):
            self._remote_operation(kind, request)
        elif kind == RequestType.REMOTE_FETCH:
            sockets = self._local_descriptions(opts_from_wire(request.get("opts")))
            self._respond(request, {"requestId": request_id, "sockets": sockets})
        elif kind == RequestType.SERVER_SIDE_EMIT:
            reply = None
            if request_id is not None:

                def reply(result: Any) -> None:
                    self._respond(
                        request,
                        {
                            "type": int(RequestType.SERVER_SIDE_EMIT),
                            "requestId": request_id,
                            "data": result,
                        },
                    )

            self._server_event(request.get("data"), reply)
        elif kind == RequestType.BROADCAST:
            opts = opts_from_wire(request.get("opts"))

            def on_count(n: int) -> None:
                self._respond(
                    request,
                    {
                        "type": int(RequestType.BROADCAST_CLIENT_COUNT),
                        "requestId": request_id,
                        "clientCount": n,
                    },
                )

            def on_ack(sid: str, args: list[Any]) -> None:
                self._respond(
                    request,
                    {
                        "type": int(RequestType.BROADCAST_ACK),
                        "requestId": request_id,
                        "packet": args[0] if args else None,
                    },
                    pack=True,
                )

            self._remote_ack_broadcast(request.get("packet"), opts, on_count, on_ack)

    def _remote_operation(self, kind: int, request: dict[str, Any]) -> None:
        if "opts" in request:
            opts = opts_from_wire(request.get("opts"))
            if kind == RequestType.REMOTE_JOIN:
                Adapter.add_sockets(self, opts, _rooms(request.get("rooms")))
            elif kind == RequestType.REMOTE_LEAVE:
                Adapter.del_sockets(self, opts, _rooms(request.get("rooms")))
            else:
                Adapter.disconnect_sockets(self, opts, bool(request.get("close")))
            return
        # The older form: one socket by id, answered when done.
        socket = self.nsp.sockets.get(request.get("sid"))  # type: ignore[arg-type]
        if socket is None:
            return
        room = request.get("room")
        if kind == RequestType.REMOTE_JOIN and isinstance(room, str):
            socket.join(room)
        elif kind == RequestType.REMOTE_LEAVE and isinstance(room, str):
            socket.leave(room)
        elif kind == RequestType.REMOTE_DISCONNECT:
            socket.disconnect(bool(request.get("close")))
        self._respond(request, {"requestId": request.get("requestId")})

    def _on_response(self, raw: bytes) -> None:
        try:
            response = self.codec.decode(raw)
        except Exception as exc:
            logger.debug("ignoring an unreadable response: %s", exc)
            return
        if not isinstance(response, dict):
            return
        request_id = response.get("requestId")
        if request_id in self._ack_requests:
            kind = response.get("type")
            if kind == RequestType.BROADCAST_CLIENT_COUNT:
                self._ack_count(request_id, response.get("clientCount"))
            elif kind == RequestType.BROADCAST_ACK:
                self._ack_answer(request_id, response.get("packet"))
            return
        pending = self._requests.get(request_id) if isinstance(request_id, str) else None
        if pending is None:
            return
        if pending.kind == "fetch":
            sockets = response.get("sockets")
            self._answer(request_id, "fetch", sockets if isinstance(sockets, list) else [])
        elif pending.kind == "emit" and response.get("type") == RequestType.SERVER_SIDE_EMIT:
            self._answer(request_id, "emit", [response.get("data")])


def _rooms(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [r for r in value if isinstance(r, str)]
    return []


def _numsub(reply: Any) -> int:
    """The count out of a ``PUBSUB (SHARD)NUMSUB channel`` reply (RESP2 list or RESP3 map)."""
    if isinstance(reply, dict):
        values = list(reply.values())
        return int(values[0]) if values else 0
    if isinstance(reply, (list, tuple)) and len(reply) >= 2:
        return int(reply[1])
    return 0
