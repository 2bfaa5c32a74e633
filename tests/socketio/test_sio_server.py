"""The Socket.IO server, checked in-process with raw Engine.IO clients.

The clients here are deliberately dumb: a ``websockets`` connection (or
aiohttp long-polling requests) speaking Engine.IO v4 by hand, so every test
can craft exact packets (malformed ones included) and assert on the bytes
that came back over the wire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import wsio
from support.sio import until

TIMEOUT = 3.0


# -- raw clients -------------------------------------------------------------------------------


class RawClient:
    """An Engine.IO v4 WebSocket client that speaks Socket.IO packets by hand.

    ``recv()`` returns the next Socket.IO message (``str`` without the
    Engine.IO ``4``, or ``bytes`` for a binary attachment); pings are
    answered unless ``auto_pong`` is off; Engine.IO packets other than
    messages are kept in ``eio``.
    """

    def __init__(self, ws: ClientConnection, auto_pong: bool = True) -> None:
        self.ws = ws
        self.auto_pong = auto_pong
        self.open: dict[str, Any] = {}
        self.eio: list[str] = []

    @classmethod
    async def connect(
        cls, port: int, *, auto_pong: bool = True, query: str = "", **kw: Any
    ) -> RawClient:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket{query}"
        ws = await ws_connect(url, compression=None, open_timeout=TIMEOUT, **kw)
        client = cls(ws, auto_pong)
        first = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(first, str) and first.startswith("0"), first
        client.open = json.loads(first[1:])
        return client

    @property
    def eio_sid(self) -> str:
        return str(self.open["sid"])

    async def send(self, *messages: str | bytes) -> None:
        """Send Socket.IO messages (text gets the Engine.IO ``4`` prefix)."""
        for m in messages:
            await self.ws.send("4" + m if isinstance(m, str) else m)

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        deadline = time.monotonic() + timeout
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), max(deadline - time.monotonic(), 0.001))
            if isinstance(frame, bytes):
                return frame
            if frame.startswith("4"):
                return frame[1:]
            self.eio.append(frame)
            if frame == "2" and self.auto_pong:
                await self.ws.send("3")

    async def recv_json(self, prefix: str, timeout: float = TIMEOUT) -> Any:
        """The next message, which must start with *prefix*; its JSON rest."""
        m = await self.recv(timeout)
        assert isinstance(m, str) and m.startswith(prefix), (m, prefix)
        rest = m[len(prefix) :]
        return json.loads(rest) if rest else None

    async def nothing(self, wait: float = 0.2) -> None:
        """Assert that no Socket.IO message arrives within *wait* seconds."""
        try:
            m = await self.recv(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {m!r}")

    async def join(self, nsp: str = "/", auth: Any = None) -> str:
        """CONNECT to *nsp* and return the socket id from the reply."""
        prefix = "" if nsp == "/" else nsp + ","
        await self.send("0" + prefix + (json.dumps(auth) if auth is not None else ""))
        reply = await self.recv_json("0" + prefix)
        return str(reply["sid"])

    async def closed(self, timeout: float = TIMEOUT) -> list[str | bytes]:
        """Read until the server closes the connection; return what came before."""
        got: list[str | bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                got.append(await self.recv(max(deadline - time.monotonic(), 0.001)))
        except ConnectionClosed:
            return got

    async def close(self) -> None:
        await self.ws.close()


class Recorder:
    """Collects server-side observations; ``await rec.wait(n)`` until there are *n*."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(
        self, pred: Callable[[list[Any]], bool], timeout: float = TIMEOUT
    ) -> list[Any]:
        async with asyncio.timeout(timeout):
            while not pred(self.items):
                self._changed.clear()
                await self._changed.wait()
        return self.items

    async def wait(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        return await self.wait_for(lambda items: len(items) >= count, timeout)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """``port = await serve(sio, **start_kwargs)``: the server is shut down afterwards."""
    servers: list[wsio.Server] = []

    async def start(sio: wsio.Server, **kw: Any) -> int:
        http = await sio.start("127.0.0.1", 0, **kw)
        servers.append(sio)
        return http.port

    try:
        yield start
    finally:
        for sio in servers:
            await asyncio.wait_for(sio.shutdown(), 5)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Awaitable[RawClient]]]:
    """``client = await clients(port, **kw)``: closed afterwards."""
    made: list[RawClient] = []

    async def make(port: int, **kw: Any) -> RawClient:
        client = await RawClient.connect(port, **kw)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.ws.close()


def ack_of(message: str | bytes, prefix: str = "3") -> tuple[int, Any]:
    """Split an ACK message ``3<id>[...]`` into (id, args)."""
    assert isinstance(message, str), message
    m = re.fullmatch(re.escape(prefix) + r"(\d+)(.*)", message, re.S)
    assert m, message
    return int(m.group(1)), json.loads(m.group(2))


# -- namespaces, handshake, connect handler ---------------------------------------------------


async def test_connect_reply_and_handshake(serve: Any, clients: Any) -> None:
    sio = wsio.Server(ping_interval=5)
    seen: list[Any] = []

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        seen.append((socket, auth))

    port = await serve(sio)
    c = await clients(port, query="&foo=bar", additional_headers={"X-Test": "yes"})
    sid = await c.join()
    assert sid != c.eio_sid
    socket, auth = seen[0]
    assert auth is None
    assert socket.id == sid
    assert socket.nsp is sio.of("/")
    assert socket.rooms == {sid}
    assert socket.data == {}
    assert socket.connected
    hs = socket.handshake
    assert hs.headers.get("X-Test") == "yes"
    assert hs.query["foo"] == "bar"
    assert hs.query["EIO"] == "4"
    assert hs.auth is None
    assert hs.address == "127.0.0.1"
    assert hs.secure is False
    assert hs.url.startswith("/socket.io/?EIO=4")
    assert "foo=bar" in hs.url
    assert isinstance(hs.time, str) and hs.time
    assert abs(hs.issued / 1000 - time.time()) < 10
    assert sio.sockets[sid] is socket

    # A second socket, with auth this time.
    c2 = await clients(port)
    sid2 = await c2.join(auth={"token": "t"})
    assert seen[1][1] == {"token": "t"}
    assert seen[1][0].handshake.auth == {"token": "t"}
    assert sid2 not in (sid, c2.eio_sid)


