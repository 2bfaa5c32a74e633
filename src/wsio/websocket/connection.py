"""The asyncio WebSocket connection: a thin shell around :class:`~wsio.websocket.protocol.Protocol`.

:class:`WebSocket` is itself the ``asyncio.Protocol`` of its transport:
``data_received`` feeds the sans-I/O core directly and frames are written
straight to the transport.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from .._util import writelines
from ..http.headers import Headers
from .events import BinaryMessage, CloseReceived, Failed, Ping, Pong, TextMessage
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidState
from .frames import OP_BINARY, OP_CONT, OP_TEXT, encode_frame
from .protocol import Protocol, Side, State

__all__ = ["PreparedMessage", "WebSocket", "prepare"]

logger = logging.getLogger("wsio.websocket")

Data = str | bytes


class PreparedMessage:
    """A message framed once, to be written as-is to many server-side connections.

    Use :func:`prepare` and :meth:`WebSocket.send_prepared`. Connections with
    compression for the message get their own compressed frame instead.
    """

    __slots__ = ("frame", "opcode", "payload")

    def __init__(self, opcode: int, payload: bytes) -> None:
        self.opcode = opcode
        self.payload = payload
        self.frame = b"".join(encode_frame(opcode, payload))


def prepare(message: Data) -> PreparedMessage:
    """Frame *message* once (text for str, binary for bytes)."""
    if isinstance(message, str):
        return PreparedMessage(OP_TEXT, message.encode())
    return PreparedMessage(OP_BINARY, bytes(message))


class WebSocket(asyncio.Protocol):
    """An open WebSocket connection (server or client side).

    Receive with ``await ws.recv()`` or ``async for message in ws``; send with
    ``await ws.send(message)``. ``str`` is text and ``bytes`` is binary both
    ways.

    Flow control: incoming data stops being read while ``max_queue`` messages
    wait to be received; ``send`` waits while the transport's write buffer is
    above its high-water mark (``write_limit``).
    """

    def __init__(
        self,
        protocol: Protocol,
        *,
        path: str = "/",
        request_headers: Headers | None = None,
        response_headers: Headers | None = None,
        subprotocol: str | None = None,
        max_queue: int | None = 16,
        write_limit: int = 65536,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
    ) -> None:
        self.protocol = protocol
        self.path = path
        """The request target's path (server side) or the URL's path (client side)."""
        self.request_headers = request_headers or Headers()
        self.response_headers = response_headers or Headers()
        self.subprotocol = subprotocol
        self.remote_address: tuple[str, int] | None = None
        self.request: Any = None
        """On the server, the :class:`~wsio.http.request.Request` of the handshake."""
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._is_server = protocol.side is Side.SERVER
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._messages: deque[Data] = deque()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed = False  # TCP connection lost
        self._closed_waiter: asyncio.Future[None] = self.loop.create_future()
        self._close_handshake: asyncio.Future[None] = self.loop.create_future()
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._keepalive: asyncio.TimerHandle | None = None
        self._keepalive_ping: bytes | None = None
        self._rx_since_ping = False
        self._bytes_out = 0  # bytes handed to the transport
        self._ping_mark = 0  # ... up to and including the keepalive Ping
        self._flushed_at_check = 0
        self._abort_handle: asyncio.TimerHandle | None = None
        self._fragments_lock: asyncio.Lock | None = None
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        self._on_message: Callable[[Data], None] | None = None
        self._on_closed: Callable[[WebSocket], None] | None = None

    # -- attaching to a transport ------------------------------------------------

    def attach(self, transport: asyncio.Transport, initial: bytes = b"") -> None:
        """Take over *transport* after the handshake, with bytes already read."""
        self.transport = transport
        transport.set_protocol(self)
        transport.set_write_buffer_limits(high=self.write_limit, low=self.write_limit // 4)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.remote_address = (str(peer[0]), int(peer[1]))
        if initial:
            self.data_received(initial)
        if self.ping_interval is not None and not self._closed:
            self._keepalive = self.loop.call_later(self.ping_interval, self._send_keepalive)
        if not self._reading_paused:  # the initial bytes may have filled the queue
            try:
                transport.resume_reading()
            except (RuntimeError, AttributeError):  # pragma: no cover - already reading
                pass

    # -- asyncio.Protocol --------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        proto = self.protocol
        events = proto.receive_data(data)
        self._rx_since_ping = True
        if proto._out:
            self._write_list(proto.data_to_send())
        if not events:
            return
        messages = self._messages
        on_message = self._on_message
        for event in events:
            cls = event.__class__
            if cls is TextMessage or cls is BinaryMessage:
                if on_message is not None:
                    try:
                        on_message(event.data)  # type: ignore[union-attr]
                    except Exception:
                        logger.exception("message callback failed")
                else:
                    messages.append(event.data)  # type: ignore[union-attr]
            elif cls is Pong:
                self._on_pong(event.data)  # type: ignore[union-attr,arg-type]
            elif cls is Ping:
                pass
            elif cls is CloseReceived:
                self._on_close_received()
            elif cls is Failed:
                logger.info(
                    "failing WebSocket connection from %s: %s (%d)",
                    self.remote_address,
                    event.reason,  # type: ignore[union-attr]
                    event.code,  # type: ignore[union-attr]
                )
                self._finish_closing(immediately=True)
        if messages:
            waiter = self._recv_waiter
            if waiter is not None:
                self._recv_waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if (
                self.max_queue is not None
                and len(messages) >= self.max_queue
                and not self._reading_paused
            ):
                if proto.state is State.CLOSING:
                    # We sent a Close frame: keep reading until the peer's
                    # arrives, dropping what does not fit in the queue.
                    while len(messages) > self.max_queue:
                        messages.pop()
                else:
                    self._reading_paused = True
                    self.transport.pause_reading()
        if proto.has_pending_input:
            # A violation behind these messages: act on it right after the
            # application had its turn, even if it never calls recv().
            self.loop.call_soon(self._receive_pending)

    def _receive_pending(self) -> None:
        if self.protocol.has_pending_input and not self._closed:
            self.data_received(b"")

    def eof_received(self) -> bool | None:
        events = self.protocol.receive_eof()
        if events:
            self._on_close_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.protocol.state is not State.CLOSED or self.protocol.close_code is None:
            self.protocol.receive_eof()
        for handle in (self._keepalive, self._abort_handle):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._abort_handle = None
        self._wake_all()
        if not self._close_handshake.done():
            self._close_handshake.set_result(None)
        if not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        for fut, _ in self._pings.values():
            if not fut.done():
                fut.set_exception(self._closed_exc())
                fut.exception()  # mark retrieved
        self._pings.clear()
        callback = self._on_closed
        if callback is not None:
            self._on_closed = None
            try:
                callback(self)
            except Exception:
                logger.exception("close callback failed")

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # -- closing internals -------------------------------------------------------

    def _wake_all(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None:
            self._recv_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self.resume_writing()

    def _on_close_received(self) -> None:
        if not self._close_handshake.done():
            self._close_handshake.set_result(None)
        self._finish_closing(immediately=False)

    def _finish_closing(self, *, immediately: bool) -> None:
        """Close frames were exchanged (or the connection failed): end TCP.

        "The server MUST close the underlying TCP connection immediately";
        a client waits ``close_timeout`` for the server to do so (section 7.1.1).
        """
        if not self._close_handshake.done():
            self._close_handshake.set_result(None)
        self._wake_all()
        if self._closed or self.transport is None:
            return
        if self._is_server or immediately:
            self._flush()
            self.transport.close()
        elif self._abort_handle is None:
            self._abort_handle = self.loop.call_later(self.close_timeout, self.transport.abort)

    def _closed_exc(self) -> ConnectionClosed:
        proto = self.protocol
        code = proto.close_code if proto.close_code is not None else 1006
        cls = ConnectionClosedOK if proto.close_ok else ConnectionClosedError
        return cls(code, proto.close_reason, proto.close_sent)

    # -- callback mode ------------------------------------------------------------

    def set_callbacks(
        self,
        on_message: Callable[[Data], None] | None,
        on_closed: Callable[[WebSocket], None] | None = None,
    ) -> None:
        """Deliver messages to *on_message* as they arrive instead of queueing them.

        For layers built on top (Engine.IO): no task and no queue per
        connection. ``on_closed`` runs once when the TCP connection is gone.
        Messages queued before the switch are delivered first.
        """
        self._on_message = on_message
        self._on_closed = on_closed
        if on_message is not None:
            while self._messages:
                on_message(self._messages.popleft())
            if self._reading_paused:
                self._reading_paused = False
                if not self._closed:
                    self.transport.resume_reading()
        if on_closed is not None and self._closed:
            self._on_closed = None
            on_closed(self)

    def pause_reading(self) -> None:
        """Stop reading from the transport (callback mode backpressure)."""
        if not self._reading_paused and not self._closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Resume reading after :meth:`pause_reading`."""
        if self._reading_paused and not self._closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def write_message(self, message: Data) -> bool:
        """Send a message without waiting; returns False if the write buffer is full.

        Raises :class:`ConnectionClosed` when the connection is closed.
        """
        proto = self.protocol
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        if isinstance(message, str):
            self._write_list(proto.send_text(message))
        else:
            self._write_list(proto.send_binary(message))
        return not self._write_paused

    # -- receiving ----------------------------------------------------------------

    async def recv(self) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises :class:`ConnectionClosedOK` / :class:`ConnectionClosedError`
        once the connection is closed and every message received before was
        returned.
        """
        messages = self._messages
        while not messages:
            if self.protocol.has_pending_input and not self._closed:
                self.data_received(b"")
                continue
            if self.protocol.state is State.CLOSED or self._closed:
                raise self._closed_exc()
            if self._recv_waiter is not None:
                raise RuntimeError("another coroutine is already waiting for the next message")
            waiter = self.loop.create_future()
            self._recv_waiter = waiter
            try:
                await waiter
            finally:
                if self._recv_waiter is waiter:
                    self._recv_waiter = None
        message = messages.popleft()
        if self._reading_paused and len(messages) <= (self.max_queue or 0) // 4:
            self._reading_paused = False
            if not self._closed:
                self.transport.resume_reading()
        return message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # -- sending -------------------------------------------------------------------

    def _write_list(self, frames: list[bytes]) -> None:
        """Queue frames; they go out together at the end of this loop iteration.

        Coalescing the frames written in one iteration (the replies to one
        read, a burst of emits) costs one system call instead of one each.
        More than ``write_limit`` bytes pending are written at once, so
        backpressure still shows as soon as the transport's buffer fills.
        """
        if self._closed:
            return
        size = sum(map(len, frames)) if len(frames) != 1 else len(frames[0])
        self._bytes_out += size
        pending = self._pending
        if pending is None:
            if size > self.write_limit:
                # Large enough on its own: straight to the transport.
                if len(frames) == 1:
                    self.transport.write(frames[0])
                else:
                    writelines(self.transport, frames)
                return
            pending = self._pending = []
            self.loop.call_soon(self._flush)
        pending.extend(frames)
        self._pending_size += size
        if self._pending_size > self.write_limit:
            self._flush()

    def _flush(self) -> None:
        """Hand the pending frames to the transport."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._pending_size = 0
        if self._closed:
            return
        if len(pending) == 1:
            self.transport.write(pending[0])
        else:
            writelines(self.transport, pending)

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send a message: ``str`` as text, ``bytes``-like as binary.

        An iterable or async iterable of str/bytes is sent as one fragmented
        message, one frame per item. Waits only while the write buffer is full.
        """
        proto = self.protocol
        lock = self._fragments_lock
        if (
            lock is not None
            and lock.locked()
            and isinstance(message, (str, bytes, bytearray, memoryview))
        ):
            async with lock:  # a fragmented message is on its way: go after it
                pass
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        if isinstance(message, str):
            frames = proto.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            frames = proto.send_binary(message)
        else:
            await self._send_fragments(message)
            return
        self._write_list(frames)
        if self._write_paused:
            await self._drain()

    async def _send_fragments(self, message: Iterable[Data] | AsyncIterable[Data]) -> None:
        if self._fragments_lock is None:
            self._fragments_lock = asyncio.Lock()
        async with self._fragments_lock:
            try:
                opcode: int | None = None
                previous: bytes | None = None
                items: AsyncIterator[Data]
                items = (
                    aiter(message) if isinstance(message, AsyncIterable) else _aiter_sync(message)
                )
                async for item in items:
                    if isinstance(item, str):
                        kind, payload = OP_TEXT, item.encode()
                    elif isinstance(item, (bytes, bytearray, memoryview)):
                        kind, payload = OP_BINARY, bytes(item)
                    else:
                        raise TypeError(f"cannot send {type(item).__name__}")
                    if opcode is None:
                        opcode = kind
                    elif kind != opcode:
                        raise TypeError("all fragments of a message must be str or all bytes")
                    if previous is not None:
                        await self._send_fragment(previous, opcode=opcode, fin=False)
                    previous = payload
                if opcode is None:
                    return
                assert previous is not None
                await self._send_fragment(previous, opcode=opcode, fin=True)
            except BaseException:
                proto = self.protocol
                if proto._send_fragmenting and proto.state is State.OPEN and not self._closed:
                    # The message cannot be finished: fail the connection
                    # rather than leave it half-sent for good.
                    self._write_list(proto.send_close(1011, "fragmented message not finished"))
                raise

    async def _send_fragment(self, payload: bytes, *, opcode: int, fin: bool) -> None:
        proto = self.protocol
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        op = OP_CONT if proto._send_fragmenting else opcode
        self._write_list(proto.send_fragment(op, payload, fin=fin))
        if self._write_paused:
            await self._drain()

    def send_prepared(self, prepared: PreparedMessage) -> None:
        """Write a message framed by :func:`prepare` (no copy on the server side)."""
        proto = self.protocol
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        deflate = proto.deflate
        if (
            deflate is not None and len(prepared.payload) >= deflate.threshold
        ) or not self._is_server:
            self._write_list(proto.send_message(prepared.opcode, prepared.payload))
        else:
            if proto._send_fragmenting:
                raise InvalidState("a fragmented message is in progress")
            self._write_list([prepared.frame])

    @property
    def write_buffer_size(self) -> int:
        """Bytes waiting in the transport's write buffer."""
        if self.transport is None or self._closed:
            return 0
        return self.transport.get_write_buffer_size()

    @property
    def writable(self) -> bool:
        """False while the write buffer is above its high-water mark."""
        return not self._write_paused

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        if self._write_paused:
            await self._drain()

    async def _drain(self) -> None:
        if self._closed:
            raise self._closed_exc()
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter
        if self._closed:
            raise self._closed_exc()

    async def ping(self, data: bytes | str | None = None) -> asyncio.Future[float]:
        """Send a Ping; return a future that resolves to the round-trip time in seconds."""
        proto = self.protocol
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        if data is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in self._pings:
                raise ValueError("a ping with this payload is already waiting for its pong")
        fut: asyncio.Future[float] = self.loop.create_future()
        self._pings[payload] = (fut, self.loop.time())
        self._write_list(proto.send_ping(payload))
        return fut

    async def pong(self, data: bytes | str = b"") -> None:
        """Send an unsolicited Pong."""
        proto = self.protocol
        if proto.state is not State.OPEN or self._closed:
            raise self._closed_exc()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._write_list(proto.send_pong(payload))

    def _on_pong(self, payload: bytes) -> None:
        if payload == self._keepalive_ping:
            self._keepalive_ping = None
        if payload not in self._pings:
            return
        # A pong acknowledges its ping and every earlier one (section 5.5.3).
        now = self.loop.time()
        for key in list(self._pings):
            fut, sent = self._pings.pop(key)
            if not fut.done():
                fut.set_result(now - sent)
            if key == payload:
                break

    # -- keepalive -------------------------------------------------------------

    def _send_keepalive(self) -> None:
        self._keepalive = None
        if self._closed or self.protocol.state is not State.OPEN:
            return
        if self._keepalive_ping is None:
            payload = os.urandom(4)
            self._keepalive_ping = payload
            self._rx_since_ping = False
            self._write_list(self.protocol.send_ping(payload))
            self._ping_mark = self._bytes_out
            self._flushed_at_check = self._bytes_flushed()
            if self.ping_timeout is not None:
                self._keepalive = self.loop.call_later(self.ping_timeout, self._check_keepalive)
                return
        if self.ping_interval is not None:
            self._keepalive = self.loop.call_later(self.ping_interval, self._send_keepalive)

    def _bytes_flushed(self) -> int:
        """Bytes that left for the network (not pending here or in the transport)."""
        return self._bytes_out - self._pending_size - self.transport.get_write_buffer_size()

    def _check_keepalive(self) -> None:
        self._keepalive = None
        if self._closed or self.protocol.state is not State.OPEN:
            return
        if self._keepalive_ping is None:
            # Answered: next ping one interval after the previous one.
            assert self.ping_interval is not None
            delay = max(self.ping_interval - (self.ping_timeout or 0), 0)
            self._keepalive = self.loop.call_later(delay, self._send_keepalive)
            return
        if self._rx_since_ping or self._reading_paused:
            # Data is still arriving (a large message?): the peer is alive.
            # Or we stopped reading (max_queue): its Pong may be waiting unread.
            self._rx_since_ping = False
            assert self.ping_timeout is not None
            self._keepalive = self.loop.call_later(self.ping_timeout, self._check_keepalive)
            return
        flushed = self._bytes_flushed()
        if self._flushed_at_check < flushed < self._ping_mark:
            # Our Ping still waits behind data that the peer keeps reading
            # (a large message on a slow link): the peer could not answer yet.
            self._flushed_at_check = flushed
            assert self.ping_timeout is not None
            self._keepalive = self.loop.call_later(self.ping_timeout, self._check_keepalive)
            return
        logger.info("keepalive ping timeout: closing connection from %s", self.remote_address)
        self._write_list(self.protocol.send_close(1011, "keepalive ping timeout"))
        self.protocol.state = State.CLOSED
        self._finish_closing(immediately=True)

    # -- closing -------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: the closing handshake, then the TCP close.

        Waits at most ``close_timeout`` for the peer's Close frame and as long
        again for the TCP connection to end, then aborts it.
        """
        if not self._closed and self.transport is not None:
            proto = self.protocol
            if proto.close_sent is None and proto.state is State.OPEN:
                self._write_list(proto.send_close(code, reason))
            if proto.state is not State.CLOSED:
                if self._reading_paused:
                    # The peer's Close frame may wait behind unread messages.
                    self._reading_paused = False
                    self.transport.resume_reading()
                try:
                    await asyncio.wait_for(
                        asyncio.shield(self._close_handshake), self.close_timeout
                    )
                except TimeoutError:
                    logger.info("no Close frame from %s: aborting", self.remote_address)
                    self.transport.abort()
            if not self._closed:
                self._flush()
                if self._is_server:
                    self.transport.close()
                elif self._abort_handle is None:
                    self._abort_handle = self.loop.call_later(
                        self.close_timeout, self.transport.abort
                    )
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        await asyncio.shield(self._closed_waiter)

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        if self.transport is not None and not self._closed:
            self.transport.abort()

    @property
    def open(self) -> bool:
        """Whether messages can still be sent."""
        return self.protocol.state is State.OPEN and not self._closed

    @property
    def closed(self) -> bool:
        """Whether the TCP connection is closed."""
        return self._closed

    @property
    def close_code(self) -> int | None:
        """The code of the peer's Close frame (1005 none, 1006 no frame), None while open."""
        if self.protocol.state is not State.CLOSED and not self._closed:
            return None
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason of the peer's Close frame, None while open."""
        if self.close_code is None:
            return None
        return self.protocol.close_reason

    def __repr__(self) -> str:
        side = "server" if self._is_server else "client"
        return f"<WebSocket {side} {self.path} {self.protocol.state.name}>"


async def _aiter_sync(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item
