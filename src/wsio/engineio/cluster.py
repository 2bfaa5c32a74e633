"""Sessions without sticky load balancing: requests served through the session's owner.

Behind a round-robin load balancer the requests of one long-polling session
land on every node. With a :class:`Router` the node that opened a session
owns it (its id says which node that is) and the others pass its requests on
over a :class:`Bus` (Redis pub/sub in production, see
:mod:`wsio.adapters.redis`):

* a polling POST is forwarded whole; the client gets ``ok`` only after the
  owner applied it;
* a polling GET is forwarded and held by the owner like any long-poll; the
  client gets what the owner had queued; if the client goes away the owner is
  told;
* a WebSocket upgrade is accepted where it lands and relayed: every frame
  crosses the bus to the owner and back, in order (the bus keeps the order of
  the messages of one sender). The session does not move.

Costs: one bus round trip per forwarded request, two bus messages per message
on a relayed WebSocket. A session whose owner is gone answers "Session ID
unknown" at once (nobody receives the forwarded request) and the client opens
a new one. Clients that start with WebSocket (no polling) never need a relay.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._util import new_id, spawn
from ..http.headers import Headers
from ..http.request import Request, Response

if TYPE_CHECKING:
    from .server import Server
    from .session import WebSocketTransport

__all__ = ["Bus", "MemoryBus", "MemoryNetwork", "RemoteWebSocket", "Router"]

logger = logging.getLogger("wsio.engineio.cluster")

Message = dict[str, Any]


class Bus(Protocol):
    """Messages between the nodes of a cluster, addressed by node id.

    ``send`` keeps the order of the messages from one node to another;
    ``request`` reports whether the addressee exists (received it).
    """

    node_id: str

    def listen(self, handler: Callable[[Message], None]) -> Awaitable[None] | None: ...

    def send(self, node: str, message: Message) -> None: ...

    async def request(self, node: str, message: Message) -> bool: ...


class MemoryNetwork:
    """Connects :class:`MemoryBus` objects in one process (tests, examples)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Callable[[Message], None]] = {}

    def bus(self, node_id: str | None = None) -> MemoryBus:
        """A bus for a new node."""
        return MemoryBus(self, node_id or new_node_id())


class MemoryBus:
    """An in-process :class:`Bus` (messages are delivered on the next loop turn)."""

    def __init__(self, network: MemoryNetwork, node_id: str) -> None:
        self.network = network
        self.node_id = node_id

    def listen(self, handler: Callable[[Message], None]) -> None:
        self.network.nodes[self.node_id] = handler

    def close(self) -> None:
        """Leave the network (the node is gone)."""
        self.network.nodes.pop(self.node_id, None)

    def send(self, node: str, message: Message) -> None:
        handler = self.network.nodes.get(node)
        if handler is not None:
            asyncio.get_running_loop().call_soon(handler, dict(message))

    async def request(self, node: str, message: Message) -> bool:
        handler = self.network.nodes.get(node)
        if handler is None:
            return False
        asyncio.get_running_loop().call_soon(handler, dict(message))
        return True


def new_node_id() -> str:
    """A short random node id (URL-safe, no dot)."""
    return os.urandom(5).hex()


def _request_to_wire(request: Request) -> Message:
    return {
        "m": request.method,
        "u": request.target,
        "p": request.path,
        "q": request.query_string,
        "h": list(request.headers.items()),
        "b": request.body,
        "v": request.http_version,
        "c": list(request.client) if request.client else None,
        "s": request.scheme,
    }


def _request_from_wire(m: Message) -> Request:
    client = m.get("c")
    return Request(
        m["m"],
        m["u"],
        m["p"],
        m["q"],
        Headers((str(k), str(v)) for k, v in m["h"]),
        http_version=m.get("v", "1.1"),
        body=m.get("b") or b"",
        client=(str(client[0]), int(client[1])) if client else None,
        scheme=m.get("s", "http"),
    )