async def test_unknown_namespace(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    port = await serve(sio)
    c = await clients(port)
    await c.send("0/nope,")
    assert await c.recv_json("4/nope,") == {"message": "Invalid namespace"}
    # The connection stays usable.
    await c.join("/")
    # Without the trailing comma too.
    await c.send("0/nope2")
    assert await c.recv_json("4/nope2,") == {"message": "Invalid namespace"}


async def test_handlers_on_main_and_named_namespaces(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    admin = sio.of("/admin")

    @sio.event
    def hello(socket: wsio.Socket, name: str) -> str:
        return f"hello {name}"

    @sio.on("sum")
    async def add(socket: wsio.Socket, a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    @admin.on("hello")
    def admin_hello(socket: wsio.Socket, name: str) -> str:
        return f"admin {name}"

    @admin.event
    async def whoami(socket: wsio.Socket) -> str:
        return socket.nsp.name

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    await c.join("/admin")
    await c.send(
        '21["hello","bob"]', '22["sum",2,3]', '2/admin,3["hello","eve"]', '2/admin,4["whoami"]'
    )
    got = {await c.recv() for _ in range(4)}
    assert got == {'31["hello bob"]', "32[5]", '3/admin,3["admin eve"]', '3/admin,4["/admin"]'}


async def test_dynamic_namespaces(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    created: list[str] = []

    @sio.on("new_namespace")
    def new_namespace(nsp: wsio.Namespace) -> None:
        created.append(nsp.name)

    rooms = sio.of(re.compile(r"/room-\d+"))
    teams = sio.of(lambda name: name.startswith("/team-"))
    connected: list[str] = []

    @rooms.on("connect")
    def on_room(socket: wsio.Socket, auth: Any) -> None:
        connected.append(socket.nsp.name)

    @rooms.on("where")
    def where(socket: wsio.Socket) -> str:
        return socket.nsp.name

    @teams.on("where")
    async def team_where(socket: wsio.Socket) -> str:
        return "team " + socket.nsp.name

    port = await serve(sio)
    c = await clients(port)
    await c.join("/room-12")
    await c.join("/team-a")
    await c.send("0/room-x,")
    assert await c.recv_json("4/room-x,") == {"message": "Invalid namespace"}
    await c.send('2/room-12,1["where"]')
    assert ack_of(await c.recv(), "3/room-12,") == (1, ["/room-12"])
    await c.send('2/team-a,2["where"]')
    assert ack_of(await c.recv(), "3/team-a,") == (2, ["team /team-a"])
    assert created == ["/room-12", "/team-a"]
    assert connected == ["/room-12"]
    # A second client to the same dynamic namespace reuses the child.
    c2 = await clients(port)
    await c2.join("/room-12")
    assert created == ["/room-12", "/team-a"]
    # Broadcasting on the parent reaches every child.
    await rooms.emit("all", 1)
    assert await c.recv_json("2/room-12,") == ["all", 1]
    assert await c2.recv_json("2/room-12,") == ["all", 1]
    await c.nothing(0.1)


def test_new_namespace_hook_sees_static_namespaces_too() -> None:
    """As Node's ``new_namespace``: namespaces made by ``of()`` after the hook, not "/"."""
    sio = wsio.Server()
    sio.of("/before")
    created: list[str] = []
    later: list[str] = []
    sio.on("new_namespace", lambda nsp: created.append(nsp.name))

    @sio.on("new_namespace")
    async def hook(nsp: wsio.Namespace) -> None:
        later.append(nsp.name)

    sio.of("/admin")
    sio.of("/admin")  # exists: no second call
    sio.of("/")
    sio.of(re.compile(r"^/x-\d+$"))  # a parent is not a namespace clients join
    assert created == ["/admin"]
    assert later == []  # no event loop yet: the coroutine waits for the server to start

    async def main() -> None:
        http = await sio.start("127.0.0.1", 0)
        assert http.port
        try:
            await asyncio.sleep(0.05)
            assert later == ["/admin"]
            sio.of("/chat")
            await asyncio.sleep(0.05)
            assert created == ["/admin", "/chat"]
            assert later == ["/admin", "/chat"]
        finally:
            await sio.shutdown()

    asyncio.run(main())


async def test_handlers_of_one_socket(serve: Any, clients: Any) -> None:
    """socket.on, as Node's: closures per socket, before the namespace's handlers."""
    sio = wsio.Server()
    order: list[str] = []
    seen: list[tuple[Any, ...]] = []
    sio.on_any(lambda socket, event, *args: seen.append(("namespace", event)))

    @sio.on("connect")
    def connect(socket: wsio.Socket, auth: Any) -> None:
        if not auth:
            return
        secret = auth["secret"]
        socket.on("whisper", lambda text: f"{secret}:{text}")

        @socket.on("once")
        async def once() -> str:
            socket.off("once")
            await asyncio.sleep(0)
            return "first"

        socket.on("*", lambda event, *args: f"{secret} has no {event}")
        socket.on_any(lambda event, *args: seen.append((secret, event, *args)))
        socket.on("quiet", lambda: socket.off_any())
        socket.on("disconnecting", lambda reason: order.append(f"own disconnecting {reason}"))
        socket.on("disconnect", lambda reason: order.append(f"own disconnect {reason}"))

    @sio.on("whisper")
    def whisper(socket: wsio.Socket, text: str) -> str:
        return "namespace:" + text

    @sio.on("disconnect")
    def disconnect(socket: wsio.Socket, reason: str) -> None:
        order.append(f"namespace disconnect {reason}")

    port = await serve(sio)
    a = await clients(port)
    await a.join(auth={"secret": "s1"})
    b = await clients(port)
    await b.join()
    await a.send('21["whisper","hi"]')
    assert await a.recv() == '31["s1:hi"]'
    await b.send('22["whisper","hi"]')
    assert await b.recv() == '32["namespace:hi"]'
    await a.send('23["once"]')
    assert await a.recv() == '33["first"]'
    await a.send('24["once"]')  # removed: this socket's catch-all answers
    assert await a.recv() == '34["s1 has no once"]'
    await b.send('25["once"]')  # no handler at all for b
    assert await b.recv() == "35[]"
    # a's own listener sees a's events, after the namespace's; b has none of its own.
    assert seen == [
        ("namespace", "whisper"),
        ("s1", "whisper", "hi"),
        ("namespace", "whisper"),
        ("namespace", "once"),
        ("s1", "once"),
        ("namespace", "once"),
        ("s1", "once"),
        ("namespace", "once"),
    ]
    await a.send('26["quiet"]')
    assert await a.recv() == "36[]"
    await a.send('27["whisper","again"]')
    assert await a.recv() == '37["s1:again"]'
    # "quiet" was seen by both, then a's listener was off for "whisper".
    assert seen[-3:] == [("namespace", "quiet"), ("s1", "quiet"), ("namespace", "whisper")]
    await a.send("1")  # DISCONNECT from the namespace
    await until(lambda: len(order) == 3)
    assert order == [
        "own disconnecting client namespace disconnect",
        "namespace disconnect client namespace disconnect",
        "own disconnect client namespace disconnect",
    ]


async def test_refused_connection(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    events: list[Any] = []

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        socket.emit("held", 1)  # dropped: the connection is refused
        await socket.join("r")
        if not auth or auth.get("token") != "ok":
            raise wsio.ConnectionRefused("bad token", {"code": 42, "hint": ["a", "b"]})

    @sio.on("disconnect")
    def disconnect(socket: wsio.Socket, reason: str) -> None:
        events.append(("disconnect", socket.id, reason))

    @sio.on("disconnecting")
    def disconnecting(socket: wsio.Socket, reason: str) -> None:
        events.append(("disconnecting", socket.id, reason))

    port = await serve(sio)
    c = await clients(port)
    await c.send('0{"token":"no"}')
    assert await c.recv_json("4") == {
        "message": "bad token",
        "data": {"code": 42, "hint": ["a", "b"]},
    }
    await c.nothing(0.1)
    assert sio.sockets == {}
    assert sio.of("/").adapter.rooms == {}
    # Refused without data: no "data" key.
    sio2 = wsio.Server()

    @sio2.on("connect")
    def refuse(socket: wsio.Socket, auth: Any) -> None:
        raise wsio.ConnectionRefused("nope")

    port2 = await serve(sio2)
    c2 = await clients(port2)
    await c2.send("0")
    assert await c2.recv_json("4") == {"message": "nope"}
    # The same connection may try again and succeed.
    await c.join(auth={"token": "ok"})
    assert await c.recv_json("2") == ["held", 1]
    await c.close()
    await asyncio.sleep(0.2)
    # Only the accepted socket fired disconnecting/disconnect.
    assert [e[0] for e in events] == ["disconnecting", "disconnect"]
    assert events[0][2] == "transport close"


async def test_middlewares_in_order(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    admin = sio.of("/admin")
    order: list[str] = []

    @sio.use
    def first(socket: wsio.Socket) -> None:
        order.append("main1")
        socket.data["user"] = "u1"

    @sio.use
    async def second(socket: wsio.Socket) -> None:
        await asyncio.sleep(0.01)
        order.append("main2")
        if socket.handshake.auth and socket.handshake.auth.get("deny"):
            raise wsio.ConnectionRefused("denied", {"by": "middleware"})

    @admin.use
    async def admin_mw(socket: wsio.Socket) -> None:
        order.append("admin")

    @sio.on("connect")
    def connect(socket: wsio.Socket, auth: Any) -> None:
        order.append("connect " + socket.data["user"])

    @sio.on("disconnect")
    def disconnect(socket: wsio.Socket, reason: str) -> None:
        order.append("disconnect")

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    assert order == ["main1", "main2", "connect u1"]
    await c.join("/admin")
    assert order[3:] == ["admin"]
    order.clear()
    c2 = await clients(port)
    await c2.send('0{"deny":true}')
    assert await c2.recv_json("4") == {"message": "denied", "data": {"by": "middleware"}}
    await asyncio.sleep(0.05)
    assert order == ["main1", "main2"]


async def test_connect_timeout(serve: Any, clients: Any) -> None:
    sio = wsio.Server(connect_timeout=0.3)
    port = await serve(sio)
    idle = await clients(port)
    active = await clients(port)
    await active.join()
    start = time.monotonic()
    assert await idle.closed(2) == []
    assert 0.2 < time.monotonic() - start < 1.5
    # The client that joined a namespace is still there.
    await active.send('21["x"]')
    assert ack_of(await active.recv()) == (1, [])


# -- connect handler: holding emits and events --------------------------------------------------


async def test_emits_in_connect_handler_follow_the_reply(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    gate = asyncio.Event()
    handled: list[Any] = []

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        socket.emit("first", 1)
        await socket.join("lobby")
        sio.to("lobby").emit("room", socket.id)  # held too, in order with the emits
        await socket.broadcast.emit("others", socket.id)  # awaited: must not hang
        await gate.wait()
        socket.emit("last", 2)

    @sio.on("ev")
    def ev(socket: wsio.Socket, n: int) -> int:
        handled.append(n)
        return n * 10

    port = await serve(sio)
    other = await clients(port)
    gate.set()
    await other.join()
    assert await other.recv_json("2") == ["first", 1]
    assert (await other.recv_json("2"))[0] == "room"
    assert await other.recv_json("2") == ["last", 2]
    gate.clear()

    c = await clients(port)
    await c.send("0")
    # Events sent while the connect handler runs wait for it.
    await c.send('21["ev",1]', '22["ev",2]')
    await c.nothing(0.2)
    assert handled == []
    gate.set()
    reply = await c.recv_json("0")
    sid = reply["sid"]
    assert await c.recv_json("2") == ["first", 1]
    assert await c.recv_json("2") == ["room", sid]
    assert await c.recv_json("2") == ["last", 2]
    assert ack_of(await c.recv()) == (1, [10])
    assert ack_of(await c.recv()) == (2, [20])
    assert await other.recv_json("2") == ["room", sid]
    assert await other.recv_json("2") == ["others", sid]


# -- acks, calls, ordering ----------------------------------------------------------------------


async def test_ack_arguments(serve: Any, clients: Any) -> None:
    sio = wsio.Server()

    @sio.on("none")
    def none(socket: wsio.Socket) -> None:
        return None

    @sio.on("one")
    async def one(socket: wsio.Socket, x: Any) -> Any:
        return x

    @sio.on("many")
    def many(socket: wsio.Socket, *args: Any) -> tuple[Any, ...]:
        return (*args, "end")

    @sio.on("bin")
    def binary(socket: wsio.Socket, data: Any) -> Any:
        return {"nested": [data["raw"], {"again": data["raw"] + b"!"}]}

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    await c.send('20["none"]')
    assert await c.recv() == "30[]"
    await c.send('21["one",{"a":[1,null]}]')
    assert await c.recv() == '31[{"a":[1,null]}]'
    await c.send('22["many",1,"b"]')
    assert await c.recv() == '32[1,"b","end"]'
    await c.send('21["one",[]]')
    assert await c.recv() == "31[[]]"
    # No handler at all: the ack request is still answered (no arguments).
    await c.send('29["nobody-listens",1]')
    assert await c.recv() == "39[]"
    # Binary in, binary out (nested), both with acks.
    await c.send('51-7["bin",{"raw":{"_placeholder":true,"num":0}}]', b"\x00\x01")
    head = await c.recv()
    assert (
        head
        == '62-7[{"nested":[{"_placeholder":true,"num":0},{"again":{"_placeholder":true,"num":1}}]}]'
    )
    assert await c.recv() == b"\x00\x01"
    assert await c.recv() == b"\x00\x01!"
    # An event without an ack id gets no answer.
    await c.send('2["one",1]')
    await c.nothing(0.1)


async def test_call_from_a_handler_on_its_own_socket(serve: Any, clients: Any) -> None:
    """The handler awaits the client's ack while the socket's queue holds it: no deadlock."""
    sio = wsio.Server()
    order: list[Any] = []

    @sio.on("ask")
    async def ask(socket: wsio.Socket, question: str) -> Any:
        answer = await socket.call("question", question, timeout=2)
        order.append(("answered", answer))
        return answer

    @sio.on("next")
    def next_(socket: wsio.Socket) -> str:
        order.append("next")
        return "n"

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    await c.send('21["ask","why?"]', '22["next"]')
    m = await c.recv()
    assert isinstance(m, str)
    found = re.fullmatch(r'2(\d+)\["question","why\?"\]', m)
    assert found, m
    # "next" waits behind "ask" (per-socket order) ...
    await c.nothing(0.1)
    assert order == []
    # ... and the ACK is not stuck behind either of them.
    await c.send("3" + found.group(1) + '["because"]')
    assert await c.recv() == '31["because"]'
    assert await c.recv() == '32["n"]'
    assert order == [("answered", "because"), "next"]


@pytest.mark.parametrize("ordered", [True, False])
async def test_unordered_handler_runs_while_a_call_waits(
    serve: Any, clients: Any, ordered: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The client needs a server handler before it can answer a call: ``ordered=False``."""
    sio = wsio.Server()
    running: list[int] = []

    @sio.on("ask")
    async def ask(socket: wsio.Socket) -> Any:
        return await socket.call("question", timeout=1)

    @sio.on("lookup", ordered=ordered)
    async def lookup(socket: wsio.Socket, key: str) -> str:
        running.append(socket._unordered)
        await asyncio.sleep(0.01)
        return key.upper()

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    await c.send('21["ask"]')
    m = await c.recv()
    found = re.fullmatch(r'2(\d+)\["question"\]', m)
    assert found, m
    # To answer, the client first needs "lookup", sent while "ask" still waits.
    await c.send('22["lookup","k"]')
    if ordered:
        # In order, "lookup" waits for "ask", which waits for the answer: the call times out.
        assert await c.recv() == "31[]"
        assert await c.recv() == '32["K"]'
        assert running == [0]
        # The timeout says what may have happened, and what to do about it.
        hints = [r.getMessage() for r in caplog.records if "ordered=False" in r.getMessage()]
        assert len(hints) == 1 and "call('question')" in hints[0], hints
        return
    assert await c.recv() == '32["K"]'
    assert running == [1]
    await c.send("3" + found.group(1) + '["K!"]')
    assert await c.recv() == '31["K!"]'
    assert sio.sockets and all(s._unordered == 0 for s in sio.sockets.values())
    assert not [r for r in caplog.records if "ordered=False" in r.getMessage()]


async def test_handlers_run_in_a_task_from_their_first_line(serve: Any, clients: Any) -> None:
    """asyncio.timeout() and current_task() work in a handler before it ever waits."""
    sio = wsio.Server()

    @sio.on("q")
    async def q(socket: wsio.Socket, n: int) -> Any:
        async with asyncio.timeout(1):  # needs a task
            inside = asyncio.current_task() is not None
            if n:
                await asyncio.sleep(0)
        return [inside, n]

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    await c.send('21["q",0]', '22["q",1]', '23["q",0]')
    assert [await c.recv() for _ in range(3)] == ["31[[true,0]]", "32[[true,1]]", "33[[true,0]]"]


async def test_calls(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    results: list[Any] = []
    port = await serve(sio)
    c = await clients(port)
    sid = await c.join()
    socket = sio.sockets[sid]

    async def answer(expect: str, reply: str) -> None:
        m = await c.recv()
        assert isinstance(m, str)
        found = re.fullmatch(r"2(\d+)(.*)", m)
        assert found, m
        assert json.loads(found.group(2)) == json.loads(expect)
        await c.send("3" + found.group(1) + reply)

    # zero, one, several answer arguments
    for reply, expected in (
        ("[]", None),
        ('["x"]', "x"),
        ('[1,{"k":2},null]', (1, {"k": 2}, None)),
    ):
        task = asyncio.ensure_future(socket.call("q", 1, [2]))
        await answer('["q",1,[2]]', reply)
        assert await asyncio.wait_for(task, TIMEOUT) == expected
    task = asyncio.ensure_future(socket.timeout(2).call("q"))
    await answer('["q"]', '["t"]')
    assert await task == "t"
    # binary answer
    task = asyncio.ensure_future(socket.call("q", b"\xff"))
    m = await c.recv()
    assert isinstance(m, str)
    found = re.fullmatch(r"51-(\d+)(.*)", m)
    assert found, m
    assert json.loads(found.group(2)) == ["q", {"_placeholder": True, "num": 0}]
    assert await c.recv() == b"\xff"
    await c.send("61-" + found.group(1) + '[{"_placeholder":true,"num":0}]', b"ok")
    assert await asyncio.wait_for(task, TIMEOUT) == b"ok"
    # emit with a callback
    socket.emit("cb", 5, callback=lambda *args: results.append(args))
    await answer('["cb",5]', "[6,7]")
    await asyncio.sleep(0.05)
    assert results == [(6, 7)]
    # timeout -> AckTimeout; the late answer is ignored
    start = time.monotonic()
    with pytest.raises(wsio.AckTimeout):
        await socket.call("slow", timeout=0.2)
    assert 0.15 < time.monotonic() - start < 1
    m = await c.recv()
    assert isinstance(m, str)
    found = re.fullmatch(r"2(\d+)\[\"slow\"\]", m)
    assert found
    await c.send("3" + found.group(1) + "[]")
    # the socket goes away -> Disconnected
    task = asyncio.ensure_future(socket.call("never"))
    await c.recv()
    await c.send("1")
    with pytest.raises(wsio.Disconnected):
        await asyncio.wait_for(task, TIMEOUT)
    with pytest.raises(wsio.Disconnected):
        await socket.call("after")
    with pytest.raises(ValueError):
        socket.emit("disconnect")


async def test_event_order_per_socket(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    seen: list[int] = []

    @sio.on("n")
    async def n(socket: wsio.Socket, i: int) -> None:
        if i % 7 == 0:
            await asyncio.sleep(0.01)
        seen.append(i)

    @sio.on("sync")
    def sync(socket: wsio.Socket, i: int) -> None:
        seen.append(i)

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    for i in range(60):
        await c.send(json.dumps(["n" if i % 3 else "sync", i]).join(["2", ""]))
    await c.send('21["n",-1]')
    assert ack_of(await c.recv()) == (1, [])
    assert seen == [*range(60), -1]


# -- rooms and broadcasting -----------------------------------------------------------------------


async def test_rooms_and_broadcasts(serve: Any, clients: Any) -> None:
    sio = wsio.Server()

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        await socket.join(auth["rooms"])

    @sio.on("to")
    async def to(socket: wsio.Socket, rooms: list[str], text: str) -> None:
        await socket.to(rooms).emit("msg", text)

    @sio.on("bc")
    def bc(socket: wsio.Socket, text: str) -> None:
        socket.broadcast.emit("msg", text)

    @sio.on("leave")
    async def leave(socket: wsio.Socket, room: str) -> list[str]:
        await socket.leave(room)
        return sorted(socket.rooms - {socket.id})

    port = await serve(sio)
    a, b, c, d = [await clients(port) for _ in range(4)]
    ids = {}
    for name, client, rooms in (
        ("a", a, ["r1", "r2"]),
        ("b", b, ["r1"]),
        ("c", c, ["r2", "r3"]),
        ("d", d, []),
    ):
        ids[name] = await client.join(auth={"rooms": rooms})
    everyone = {"a": a, "b": b, "c": c, "d": d}

    marks = 0

    async def received(expected: set[str], message: list[Any]) -> None:
        # A marker sent to everyone afterwards tells who got the message before it.
        nonlocal marks
        marks += 1
        await sio.emit("mark", marks)
        for name, client in everyone.items():
            got = []
            while (m := await client.recv_json("2")) != ["mark", marks]:
                got.append(m)
            assert got == ([message] if name in expected else []), name

    # socket.to(room): the room minus the sender
    await a.send('21["to",["r1"],"x1"]')
    assert ack_of(await a.recv()) == (1, [])
    await received({"b"}, ["msg", "x1"])
    await a.send('22["to",["r1","r3"],"x2"]')
    assert ack_of(await a.recv()) == (2, [])
    await received({"b", "c"}, ["msg", "x2"])
    await a.send('23["bc","x3"]')
    assert ack_of(await a.recv()) == (3, [])
    await received({"b", "c", "d"}, ["msg", "x3"])
    # server-wide, chained selections (several rooms, except)
    await sio.emit("all", 0)
    await received({"a", "b", "c", "d"}, ["all", 0])
    await sio.to("r1").to("r3").emit("m", 1)
    await received({"a", "b", "c"}, ["m", 1])
    await sio.in_(["r2"]).except_("r3").emit("m", 2)
    await received({"a"}, ["m", 2])
    await sio.except_(["r1", "r3"]).emit("m", 3)
    await received({"d"}, ["m", 3])
    await sio.to(ids["d"]).emit("m", 4)
    await received({"d"}, ["m", 4])
    await sio.to("r2").except_(ids["a"]).emit("m", 5)
    await received({"c"}, ["m", 5])
    await sio.to("nobody").emit("m", 6)
    await received(set(), [])
    await sio.compress(False).to("r1").emit("m", 7)
    await received({"a", "b"}, ["m", 7])
    await sio.local.to("r3").emit("m", 8)
    await received({"c"}, ["m", 8])
    await sio.volatile.to("r3").emit("m", 9)
    await received({"c"}, ["m", 9])
    await sio.of("/").to("r3").emit("m", 10, b"\x01")
    assert await c.recv_json("51-") == ["m", 10, {"_placeholder": True, "num": 0}]
    assert await c.recv() == b"\x01"
    # leave
    await a.send('24["leave","r1"]')
    assert ack_of(await a.recv()) == (4, [["r2"]])
    await sio.to("r1").emit("m", 11)
    await received({"b"}, ["m", 11])
    # sockets_join / sockets_leave / fetch_sockets
    await sio.to("r3").sockets_join(["r9", "r1"])
    assert sio.sockets[ids["c"]].rooms == {ids["c"], "r1", "r2", "r3", "r9"}
    found = await sio.in_("r1").fetch_sockets()
    assert {s.id for s in found} == {ids["b"], ids["c"]}
    await sio.sockets_leave("r2")
    assert "r2" not in sio.of("/").adapter.rooms
    assert {s.id for s in await sio.fetch_sockets()} == set(ids.values())
    # reserved names cannot be broadcast
    with pytest.raises(ValueError):
        sio.emit("connect")


async def test_socket_volatile_and_server_volatile_drop(serve: Any, clients: Any) -> None:
    """A volatile packet is dropped for a client that is not ready (polling, no pending GET)."""
    sio = wsio.Server()
    port = await serve(sio)
    ws = await clients(port)
    sid = await ws.join()
    sio.sockets[sid].volatile.emit("v", 1)
    assert await ws.recv_json("2") == ["v", 1]
    async with aiohttp.ClientSession() as http:
        poll = PollingClient(http, port)
        await poll.handshake()
        await poll.post("40")
        assert (await poll.get())[0].startswith("40")
        await sio.volatile.emit("v", 2)  # no GET pending: dropped for the polling client
        await sio.emit("v", 3)
        assert await ws.recv_json("2") == ["v", 2]
        assert await ws.recv_json("2") == ["v", 3]
        assert await poll.get() == ['42["v",3]']


class PollingClient:
    """Engine.IO long-polling by hand."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
        self.sid = ""

    async def handshake(self) -> dict[str, Any]:
        async with self.http.get(self.base) as r:
            assert r.status == 200
            text = await r.text()
        assert text.startswith("0")
        info: dict[str, Any] = json.loads(text[1:])
        self.sid = info["sid"]
        return info

    async def get(self, timeout: float = TIMEOUT) -> list[str]:
        async with self.http.get(
            self.base + "&sid=" + self.sid, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            assert r.status == 200, await r.text()
            return (await r.text()).split("\x1e")

    async def post(self, *packets: str) -> int:
        async with self.http.post(
            self.base + "&sid=" + self.sid,
            data="\x1e".join(packets).encode(),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        ) as r:
            return r.status


async def test_broadcast_with_acks(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    port = await serve(sio)
    a, b, c = [await clients(port) for _ in range(3)]
    for client in (a, b, c):
        sid = await client.join()
        await sio.sockets[sid].join("g")
    await sio.sockets[await (await clients(port)).join()].join("other")

    async def answer(client: RawClient, reply: str | None) -> None:
        m = await client.recv()
        assert isinstance(m, str)
        found = re.fullmatch(r'2(\d+)\["poll",1\]', m)
        assert found, m
        if reply is not None:
            await client.send("3" + found.group(1) + reply)

    task = asyncio.ensure_future(sio.to("g").timeout(2).call("poll", 1))
    await asyncio.gather(answer(a, '["a"]'), answer(b, "[]"), answer(c, "[1,2]"))
    assert sorted(map(repr, await task)) == sorted(map(repr, ["a", None, (1, 2)]))
    # partial answers on timeout
    start = time.monotonic()
    task = asyncio.ensure_future(sio.to("g").timeout(0.3).call("poll", 1))
    await asyncio.gather(answer(a, '["late?"]'), answer(b, None), answer(c, '["c"]'))
    with pytest.raises(wsio.AckTimeout) as info:
        await task
    assert 0.25 < time.monotonic() - start < 1.5
    assert sorted(info.value.responses) == ["c", "late?"]
    # nobody selected: an empty list at once
    assert await sio.to("empty").timeout(1).call("poll", 1) == []
    # a socket leaving counts as no answer, the others still answer
    task = asyncio.ensure_future(sio.to("g").timeout(0.5).call("poll", 1))
    await answer(a, '["a"]')
    await answer(b, None)
    await b.close()
    await answer(c, '["c"]')
    with pytest.raises(wsio.AckTimeout) as info:
        await task
    assert sorted(info.value.responses) == ["a", "c"]
    with pytest.raises(ValueError):
        await sio.to("g").call("poll")  # a broadcast call needs a timeout


# -- disconnecting ------------------------------------------------------------------------------------


def record_disconnects(sio: wsio.Server | wsio.Namespace, rec: Recorder) -> None:
    """Record (event, socket id, reason, rooms seen) for disconnecting and disconnect."""

    @sio.on("disconnecting")
    def disconnecting(socket: wsio.Socket, reason: str) -> None:
        rec.add(("disconnecting", socket.id, reason, sorted(socket.rooms)))

    @sio.on("disconnect")
    async def disconnect(socket: wsio.Socket, reason: str) -> None:
        await asyncio.sleep(0)
        rec.add(("disconnect", socket.id, reason, sorted(socket.rooms)))


async def test_disconnect_reasons(serve: Any, clients: Any) -> None:
    sio = wsio.Server(ping_interval=0.3, ping_timeout=0.3, max_http_buffer_size=65_536)
    rec = Recorder()
    record_disconnects(sio, rec)
    admin = sio.of("/admin")
    admin_rec = Recorder()
    record_disconnects(admin, admin_rec)

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        await socket.join("room")

    @sio.on("kick")
    def kick(socket: wsio.Socket, close: bool) -> None:
        socket.disconnect(close=close)

    port = await serve(sio)

    async def expect(client_sid: str, reason: str, recorder: Recorder = rec) -> None:
        items = await recorder.wait_for(
            lambda items: any(i[0] == "disconnect" and i[1] == client_sid for i in items)
        )
        mine = [i for i in items if i[1] == client_sid]
        assert mine == [
            (
                "disconnecting",
                client_sid,
                reason,
                sorted({client_sid, "room"} if recorder is rec else {client_sid}),
            ),
            ("disconnect", client_sid, reason, []),
        ]

    # client namespace disconnect: the connection stays, other namespaces too
    c = await clients(port)
    sid = await c.join()
    admin_sid = await c.join("/admin")
    await c.send("1")
    await expect(sid, "client namespace disconnect")
    await c.send('2/admin,5["nothing"]')
    assert ack_of(await c.recv(), "3/admin,") == (5, [])
    assert sid not in sio.sockets
    # ... and it may come back to the namespace
    sid_again = await c.join()
    assert sid_again != sid
    # server namespace disconnect (close=False): DISCONNECT packet, connection stays
    await c.send('2["kick",false]')
    assert await c.recv() == "1"
    await expect(sid_again, "server namespace disconnect")
    await c.send('2/admin,6["nothing"]')
    assert ack_of(await c.recv(), "3/admin,") == (6, [])
    assert admin_rec.items == []
    # server namespace disconnect with close=True: every namespace, then the connection
    sid3 = await c.join()
    await c.send('2["kick",true]')
    got = await c.closed()
    assert sorted(m for m in got if isinstance(m, str)) == ["1", "1/admin,"]
    await expect(sid3, "server namespace disconnect")
    await expect(admin_sid, "server namespace disconnect", admin_rec)

    # transport close: the client closes its WebSocket
    c = await clients(port)
    sid = await c.join()
    await c.ws.close()
    await expect(sid, "transport close")
    # transport close: the client sends an Engine.IO close packet
    c = await clients(port)
    sid = await c.join()
    await c.ws.send("1")
    await expect(sid, "transport close")
    # ping timeout
    c = await clients(port, auto_pong=False)
    sid = await c.join()
    start = time.monotonic()
    await expect(sid, "ping timeout")
    assert 0.5 < time.monotonic() - start < 2
    await c.closed()
    assert "2" in c.eio
    # parse error
    c = await clients(port)
    sid = await c.join()
    await c.send("2[oops")
    await c.closed()
    await expect(sid, "parse error")
    # transport error: two concurrent polling GETs
    async with aiohttp.ClientSession() as http:
        poll = PollingClient(http, port)
        await poll.handshake()
        await poll.post("40")
        sid = json.loads((await poll.get())[0][2:])["sid"]
        first = asyncio.ensure_future(poll.get())
        await asyncio.sleep(0.05)
        with pytest.raises(AssertionError):
            await poll.get()
        assert await first == ["1"]
    await expect(sid, "transport error")
    # transport error: a WebSocket message above max_http_buffer_size
    c = await clients(port, max_size=None)
    sid = await c.join()
    await c.send('2["big","' + "x" * 70_000 + '"]')
    await c.closed()
    assert c.ws.close_code == 1009
    await expect(sid, "transport error")
    # server shutting down
    c = await clients(port)
    sid = await c.join()
    admin_sid = await c.join("/admin")
    await sio.shutdown()
    await expect(sid, "server shutting down")
    await expect(admin_sid, "server shutting down", admin_rec)
    await c.closed()


async def test_disconnect_sockets(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    rec = Recorder()
    record_disconnects(sio, rec)

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        await socket.join(auth["room"])

    port = await serve(sio)
    a, b, c = [await clients(port) for _ in range(3)]
    sa = await a.join(auth={"room": "x"})
    sb = await b.join(auth={"room": "x"})
    sc = await c.join(auth={"room": "y"})
    await sio.in_("x").disconnect_sockets()
    assert await a.recv() == "1"
    assert await b.recv() == "1"
    await rec.wait(4)
    assert {(i[0], i[1], i[2]) for i in rec.items} == {
        (e, s, "server namespace disconnect")
        for e in ("disconnecting", "disconnect")
        for s in (sa, sb)
    }
    assert set(sio.sockets) == {sc}
    # the connections stay open
    await a.join(auth={"room": "z"})
    await sio.disconnect_sockets(close=True)
    await c.closed()
    await a.closed()


async def test_refused_socket_and_client_gone_while_connecting(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    rec = Recorder()
    record_disconnects(sio, rec)
    entered = asyncio.Event()
    release = asyncio.Event()

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        entered.set()
        await release.wait()

    port = await serve(sio)
    c = await clients(port)
    await c.send("0")
    await entered.wait()
    await c.ws.close()
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.sleep(0.1)
    # never connected: no disconnect events, no leftovers
    assert rec.items == []
    assert sio.sockets == {}
    assert sio.of("/").adapter.sids == {}


# -- catch-all and listeners ---------------------------------------------------------------------


async def test_catch_all_and_any_listeners(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    seen: list[Any] = []

    @sio.on("*")
    async def catch_all(socket: wsio.Socket, event: Any, *args: Any) -> Any:
        seen.append(("*", event, args))
        return f"caught {event}"

    @sio.on("known")
    def known(socket: wsio.Socket, x: int) -> int:
        seen.append(("known", x))
        return x

    @sio.on_any
    def any_in(socket: wsio.Socket, event: Any, *args: Any) -> None:
        seen.append(("any", event, args))

    @sio.on_any_outgoing
    def any_out(socket: wsio.Socket, event: Any, *args: Any) -> None:
        seen.append(("out", socket.id, event, args))

    port = await serve(sio)
    c = await clients(port)
    sid = await c.join()
    await c.send('21["unknown",1,{"a":2}]')
    assert ack_of(await c.recv()) == (1, ["caught unknown"])
    await c.send('22["known",3]')
    assert ack_of(await c.recv()) == (2, [3])
    await c.send("23[42]")
    assert ack_of(await c.recv()) == (3, ["caught 42"])
    assert seen == [
        ("any", "unknown", (1, {"a": 2})),
        ("*", "unknown", (1, {"a": 2})),
        ("any", "known", (3,)),
        ("known", 3),
        ("any", 42, ()),
        ("*", 42, ()),
    ]
    seen.clear()
    sio.sockets[sid].emit("direct", 1)
    await sio.emit("broadcast", 2)
    assert await c.recv_json("2") == ["direct", 1]
    assert await c.recv_json("2") == ["broadcast", 2]
    assert seen == [("out", sid, "direct", (1,)), ("out", sid, "broadcast", (2,))]
    # outgoing listeners see what each socket is sent, nothing more
    c2 = await clients(port)
    sid2 = await c2.join()
    seen.clear()
    await sio.to(sid2).emit("to2", 3)
    await sio.sockets[sid].broadcast.emit("from1", 4)
    await sio.except_(sid2).emit("not2", 5)
    assert await c2.recv_json("2") == ["to2", 3]
    assert await c2.recv_json("2") == ["from1", 4]
    assert await c.recv_json("2") == ["not2", 5]
    assert seen == [
        ("out", sid2, "to2", (3,)),
        ("out", sid2, "from1", (4,)),
        ("out", sid, "not2", (5,)),
    ]


async def test_handler_exceptions(
    serve: Any, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sio = wsio.Server()

    @sio.on("boom")
    def boom(socket: wsio.Socket) -> None:
        raise RuntimeError("sync boom")

    @sio.on("aboom")
    async def aboom(socket: wsio.Socket) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async boom")

    @sio.on("bad_ack")
    def bad_ack(socket: wsio.Socket) -> Any:
        return {1, 2}  # not serializable

    @sio.on("ok")
    def ok(socket: wsio.Socket) -> str:
        return "fine"

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    with caplog.at_level(logging.ERROR, logger="wsio"):
        await c.send('21["boom"]', '22["aboom"]', '23["bad_ack"]', '2["boom"]', '24["ok"]')
        # every packet with an ack id is answered (no arguments when the handler failed)
        assert [await c.recv() for _ in range(4)] == ["31[]", "32[]", "33[]", '34["fine"]']
    messages = caplog.text
    assert "sync boom" in messages
    assert "async boom" in messages
    await c.send('25["ok"]')
    assert await c.recv() == '35["fine"]'


# -- bad input -----------------------------------------------------------------------------------------

PH0 = '{"_placeholder":true,"num":0}'

MALFORMED: dict[str, list[str | bytes]] = {
    "bad json": ['2["x",'],
    "bad json object": ['2{"a":'],
    "trailing garbage": ['2["x"]]'],
    "object payload": ['2{"a":1}'],
    "string payload": ['2"x"'],
    "number payload": ["22"],
    "no payload": ["2"],
    "empty event array": ["2[]"],
    "event name not a string": ['2[{"a":1}]'],
    "null event name": ["2[null]"],
    "reserved name connect": ['2["connect"]'],
    "reserved name disconnect": ['21["disconnect","x"]'],
    "reserved name disconnecting": ['2["disconnecting"]'],
    "reserved name newListener": ['2["newListener"]'],
    "placeholder without attachments": ['2["x",' + PH0 + "]"],
    "placeholder num out of range": ['51-["x",{"_placeholder":true,"num":3}]', b"a"],
    "placeholder num not an int": ['51-["x",{"_placeholder":true,"num":"0"}]', b"a"],
    "attachment never referenced": ['52-["x",' + PH0 + "]", b"a", b"b"],
    "attachment without a binary packet": [b"\x01\x02"],
    "text while attachments are expected": [
        '52-["x",' + PH0 + ',{"_placeholder":true,"num":1}]',
        b"a",
        '2["y"]',
    ],
    "zero attachments": ['50-["x"]'],
    "bad attachment count": ['5x-["x"]'],
    "unknown packet type": ["9"],
    "connect error from a client": ['4{"message":"x"}'],
    "ack without payload": ["31"],
    "ack with object payload": ['31{"a":1}'],
    "connect with a string payload": ['0/admin,"x"'],
    "disconnect with a payload": ['1["x"]'],
    "empty message": [""],
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_packets_close_with_parse_error(
    case: str, serve: Any, clients: Any
) -> None:
    sio = wsio.Server()
    rec = Recorder()
    record_disconnects(sio, rec)
    sio.of("/admin")

    @sio.on("*")
    def anything(socket: wsio.Socket, event: Any, *args: Any) -> str:
        return "ok"

    port = await serve(sio)
    bystander = await clients(port)
    other_sid = await bystander.join()
    bad = await clients(port)
    sid = await bad.join()
    await bad.send(*MALFORMED[case])
    got = await bad.closed()
    assert [m for m in got if isinstance(m, str) and m.startswith("3")] == []
    await rec.wait(2)
    assert [(e, s, r) for e, s, r, _ in rec.items] == [
        ("disconnecting", sid, "parse error"),
        ("disconnect", sid, "parse error"),
    ]
    # nothing else is affected
    await bystander.send('27["still", "there"]')
    assert ack_of(await bystander.recv()) == (7, ["ok"])
    assert set(sio.sockets) == {other_sid}


async def test_malformed_first_packet_and_msgpack(serve: Any, clients: Any) -> None:
    # garbage, or anything but a CONNECT, before any CONNECT: the connection is closed
    sio = wsio.Server()
    port = await serve(sio)
    for first in ("2[", '21["x"]', "1", "31[]", "1/admin,"):
        c = await clients(port)
        await c.send(first)
        assert await c.closed() == []
    # after a CONNECT to an unknown namespace too
    c = await clients(port)
    await c.send("0/nope,")
    assert await c.recv_json("4/nope,") == {"message": "Invalid namespace"}
    await c.send('2/nope,["x"]')
    assert await c.closed() == []
    # msgpack parser: text frames and garbage are parse errors
    sio = wsio.Server(parser="msgpack")
    rec = Recorder()
    record_disconnects(sio, rec)
    port = await serve(sio)
    import msgpack

    for bad_input in ("2[]", b"\xc1", msgpack.packb({"type": 2, "nsp": "/", "data": []})):
        c = await clients(port)
        await c.send(msgpack.packb({"type": 0, "nsp": "/"}))
        reply = msgpack.unpackb(await c.recv())
        assert reply["type"] == 0 and "sid" in reply["data"]
        await c.send(bad_input)
        await c.closed()
        await rec.wait_for(lambda items: items and items[-1][0] == "disconnect")
        assert rec.items[-1][2] == "parse error"
        rec.items.clear()


async def test_unordered_handlers_are_bounded_too(serve: Any, clients: Any) -> None:
    """A flood of events whose ``ordered=False`` handlers wait: reading pauses, then resumes."""
    from wsio.socketio.server import MAX_PENDING_EVENTS

    sio = wsio.Server()
    release = asyncio.Event()
    running = 0
    peak = 0
    done = 0

    @sio.on("wait", ordered=False)
    async def wait(socket: wsio.Socket, i: int, pad: str) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        done += 1

    port = await serve(sio)
    c = await clients(port)
    await c.join()
    total = 3 * MAX_PENDING_EVENTS
    pad = "x" * 2000
    for i in range(total):
        await c.ws.send("42" + json.dumps(["wait", i, pad]))
    await asyncio.sleep(0.5)
    # Reading paused once MAX_PENDING_EVENTS handlers ran (plus what one read held).
    assert MAX_PENDING_EVENTS < peak < total - MAX_PENDING_EVENTS // 2, peak
    release.set()
    await until(lambda: done == total, timeout=10)
    await c.send('299["nothing"]')
    assert await c.recv(5) == "399[]"


async def test_flood_does_not_starve_the_others(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    handled = 0

    @sio.on("flood")
    async def flood(socket: wsio.Socket, i: int) -> None:
        nonlocal handled
        handled += 1
        await asyncio.sleep(0)

    @sio.on("ping")
    def ping(socket: wsio.Socket, t: float) -> float:
        return t

    port = await serve(sio)
    flooder = await clients(port)
    await flooder.join()
    others = [await clients(port) for _ in range(3)]
    for other in others:
        await other.join()
    stop = asyncio.Event()
    sent = 0

    async def flood_task() -> None:
        nonlocal sent
        frame = "42" + json.dumps(["flood", "x" * 200])
        while not stop.is_set():
            for _ in range(200):
                await flooder.ws.send(frame)
                sent += 1
            await asyncio.sleep(0)

    latencies: list[float] = []

    async def pinger(client: RawClient) -> None:
        for i in range(20):
            t0 = time.monotonic()
            await client.send(f'2{i}["ping",{t0}]')
            assert ack_of(await client.recv(2)) == (i, [t0])
            latencies.append(time.monotonic() - t0)
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(flood_task())
    try:
        await asyncio.sleep(0.2)
        await asyncio.gather(*(pinger(c) for c in others))
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task
    assert sent > 2000
    assert handled > 1000
    # The flooder itself is served in order, at a decent rate: its backlog drains.
    start = time.monotonic()
    await flooder.send('299["ping",0]')
    while True:
        m = await flooder.recv(5)
        if m.startswith("3"):  # type: ignore[arg-type]
            break
    assert m == "399[0]"
    assert handled == sent
    assert time.monotonic() - start < 3
    assert len(latencies) == 60
    latencies.sort()
    assert latencies[-1] < 0.5, latencies[-5:]
    assert latencies[len(latencies) // 2] < 0.1, latencies


# -- serving -----------------------------------------------------------------------------------------

CLIENT_DIST = (
    Path(__file__).resolve().parents[1] / "interop" / "node_modules" / "socket.io-client" / "dist"
)


async def test_shutdown(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    rec = Recorder()
    record_disconnects(sio, rec)
    port = await serve(sio)
    ws = await clients(port)
    sid = await ws.join()
    async with aiohttp.ClientSession() as http:
        poll = PollingClient(http, port)
        await poll.handshake()
        await poll.post("40")
        poll_sid = json.loads((await poll.get())[0][2:])["sid"]
        pending = asyncio.ensure_future(poll.get())
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await sio.shutdown()
        assert time.monotonic() - start < 2
        assert await pending == ["1"]  # the pending GET gets the close packet
    await ws.closed()
    await rec.wait(4)
    assert {(e, s, r) for e, s, r, _ in rec.items} == {
        (e, s, "server shutting down")
        for e in ("disconnecting", "disconnect")
        for s in (sid, poll_sid)
    }
    with pytest.raises(OSError):
        await RawClient.connect(port)


async def test_static_files_and_browser_bundle(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>hi</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    sio = wsio.Server(serve_client=True, client_dist=str(CLIENT_DIST))
    port = await serve(sio, static_files={"/": str(tmp_path)})
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as r:
            assert r.status == 200
            assert await r.text() == "<title>hi</title>"
        async with http.get(base + "/app.js") as r:
            assert r.status == 200
            assert await r.text() == "console.log(1)"
        for name in ("socket.io.js", "socket.io.min.js", "socket.io.msgpack.min.js"):
            async with http.get(base + "/socket.io/" + name) as r:
                assert r.status == 200, name
                assert "javascript" in r.headers["Content-Type"]
                assert await r.read() == (CLIENT_DIST / name).read_bytes()
        async with http.get(base + "/socket.io/other.js") as r:
            assert r.status == 404
        async with http.get(base + "/missing.html") as r:
            assert r.status == 404
        # the Engine.IO endpoint is still there
        async with http.get(base + "/socket.io/?EIO=4&transport=polling") as r:
            assert r.status == 200
            assert (await r.text()).startswith('0{"sid":')
    # without serve_client the bundle is not served
    plain = wsio.Server()
    port = await serve(plain)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/socket.io/socket.io.js") as r,
    ):
        assert r.status in (400, 404)


async def test_polling_session_end_to_end(serve: Any) -> None:
    sio = wsio.Server()

    @sio.on("echo")
    def echo(socket: wsio.Socket, *args: Any) -> tuple[Any, ...]:
        assert socket.transport == "polling"
        return args

    port = await serve(sio)
    async with aiohttp.ClientSession() as http:
        poll = PollingClient(http, port)
        info = await poll.handshake()
        assert set(info) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
        assert await poll.post('40{"a":1}') == 200
        [reply] = await poll.get()
        assert reply.startswith('40{"sid":')
        # several packets in one POST; binary as base64 with the "b" prefix
        assert (
            await poll.post('421["echo",1]', '451-2["echo",{"_placeholder":true,"num":0}]', "bAAE=")
            == 200
        )
        got: list[str] = []
        while len(got) < 3:
            got += await poll.get()
        assert got == ["431[1]", '461-2[{"_placeholder":true,"num":0}]', "bAAE="]


async def test_disconnect_is_not_blocked_by_a_pending_handler(serve: Any, clients: Any) -> None:
    sio = wsio.Server()
    rec = Recorder()
    record_disconnects(sio, rec)
    outcome: list[Any] = []

    @sio.on("wait")
    async def wait(socket: wsio.Socket) -> None:
        try:
            await socket.call("never answered")
        except wsio.Disconnected as exc:
            outcome.append(("disconnected", socket.connected, type(exc).__name__))

    port = await serve(sio)
    c = await clients(port)
    sid = await c.join()
    await c.send('21["wait"]', '22["wait"]')
    assert re.fullmatch(r'2\d+\["never answered"\]', await c.recv())  # type: ignore[arg-type]
    start = time.monotonic()
    await c.send("1")
    await rec.wait(2)
    assert time.monotonic() - start < 1
    assert [(e, r) for e, _, r, _ in rec.items] == [
        ("disconnecting", "client namespace disconnect"),
        ("disconnect", "client namespace disconnect"),
    ]
    # the pending call failed at once; the queued event was dropped; no ACK for a gone socket
    assert outcome == [("disconnected", False, "Disconnected")]
    await c.nothing(0.1)
    # the connection itself is still usable
    assert await c.join() != sid


RUN_SCRIPT = """
import sys
import wsio

sio = wsio.Server()

@sio.on("hello")
def hello(socket, name):
    return "hello " + name

@sio.on("disconnect")
def disconnect(socket, reason):
    print("disconnect", reason, flush=True)

sio.run(host="127.0.0.1", port=int(sys.argv[1]))
print("stopped", flush=True)
"""


async def test_run_blocking_and_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from support.procs import free_port, start, stop

    port = free_port()
    script = tmp_path / "app.py"
    script.write_text(RUN_SCRIPT)
    log = tmp_path / "out.log"
    with log.open("wb") as f:
        proc = start(
            [sys.executable, str(script), str(port)], port, stdout=f, stderr=subprocess.STDOUT
        )
    try:
        c = await RawClient.connect(port)
        await c.join()
        await c.send('21["hello","you"]')
        assert await c.recv() == '31["hello you"]'
        proc.send_signal(signal.SIGTERM)
        await c.closed()
        assert await asyncio.to_thread(proc.wait, 5) == 0
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    assert lines[0].startswith(f"wsio: Socket.IO server on http://127.0.0.1:{port}/socket.io/")
    assert lines[1:] == ["disconnect server shutting down", "stopped"]
