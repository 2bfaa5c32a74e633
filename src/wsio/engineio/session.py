"""One Engine.IO session on the server: transports, upgrade, heartbeat, queue."""

from __future__ import annotations

import asyncio
import logging
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from ..http.headers import Headers
from ..http.request import Request, Response
from . import packets as eio
from .packets import PacketType

if TYPE_CHECKING:
    from .server import Server

__all__ = ["HandshakeInfo", "Session", "WebSocketTransport"]

logger = logging.getLogger("wsio.engineio")

Data = str | bytes

_MESSAGE = PacketType.MESSAGE
_PONG = PacketType.PONG
_PING = PacketType.PING
_CLOSE = PacketType.CLOSE
_UPGRADE = PacketType.UPGRADE


class WebSocketTransport(Protocol):
    """What a session needs from a WebSocket (built-in or ASGI)."""

    remote_address: tuple[str, int] | None

    def set_callbacks(
        self,
        on_message: Callable[[Data], None] | None,
        on_closed: Callable[[Any], None] | None = None,
    ) -> None: ...

    def write_message(self, message: Data) -> bool: ...

    @property
    def writable(self) -> bool: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    async def drain(self) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def abort(self) -> None: ...

    @property
    def write_buffer_size(self) -> int: ...


@dataclass(slots=True)
class HandshakeInfo:
    """What the client's first request looked like.

    ``time`` is the handshake's wall-clock time (ISO 8601, as Node's
    ``handshake.time``), ``issued`` the same in milliseconds since the epoch.
    """

    headers: Headers
    query: dict[str, str]
    address: str | None
    url: str
    secure: bool
    issued: int = field(default_factory=lambda: int(time.time() * 1000))
    time: str = ""

    def __post_init__(self) -> None:
        if not self.time:
            self.time = time.strftime("%a %b %d %Y %H:%M:%S GMT", time.gmtime(self.issued / 1000))


def _polling_part(item: Data) -> str:
    if item.__class__ is str:
        return item
    return "b" + b64encode(item).decode("ascii")  # type: ignore[arg-type]