class RemoteWebSocket:
    """On the owner: a WebSocket that is really on another node, reached over the bus."""

    writable = True
    write_buffer_size = 0

    def __init__(
        self, router: Router, conn_id: str, node: str, address: tuple[str, int] | None
    ) -> None:
        self.router = router
        self.conn_id = conn_id
        self.node = node
        self.remote_address = address
        self._on_message: Callable[[Any], None] | None = None
        self._on_closed: Callable[[Any], None] | None = None
        self._backlog: list[Any] = []
        self.closed = False

    def set_callbacks(
        self,
        on_message: Callable[[Any], None] | None,
        on_closed: Callable[[Any], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_closed = on_closed
        if on_message is not None:
            backlog, self._backlog = self._backlog, []
            for data in backlog:
                on_message(data)
        if on_closed is not None and self.closed:
            self._on_closed = None
            on_closed(self)

    def deliver(self, data: Any) -> None:
        """A message from the client arrived at the relay."""
        if self.closed:
            return
        if self._on_message is None:
            self._backlog.append(data)
        else:
            self._on_message(data)

    def gone(self) -> None:
        """The relay's WebSocket closed."""
        if self.closed:
            return
        self.closed = True
        self.router._remote_ws.pop(self.conn_id, None)
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            callback(self)

    def write_message(self, message: Any) -> bool:
        if self.closed:
            raise ConnectionError("relayed WebSocket is closed")
        self.router.bus.send(self.node, {"t": "ws-out", "id": self.conn_id, "d": message})
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    async def drain(self) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.abort()

    def abort(self) -> None:
        if not self.closed:
            self.router.bus.send(self.node, {"t": "ws-end", "id": self.conn_id})
            self.gone()


class Router:
    """Serves the requests of sessions this node does not own through their owner.

    ``request_timeout`` bounds a forwarded POST; a forwarded GET may take as
    long as a long-poll (the ping interval) plus ``request_timeout``.
    """

    def __init__(self, server: Server, bus: Bus, *, request_timeout: float = 10.0) -> None:
        self.server = server
        self.bus = bus
        self.node_id = bus.node_id
        self.request_timeout = request_timeout
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._served: dict[str, Request] = {}
        self._relays: dict[str, WebSocketTransport] = {}
        self._remote_ws: dict[str, RemoteWebSocket] = {}
        self.forwarded = 0
        """Requests this node passed on to an owner."""
        self.relayed = 0
        """WebSocket connections this node relayed to an owner."""

    async def start(self) -> None:
        """Start receiving the cluster's messages."""
        result = self.bus.listen(self._on_message)
        if result is not None:
            await result

    # -- ids --------------------------------------------------------------------------

    def new_sid(self) -> str:
        """A session id that names this node as its owner."""
        return f"{self.node_id}.{new_id()}"

    def owner(self, sid: str) -> str | None:
        """The node owning *sid* when it is another one, else None."""
        node, dot, _ = sid.partition(".")
        if not dot or not node or node == self.node_id:
            return None
        return node

    # -- the node that received the request ----------------------------------------

    async def forward_http(self, node: str, request: Request) -> Response:
        """Have the owner answer a polling request; its answer is ours."""
        self.forwarded += 1
        req_id = new_id()
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[req_id] = fut
        message = {"t": "http", "id": req_id, "from": self.node_id, **_request_to_wire(request)}

        def client_gone() -> None:
            if not fut.done():
                self.bus.send(node, {"t": "http-abort", "id": req_id})

        try:
            if not await self.bus.request(node, message):
                return self.server.error_response(request, 1, "Session ID unknown")
            request.add_disconnect_callback(client_gone)
            timeout = self.request_timeout
            if request.method == "GET":
                timeout += self.server.ping_interval + self.server.ping_timeout
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            logger.warning("node %s did not answer a forwarded %s in time", node, request.method)
            return self.server.error_response(request, 1, "Session ID unknown")
        finally:
            self._waiting.pop(req_id, None)
        return Response(
            int(reply["st"]),
            reply.get("b") or b"",
            [(str(k), str(v)) for k, v in reply.get("h") or ()],
        )

    async def relay_websocket(
        self, node: str, request: Request, accept_ws: Callable[[], Awaitable[WebSocketTransport]]
    ) -> Response | None:
        """Upgrade a session owned elsewhere: accept here, relay every frame to the owner."""
        conn_id = new_id()
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[conn_id] = fut
        message = {"t": "ws-open", "id": conn_id, "from": self.node_id, **_request_to_wire(request)}
        message["b"] = b""
        try:
            if not await self.bus.request(node, message):
                return self.server.error_response(request, 1, "Session ID unknown")
            reply = await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError:
            return self.server.error_response(request, 1, "Session ID unknown")
        finally:
            self._waiting.pop(conn_id, None)
        if reply["t"] != "ws-ready":
            return Response(
                int(reply["st"]),
                reply.get("b") or b"",
                [(str(k), str(v)) for k, v in reply.get("h") or ()],
            )
        try:
            ws = await accept_ws()
        except BaseException:
            self.bus.send(node, {"t": "ws-close", "id": conn_id})
            raise
        self._relays[conn_id] = ws
        self.relayed += 1
        bus = self.bus

        def inbound(data: Any) -> None:
            bus.send(node, {"t": "ws-in", "id": conn_id, "d": data})

        def closed(_: Any) -> None:
            if self._relays.pop(conn_id, None) is not None:
                bus.send(node, {"t": "ws-close", "id": conn_id})

        ws.set_callbacks(inbound, closed)
        return None

    # -- messages --------------------------------------------------------------------------

    def _on_message(self, m: Message) -> None:
        try:
            kind = m.get("t")
            if kind == "http":
                spawn(self._serve_http(m))
            elif kind == "http-reply" or kind in ("ws-ready", "ws-refused"):
                fut = self._waiting.get(m.get("id", ""))
                if fut is not None and not fut.done():
                    fut.set_result(m)
            elif kind == "http-abort":
                request = self._served.get(m.get("id", ""))
                if request is not None:
                    request.set_disconnected()
            elif kind == "ws-open":
                self._open_remote_ws(m)
            elif kind == "ws-in":
                remote = self._remote_ws.get(m.get("id", ""))
                if remote is not None:
                    remote.deliver(m.get("d"))
            elif kind == "ws-close":
                remote = self._remote_ws.get(m.get("id", ""))
                if remote is not None:
                    remote.gone()
            elif kind == "ws-out":
                ws = self._relays.get(m.get("id", ""))
                if ws is not None:
                    try:
                        ws.write_message(m["d"])
                    except Exception:
                        self._relays.pop(m.get("id", ""), None)
            elif kind == "ws-end":
                ws = self._relays.pop(m.get("id", ""), None)
                if ws is not None:
                    spawn(ws.close(1000))
            else:
                logger.debug("unknown cluster message %r", kind)
        except Exception:
            logger.exception("bad cluster message")

    # -- the owner -----------------------------------------------------------------------

    async def _serve_http(self, m: Message) -> None:
        req_id = m["id"]
        request = _request_from_wire(m)
        self._served[req_id] = request
        try:
            self.server.begin_request(request)
            response = await self.server.handle_request(request)
        except Exception:
            logger.exception("serving a forwarded request failed")
            response = Response.text(500, "internal error")
        finally:
            self._served.pop(req_id, None)
        self.bus.send(
            m["from"],
            {
                "t": "http-reply",
                "id": req_id,
                "st": response.status,
                "h": response.headers,
                "b": response.body,
            },
        )

    def _open_remote_ws(self, m: Message) -> None:
        server = self.server
        request = _request_from_wire(m)
        sid = request.query.get("sid") or ""
        session = server.sessions.get(sid)
        node = m["from"]
        if session is None or session.closed:
            response = server.error_response(request, 1, "Session ID unknown")
        elif session.transport != "polling" or session.upgrading or not server.allow_upgrades:
            response = server.error_response(request, 3, "upgrade not possible for this session")
        else:
            remote = RemoteWebSocket(self, m["id"], node, request.client)
            self._remote_ws[m["id"]] = remote
            session.start_upgrade(remote)
            self.bus.send(node, {"t": "ws-ready", "id": m["id"]})
            return
        self.bus.send(
            node,
            {
                "t": "ws-refused",
                "id": m["id"],
                "st": response.status,
                "h": response.headers,
                "b": response.body,
            },
        )