class Session:
    """A client's Engine.IO session.

    Messages are sent with :meth:`send` (or :meth:`write` from synchronous
    code); the server's ``message`` handler receives what the client sends.
    ``transport`` is ``"polling"`` or ``"websocket"``.
    """

    __slots__ = (
        "__weakref__",
        "_close_timer",
        "_closed",
        "_flush_scheduled",
        "_ping_timer",
        "_poll",
        "_pong_timer",
        "_post",
        "_probe",
        "_probe_answered",
        "_queue",
        "_queued_bytes",
        "_upgrade_timer",
        "_ws",
        "closed_reason",
        "data",
        "handshake",
        "loop",
        "owner",
        "server",
        "sid",
        "transport",
    )

    def __init__(self, server: Server, sid: str, handshake: HandshakeInfo, transport: str) -> None:
        self.server = server
        self.sid = sid
        self.handshake = handshake
        self.transport = transport
        self.data: dict[str, Any] = {}
        """Free for the application's use."""
        self.owner: Any = None
        """The object a layer built on top attaches to the session (Socket.IO's connection)."""
        self.loop = asyncio.get_running_loop()
        self.closed_reason: str | None = None
        self._closed = False
        self._queue: list[Data] = []
        self._queued_bytes = 0
        self._poll: asyncio.Future[str | None] | None = None
        self._post: Request | None = None
        self._flush_scheduled = False
        self._ws: WebSocketTransport | None = None
        self._probe: WebSocketTransport | None = None
        self._probe_answered = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._upgrade_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.transport}{' closed' if self._closed else ''}>"

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._closed

    @property
    def upgrading(self) -> bool:
        """Whether a WebSocket probe is in progress."""
        return self._probe is not None

    # -- sending -------------------------------------------------------------

    def write(self, data: Data) -> bool:
        """Queue a message for the client without waiting.

        Returns False when the connection's buffer is above its high-water
        mark (the caller may then ``await`` :meth:`drain`). Messages sent to
        a closed session are dropped.
        """
        if self._closed:
            return False
        if data.__class__ is str:
            return self._write_raw("4" + data)
        if isinstance(data, str):  # a str subclass (a StrEnum member...)
            return self._write_raw("4" + str(data))
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, bytes):
            raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")
        return self._write_raw(data)

    async def send(self, data: Data) -> None:
        """Send a message (``str`` as text, ``bytes`` as binary)."""
        if not self.write(data):
            await self.drain()

    def _write_raw(self, item: Data) -> bool:
        ws = self._ws
        if ws is not None:
            try:
                if ws.write_message(item):
                    return True
            except Exception:  # the socket is gone; its close callback ends the session
                return True
            return self._check_backlog(ws)
        queue = self._queue
        queue.append(item)
        self._queued_bytes += len(item)
        if self._poll is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_poll)
        if len(queue) < 64:
            return True
        server = self.server
        if (
            len(queue) > server.max_outgoing_packets
            or self._queued_bytes > server.max_outgoing_bytes
        ):
            self._slow_consumer(
                f"{len(queue)} packets / {self._queued_bytes} bytes waiting for a poll"
            )
            return False
        return self._poll is not None

    def _check_backlog(self, ws: WebSocketTransport) -> bool:
        """Past the high-water mark: disconnect a client whose backlog exceeds the limit."""
        size = ws.write_buffer_size
        if size > self.server.max_outgoing_bytes:
            self._slow_consumer(f"{size} bytes waiting to be written")
        return False

    def _slow_consumer(self, detail: str) -> None:
        logger.warning("session %s closed (slow consumer): %s", self.sid, detail)
        ws = self._ws
        self._close("slow consumer", notify=False)
        if ws is not None:
            ws.abort()

    def write_prepared(self, prepared: Any, item: Data) -> None:
        """Write a frame prepared once for many sessions (``item`` for polling)."""
        if self._closed:
            return
        ws = self._ws
        if ws is not None and hasattr(ws, "send_prepared"):
            try:
                ws.send_prepared(prepared)
            except Exception:
                pass
            return
        self._write_raw(item)

    def write_items(
        self, items: list[Data], prepared: Any = None, *, volatile: bool = False
    ) -> bool:
        """Write Engine.IO packets in their WebSocket form (``"4text"`` or raw bytes).

        ``prepared`` (a list of prepared frames for the same items) is used on
        a WebSocket transport. With ``volatile``, nothing is written when the
        client is not ready (WebSocket buffer full, or no pending poll) and
        False is returned. Otherwise returns whether the transport is below
        its high-water mark.
        """
        if self._closed:
            return False
        ws = self._ws
        if ws is not None:
            if volatile and not ws.writable:
                return False
            try:
                send_prepared = getattr(ws, "send_prepared", None) if prepared is not None else None
                if send_prepared is not None:
                    for frame in prepared:
                        send_prepared(frame)
                    ok = ws.writable
                else:
                    ok = True
                    for item in items:
                        ok = ws.write_message(item)
            except Exception:  # gone: its close callback ends the session
                return False
            return True if ok else self._check_backlog(ws)
        if volatile and self._poll is None:
            return False
        ok = True
        for item in items:
            ok = self._write_raw(item)
        return ok

    @property
    def writable(self) -> bool:
        """Whether a write now would reach the client without piling up."""
        ws = self._ws
        if ws is not None:
            return bool(ws.writable)
        return self._poll is not None or len(self._queue) < 64

    async def drain(self) -> None:
        """Wait until the transport can take more data."""
        ws = self._ws
        if ws is not None:
            try:
                await ws.drain()
            except Exception:
                pass

    @property
    def buffered_amount(self) -> int:
        """Bytes (WebSocket) or messages (polling) waiting to be sent."""
        if self._ws is not None:
            return self._ws.write_buffer_size
        return len(self._queue)

    # -- polling ---------------------------------------------------------------

    def _flush_poll(self) -> None:
        self._flush_scheduled = False
        poll = self._poll
        if poll is None or not self._queue:
            return
        self._poll = None
        queue = self._queue
        self._queue = []
        self._queued_bytes = 0
        if not poll.done():
            poll.set_result("\x1e".join([_polling_part(i) for i in queue]))

    async def handle_poll(self, request: Request) -> Response | str:
        """A long-polling GET: returns the payload to send (or an error response)."""
        if self._poll is not None:
            # "at most one concurrent GET": the session is closed.
            self._fail("transport error", "overlapping GET requests")
            return self.server.error_response(request, 3, "Bad request")
        if self._probe_answered and not self._closed:
            # Upgrading: the client must pause polling; data waits for the WebSocket.
            return eio.NOOP_WS
        if self._queue:
            queue = self._queue
            self._queue = []
            self._queued_bytes = 0
            if self._closed:
                # The close packet is in this payload: the session can go.
                self._forget()
            return "\x1e".join([_polling_part(i) for i in queue])
        if self._closed:
            return eio.CLOSE_WS
        poll: asyncio.Future[str | None] = self.loop.create_future()
        self._poll = poll

        def gone() -> None:
            if not poll.done():
                poll.set_result(None)

        request.add_disconnect_callback(gone)
        body = await poll
        if self._poll is poll:
            self._poll = None
        if body is None:
            if not self._closed and self.transport == "polling":
                self._fail("transport error", "poll connection closed prematurely")
            return eio.CLOSE_WS
        return body

    def begin_post(self, request: Request) -> None:
        """A POST's head arrived (its body may still be on its way).

        "At most one concurrent POST": a second one closes the session.
        """
        if self._post is not None and self._post is not request:
            self._fail("transport error", "overlapping POST requests")
            return
        self._post = request
        request.add_disconnect_callback(lambda: self.end_post(request))

    def end_post(self, request: Request) -> None:
        """The POST *request* was answered (or abandoned)."""
        if self._post is request:
            self._post = None

    def handle_post(self, body: bytes) -> str | None:
        """A long-polling POST: returns None when accepted, else an error message."""
        try:
            packets = eio.decode_payload(body)
        except eio.DecodeError as exc:
            self._fail("parse error", f"bad polling payload: {exc}")
            return str(exc)
        for packet in packets:
            if self._closed:
                break
            self._on_packet(packet, websocket=False)
        return None

    # -- WebSocket ---------------------------------------------------------------

    def attach_websocket(self, ws: WebSocketTransport, *, listen: bool = True) -> None:
        """Use *ws* as the transport of a session opened over WebSocket.

        With ``listen=False`` incoming messages wait until :meth:`listen`.
        """
        self._ws = ws
        self.transport = "websocket"
        if listen:
            self.listen()

    def listen(self) -> None:
        """Start delivering the WebSocket's messages (queued ones first)."""
        ws = self._ws
        if ws is not None:
            ws.set_callbacks(self._on_ws_message, self._on_ws_closed)

    def _on_ws_message(self, data: Data) -> None:
        if self._closed:
            return
        try:
            packet = eio.decode_ws(data)
        except eio.DecodeError as exc:
            self._fail("parse error", f"bad packet: {exc}")
            return
        self._on_packet(packet, websocket=True)

    def _on_ws_closed(self, ws: Any) -> None:
        if not self._closed and ws is self._ws:
            self._close(_ws_closed_reason(ws), notify=False)

    # -- upgrade -------------------------------------------------------------------

    def start_upgrade(self, ws: WebSocketTransport) -> None:
        """Probe *ws* as the new transport (the client's ``2probe`` follows)."""
        self._probe = ws
        self._probe_answered = False
        ws.set_callbacks(partial(self._on_probe_message, ws), self._on_probe_closed)
        self._upgrade_timer = self.loop.call_later(
            self.server.upgrade_timeout, self._upgrade_timeout
        )

    def _on_probe_message(self, ws: WebSocketTransport, data: Data) -> None:
        if ws is not self._probe:
            # Messages read together with the upgrade packet can still come
            # through this callback: they belong to the new transport.
            if ws is self._ws:
                self._on_ws_message(data)
            return
        if self._closed:
            return
        if data == eio.PING_PROBE and not self._probe_answered:
            self._probe_answered = True
            try:
                ws.write_message(eio.PONG_PROBE)
            except Exception:
                self._cancel_upgrade(close=True)
                return
            # A pending GET returns now with a noop, so the client can pause
            # polling; anything queued meanwhile waits for the upgrade packet
            # and then goes over the WebSocket, in order.
            poll, self._poll = self._poll, None
            if poll is not None and not poll.done():
                poll.set_result(eio.NOOP_WS)
            return
        if data == eio.UPGRADE_WS and self._probe_answered:
            self._finish_upgrade(ws)
            return
        logger.info("session %s: unexpected packet during upgrade: %r", self.sid, data[:32])
        self._cancel_upgrade(close=True)

    def _finish_upgrade(self, ws: WebSocketTransport) -> None:
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        self._probe = None
        self._probe_answered = False
        self._ws = ws
        self.transport = "websocket"
        ws.set_callbacks(self._on_ws_message, self._on_ws_closed)
        poll, self._poll = self._poll, None
        if poll is not None and not poll.done():
            poll.set_result(eio.NOOP_WS)
        queue, self._queue = self._queue, []
        self._queued_bytes = 0
        for item in queue:
            try:
                ws.write_message(item)
            except Exception:
                break
        self.server._on_upgrade(self)

    def _on_probe_closed(self, ws: Any) -> None:
        if ws is self._probe:
            self._cancel_upgrade(close=False)

    def _upgrade_timeout(self) -> None:
        self._upgrade_timer = None
        if self._probe is not None:
            logger.info("session %s: upgrade timed out", self.sid)
            self._cancel_upgrade(close=True)

    def _cancel_upgrade(self, *, close: bool) -> None:
        ws = self._probe
        self._probe = None
        self._probe_answered = False
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        if ws is not None:
            ws.set_callbacks(None, None)
            if close:
                ws.abort()

    # -- packets -------------------------------------------------------------------

    def _on_packet(self, packet: eio.Packet, *, websocket: bool) -> None:
        ptype = packet.type
        if ptype is _MESSAGE:
            self.server._on_message(self, packet.data)  # type: ignore[arg-type]
        elif ptype is _PONG:
            if self._pong_timer is not None:
                self._pong_timer.cancel()
                self._pong_timer = None
                self._schedule_ping()
        elif ptype is _CLOSE:
            # The client is leaving: nothing more to tell it.
            self._close("transport close", notify=False)
        elif ptype is _PING:
            # Clients of v4 do not ping; answer anyway, it costs nothing.
            # Only MESSAGE packets carry bytes: a PING's data is text.
            self._write_raw("3" + packet.data if packet.data else "3")  # type: ignore[operator]
        # NOOP and stray UPGRADE packets are ignored.

    # -- heartbeat -------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat (called once the open packet is on its way)."""
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        if not self._closed:
            self._ping_timer = self.loop.call_later(self.server.ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._closed:
            return
        self._write_raw(eio.PING_WS)
        self._pong_timer = self.loop.call_later(self.server.ping_timeout, self._on_ping_timeout)

    def _on_ping_timeout(self) -> None:
        self._pong_timer = None
        if not self._closed:
            logger.info("session %s: ping timeout", self.sid)
            self._close("ping timeout", notify=False)

    # -- closing ---------------------------------------------------------------------

    def _fail(self, reason: str, detail: str) -> None:
        logger.info("session %s closed (%s): %s", self.sid, reason, detail)
        self._close(reason)

    async def close(self) -> None:
        """Close the session from the server side (reason ``"forced close"``)."""
        ws = self._ws
        self._close("forced close")
        if ws is not None:
            try:
                await ws.close(1000)
            except Exception:
                pass

    def _close(self, reason: str, *, notify: bool = True) -> None:
        """End the session once; ``notify`` tells the client with a close packet.

        On polling, a server-side close (``"forced close"``) delivers what is
        still queued followed by the close packet (to the pending GET or the
        next one); a close packet from the client ends a pending GET with a
        noop; errors drop the queue and end a pending GET with a close packet.
        """
        if self._closed:
            return
        self._closed = True
        self.closed_reason = reason
        for name in ("_ping_timer", "_pong_timer", "_upgrade_timer"):
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)
        if self._probe is not None:
            self._cancel_upgrade(close=True)
        self._probe_answered = False
        ws = self._ws
        if ws is not None:
            ws.set_callbacks(None, None)
            if notify:
                try:
                    ws.write_message(eio.CLOSE_WS)
                except Exception:
                    pass
            self.loop.create_task(_close_ws(ws))
            self._forget()
        else:
            poll, self._poll = self._poll, None
            if reason == "forced close":
                self._queue.append(eio.CLOSE_WS)
                if poll is not None and not poll.done():
                    queue, self._queue = self._queue, []
                    poll.set_result("\x1e".join([_polling_part(i) for i in queue]))
                    self._forget()
                else:
                    # Answer the client's next GET with the rest and a close packet.
                    self._close_timer = self.loop.call_later(self.server.ping_timeout, self._forget)
            else:
                self._queue.clear()
                if poll is not None and not poll.done():
                    poll.set_result(eio.NOOP_WS if reason == "transport close" else eio.CLOSE_WS)
                self._forget()
        self.server._on_close(self, reason)

    def _forget(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.server._forget(self)


def _ws_closed_reason(ws: Any) -> str:
    """``"transport error"`` when this side failed the WebSocket (a protocol
    violation, a message above the size limit), else ``"transport close"``:
    the reasons the reference server reports."""
    if getattr(ws, "failed", False):  # the ASGI adapter's own verdict
        return "transport error"
    proto: Any = getattr(ws, "protocol", None)
    sent = getattr(proto, "close_sent", None)
    if sent is not None and sent not in (1000, 1001, 1005) and proto.close_code == 1006:
        return "transport error"
    return "transport close"


async def _close_ws(ws: WebSocketTransport) -> None:
    try:
        await ws.close(1000)
    except Exception:
        ws.abort()
