"""wsio's Socket.IO client against wsio's own server and python-socketio's.

Both servers speak the protocol of ``tests/interop/sio_node_server.js`` (the
same tests run against the official Node server in
``tests/interop/test_sio_client_node.py``): ``echo`` acknowledges with its
arguments, ``record`` logs, ``ask`` makes the server call the client,
``burst`` streams numbered events, ``drop`` cuts the connection and emits
to a room meanwhile, ``kick`` disconnects the namespace, ``/private``
refuses clients without the right token. wsio's server runs in-process;
python-socketio's runs as an ASGI app under uvicorn, in-process too.

Then what only a fake server can show: bad answers during the handshake,
and the exact backoff delays.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import ssl as ssl_module
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wsio
from support.certs import make_cert
from support.procs import free_port
from support.sio import Recorder, client_factory, until
from wsio.socketio.client import Backoff

MODES = {
    "polling": ("polling",),
    "websocket": ("websocket",),
    "upgrade": ("polling", "websocket"),
}


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., wsio.Client]]:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        async with client_factory() as make:
            yield make
    finally:
        await asyncio.sleep(0)
    assert errors == []


def answer_of(result: Any) -> list[Any]:
    """The arguments of the ``answer`` event that reports a client's ack *result*."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


# -- wsio's server ------------------------------------------------------------------------------


class WsioPeer:
    """wsio's server with the test protocol, on a port that survives restarts."""

    kind = "wsio"

    def __init__(self, ssl: ssl_module.SSLContext | None = None, **options: Any) -> None:
        self.options = options
        self.ssl = ssl
        self.port = free_port()
        self.url = f"{'https' if ssl else 'http'}://127.0.0.1:{self.port}"
        self.log: list[dict[str, Any]] = []
        self.sio: wsio.Server | None = None
        self.run = 0
        self.release = asyncio.Event()
        self.timers: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        self.run += 1
        self.sio = self._make()
        await self.sio.start("127.0.0.1", self.port, ssl=self.ssl)

    async def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.release.set()
        if self.sio is not None:
            await self.sio.shutdown()
            self.sio = None
        self.release = asyncio.Event()

    def lines(self, event: str, run: int | None = None) -> list[dict[str, Any]]:
        return [x for x in self.log if x["event"] == event and (run is None or x["run"] == run)]

    def _make(self) -> wsio.Server:
        sio = wsio.Server(**self.options)
        run = self.run
        flaky_seen: set[int] = set()

        def log(**item: Any) -> None:
            self.log.append({"run": run, **item})

        def setup(nsp: Any) -> None:
            @nsp.on("connect")
            async def connect(socket: wsio.Socket, auth: Any) -> None:
                log(
                    event="connection",
                    nsp=socket.nsp.name,
                    id=socket.id,
                    recovered=socket.recovered,
                    auth=auth,
                    cookie=socket.handshake.headers.get("Cookie"),
                    header=socket.handshake.headers.get("X-Test"),
                    query=dict(socket.handshake.query),
                )
                await socket.join("room")
                socket.emit(
                    "welcome",
                    {"nsp": socket.nsp.name, "tag": f"run{run}", "recovered": socket.recovered},
                )

            @nsp.on("echo")
            def echo(socket: wsio.Socket, *args: Any) -> tuple[Any, ...]:
                return args

            @nsp.on("record")
            def record(socket: wsio.Socket, *args: Any) -> None:
                log(event="recv", nsp=socket.nsp.name, id=socket.id, args=list(args))

            @nsp.on("flaky")
            async def flaky(socket: wsio.Socket, n: int) -> int:
                log(event="flaky", n=n)
                if n not in flaky_seen:
                    flaky_seen.add(n)
                    await asyncio.sleep(0.3)  # the client gives up on this ack first
                return n

            @nsp.on("ask")
            async def ask(socket: wsio.Socket, name: str, *args: Any) -> None:
                try:
                    result = await socket.call(name, *args, timeout=5)
                except wsio.AckTimeout as exc:
                    socket.emit("answer", {"error": str(exc)})
                    return
                socket.emit("answer", answer_of(result))

            @nsp.on("burst")
            def burst(socket: wsio.Socket, n: int) -> None:
                for i in range(n):
                    socket.emit("seq", i)

            @nsp.on("drop")
            def drop(socket: wsio.Socket, n: int, delay: float) -> None:
                socket.conn.session._ws.abort()  # as if the network failed

                def later() -> None:
                    for i in range(n):
                        nsp.to("room").emit("missed", i)

                self.timers.append(asyncio.get_running_loop().call_later(delay / 1000, later))

            @nsp.on("kick")
            def kick(socket: wsio.Socket) -> None:
                socket.disconnect()

            @nsp.on("hang")
            async def hang(socket: wsio.Socket) -> None:
                await self.release.wait()

            @nsp.on("disconnect")
            def disconnect(socket: wsio.Socket, reason: str) -> None:
                log(event="disconnect", nsp=socket.nsp.name, id=socket.id, reason=reason)

        setup(sio.of("/"))
        setup(sio.of("/admin"))
        private = sio.of("/private")

        @private.use
        def check(socket: wsio.Socket) -> None:
            if (socket.handshake.auth or {}).get("token") != "secret":
                raise wsio.ConnectionRefused("not authorized", {"code": 401, "hint": "token"})

        setup(private)
        slow = sio.of("/slow")

        @slow.on("connect")
        async def never(socket: wsio.Socket, auth: Any) -> None:
            await self.release.wait()

        return sio


@pytest.fixture
async def wsio_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[WsioPeer] = []

    async def make(**options: Any) -> WsioPeer:
        peer = WsioPeer(**options)
        await peer.start()
        made.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in made:
            await peer.stop()


# -- python-socketio's server ----------------------------------------------------------------


class PsioPeer:
    """python-socketio's AsyncServer (ASGI) under uvicorn, in this event loop."""

    kind = "python-socketio"

    def __init__(self) -> None:
        import uvicorn

        import socketio

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: list[dict[str, Any]] = []
        psio = self.psio = socketio.AsyncServer(async_mode="asgi")
        for ns in ("/", "/admin", "/private"):
            self._setup(psio, ns)
        config = uvicorn.Config(
            socketio.ASGIApp(psio),
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    def lines(self, event: str, run: int | None = None) -> list[dict[str, Any]]:
        return [x for x in self.log if x["event"] == event]

    def _setup(self, psio: Any, ns: str) -> None:
        import socketio

        async def connect(sid: str, environ: Any, auth: Any) -> None:
            if ns == "/private" and (auth or {}).get("token") != "secret":
                raise socketio.exceptions.ConnectionRefusedError(
                    "not authorized", {"code": 401, "hint": "token"}
                )
            self.log.append({"event": "connection", "nsp": ns, "id": sid, "auth": auth})
            await psio.enter_room(sid, "room", namespace=ns)
            await psio.emit(
                "welcome", {"nsp": ns, "tag": "run1", "recovered": False}, to=sid, namespace=ns
            )

        async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
            return args

        async def record(sid: str, *args: Any) -> None:
            self.log.append({"event": "recv", "nsp": ns, "id": sid, "args": list(args)})

        async def ask(sid: str, name: str, *args: Any) -> None:
            data = args if len(args) != 1 else args[0]
            result = await psio.call(name, data if args else None, to=sid, namespace=ns, timeout=5)
            await psio.emit("answer", answer_of(result), to=sid, namespace=ns)

        async def burst(sid: str, n: int) -> None:
            for i in range(n):
                await psio.emit("seq", i, to=sid, namespace=ns)

        for name, fn in (
            ("connect", connect),
            ("echo", echo),
            ("record", record),
            ("ask", ask),
            ("burst", burst),
        ):
            psio.on(name, fn, namespace=ns)

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.server.serve())
        await until(lambda: self.server.started or self.task.done())  # type: ignore[union-attr]
        assert self.server.started

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


@pytest.fixture(params=["wsio", "python-socketio"])
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    server: Any = WsioPeer() if request.param == "wsio" else PsioPeer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# -- the basic matrix, against both servers ------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
async def test_events_and_acks(peer: Any, clients: Any, mode: str) -> None:
    client = clients(peer.url, transports=MODES[mode])
    rec = Recorder(client, "welcome", "seq", "answer")
    await client.connect()
    assert client.connected and isinstance(client.id, str)
    assert (await rec.wait("welcome"))[0] == ({"nsp": "/", "tag": "run1", "recovered": False},)
    # acks from the server with 0, 1 and several arguments, binary and nested values
    assert await client.call("echo") is None
    assert await client.call("echo", "one") == "one"
    assert await client.call("echo", 1, "two", [3], {"four": None}) == (
        1,
        "two",
        [3],
        {"four": None},
    )
    blob = bytes(range(256))
    assert await client.call("echo", blob, {"nested": [blob[:3]]}) == (blob, {"nested": [blob[:3]]})
    # the server calls the client: the handler's return value is the ack
    client.on("none", lambda: None)
    client.on("single", lambda x: x * 2)
    client.on("several", lambda a, b: (b, a))

    async def reverse(data: bytes) -> bytes:
        await asyncio.sleep(0.01)
        return data[::-1]

    client.on("binary", reverse)
    await client.emit("ask", "none")
    await client.emit("ask", "single", 21)
    await client.emit("ask", "several", "a", "b")
    await client.emit("ask", "binary", b"\x00\x01\x02")
    answers = await rec.wait("answer", 4)
    assert answers == [([],), ([42],), (["b", "a"],), ([b"\x02\x01\x00"],)]
    # order, both ways
    await client.emit("burst", 100)
    assert [a[0] for a in await rec.wait("seq", 100)] == list(range(100))
    for i in range(50):
        client.emit("record", mode, i)
        if i % 10 == 9:
            # python-engineio drops a POST of more than 16 packets: flush every 10
            await client.call("echo")
    assert [x["args"][1] for x in peer.lines("recv") if x["args"][0] == mode] == list(range(50))
    await until(lambda: client.transport == MODES[mode][-1])
    await client.disconnect()
    assert rec.of("disconnect") == [("io client disconnect",)]
    assert not client.active and client.manager.engine is None


async def test_namespaces_and_refusal(peer: Any, clients: Any) -> None:
    client = clients(peer.url + "/admin", transports=("websocket",))
    await client.connect()
    main = client.of("/", auth={"who": "main"})
    await main.connect()
    assert client.manager is main.manager and client.id != main.id
    mine = {x["nsp"]: x for x in peer.lines("connection") if x["id"] in (client.id, main.id)}
    assert set(mine) == {"/", "/admin"} and mine["/"]["auth"] == {"who": "main"}
    assert await client.call("echo", "a") == "a"
    assert await main.call("echo", "m") == "m"
    # refused by the server, with data, on the same connection
    private = client.of("/private", auth={"token": "wrong"})
    errors: list[wsio.ConnectionError] = []
    private.on("connect_error", errors.append)
    with pytest.raises(wsio.ConnectionError) as info:
        await private.connect(retry=True)  # a refusal is never retried
    assert (info.value.message, info.value.data) == (
        "not authorized",
        {"code": 401, "hint": "token"},
    )
    assert errors == [info.value] and not private.active
    assert client.connected and main.connected
    private.auth = {"token": "secret"}
    await private.connect()
    assert await private.call("echo", "p") == "p"
    await main.disconnect()
    assert client.connected and client.manager.engine is not None


# -- wsio's server: parser, TLS, reconnection, recovery, retries, ordering ------------------------


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_headers_and_query(wsio_factory: Any, clients: Any, mode: str) -> None:
    server = await wsio_factory()
    client = clients(
        server.url + "/admin?from=url",
        transports=MODES[mode],
        headers={"X-Test": "yes"},
        query={"extra": "1"},
    )
    await client.connect()
    (seen,) = server.lines("connection")
    assert seen["nsp"] == "/admin" and seen["header"] == "yes"
    assert seen["query"]["from"] == "url" and seen["query"]["extra"] == "1"
    assert seen["query"]["EIO"] == "4" and seen["query"]["transport"] == mode


async def test_msgpack_parser(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory(parser="msgpack")
    client = clients(server.url, parser="msgpack", transports=("polling",))
    rec = Recorder(client, "welcome", "answer")
    await client.connect()
    await rec.wait("welcome")
    blob = b"\xff" * 1000
    expected = (1, 2.5, "x", blob, {"k": [True, None]})
    assert await client.call("echo", *expected) == expected
    client.on("twice", lambda a, b: (a, b, a))
    await client.emit("ask", "twice", b"z", 7)
    assert (await rec.wait("answer"))[0] == ([b"z", 7, b"z"],)
    # a client with the other parser cannot talk to it
    other = clients(server.url, timeout=1)
    with pytest.raises(wsio.ConnectionError):
        await other.connect()


async def test_tls_verification_options(wsio_factory: Any, clients: Any, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await wsio_factory(ssl=context)
    assert server.url.startswith("https://")
    strict = clients(server.url, timeout=2)
    with pytest.raises(wsio.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await strict.connect()
    insecure = clients(server.url, ssl=False)
    await insecure.connect()
    await until(lambda: insecure.transport == "websocket")  # wss:// too
    assert await insecure.call("echo", "over tls") == "over tls"
    trusted = clients(
        server.url,
        transports=("websocket",),
        ssl=ssl_module.create_default_context(cafile=str(cert)),
    )
    await trusted.connect()
    assert await trusted.call("echo", b"\x01") == b"\x01"


async def test_connection_state_recovery(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory(connection_state_recovery=True)
    client = clients(
        server.url, transports=("websocket",), reconnection_delay=0.2, randomization_factor=0
    )
    rec = Recorder(client, "welcome", "missed")
    await client.connect()
    first_id = client.id
    await rec.wait("welcome")
    await client.emit("drop", 3, 50)
    await rec.wait("connect", 2)
    assert rec.of("disconnect")[0][0] in ("transport close", "transport error")
    assert client.recovered and client.id == first_id
    assert await rec.wait("missed", 3) == [(0,), (1,), (2,)]  # without the offsets
    assert [w[0]["recovered"] for w in rec.of("welcome")] == [False, True]
    assert [x["recovered"] for x in server.lines("connection")] == [False, True]
    assert server.lines("connection")[1]["auth"] is None  # pid and offset are not auth


async def test_restart_reconnects_and_flushes_buffer(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(server.url, reconnection_delay=0.1, reconnection_delay_max=0.2)
    rec = Recorder(client)
    manager_events: list[tuple[Any, ...]] = []
    for name in ("reconnect_attempt", "reconnect_error", "reconnect"):
        client.manager.on(name, lambda *a, name=name: manager_events.append((name, *a)))
    await client.connect()
    await until(lambda: client.transport == "websocket")
    await server.stop()
    await rec.wait("disconnect")
    assert rec.of("disconnect") == [("transport close",)]
    for i in range(20):
        client.emit("record", "buffered", i)
    client.volatile.emit("record", "volatile")  # dropped, not buffered
    pending = asyncio.ensure_future(client.call("echo", "after restart"))
    await asyncio.sleep(0.3)
    await server.start()
    await rec.wait("connect", 2)
    assert await asyncio.wait_for(pending, 5) == "after restart"
    assert [x["args"] for x in server.lines("recv")] == [["buffered", i] for i in range(20)]
    names = [e[0] for e in manager_events]
    assert names[-1] == "reconnect" and "reconnect_error" in names


async def test_retries_at_least_once(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    # The first try times out at 0.25 s; the server handles the second one at 0.3 s.
    client = clients(server.url, transports=("websocket",), retries=2, ack_timeout=0.25)
    await client.connect()
    acked: list[Any] = []
    client.emit("flaky", 1, callback=acked.append)
    assert await client.call("flaky", 2) == 2
    assert acked == [1]
    assert [x["n"] for x in server.lines("flaky")] == [1, 1, 2, 2]


async def test_retries_give_up(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(server.url, transports=("websocket",), retries=1, ack_timeout=0.1)
    await client.connect()
    start = time.monotonic()
    with pytest.raises(wsio.AckTimeout):
        await client.call("hang")
    assert 0.2 <= time.monotonic() - start < 1  # two tries of 0.1 s
    server.release.set()


async def test_call_timeout_and_disconnect(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(server.url, transports=("websocket",), ack_timeout=0.1)
    await client.connect()
    with pytest.raises(wsio.AckTimeout):
        await client.call("hang")
    with pytest.raises(wsio.AckTimeout):
        await client.timeout(0.05).call("hang")
    waiting = asyncio.ensure_future(client.call("hang", timeout=None))
    await asyncio.sleep(0.05)
    rec = Recorder(client)
    # (the hanging handlers hold the socket's event queue: disconnect it from the server side)
    server.sio.sockets[client.id].disconnect()
    with pytest.raises(wsio.Disconnected):
        await waiting
    await asyncio.wait_for(client.wait(), 2)
    assert rec.of("disconnect") == [("io server disconnect",)]
    assert not client.active
    await asyncio.sleep(0.1)
    assert client.manager.engine is None and not client.manager.reconnecting
    server.release.set()  # the disconnect handler runs after the queued events
    await until(lambda: bool(server.lines("disconnect")))
    assert server.lines("disconnect")[0]["reason"] == "server namespace disconnect"


async def test_handlers_order_and_nested_calls(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(server.url, transports=("websocket",))
    order: list[Any] = []

    async def seq(i: int) -> None:
        if i % 3 == 0:
            await asyncio.sleep(0.001)
        order.append(i)

    def seq_sync(i: int) -> None:
        order.append(i)

    # coroutine and plain handlers mixed: still one at a time, in arrival order
    client.on("seq", lambda i: seq(i) if i % 2 else seq_sync(i))

    admin = client.of("/admin")

    async def nested(x: int) -> Any:
        # Waits for an ack while the server waits for this one. (Over another
        # namespace: wsio's server runs the handlers of one socket in turn.)
        return await admin.call("echo", x + 1)

    client.on("nested", nested)
    answers: list[Any] = []
    client.on("answer", answers.append)
    seen: list[Any] = []
    client.on_any(lambda event, *args: seen.append(event))
    await client.connect()
    await admin.connect()
    await client.emit("burst", 60)
    await client.emit("ask", "nested", 1)
    await until(lambda: len(order) == 60 and answers)
    assert order == list(range(60))
    assert answers == [[2]]
    assert seen.count("seq") == 60 and "welcome" in seen


async def test_catch_all_and_unhandled_acks(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(server.url, transports=("websocket",))
    caught: list[tuple[Any, ...]] = []

    @client.on("*")
    def anything(event: str, *args: Any) -> str:
        caught.append((event, *args))
        return "from catch-all"

    answers: list[Any] = []

    @client.event
    def answer(value: Any) -> None:
        answers.append(value)

    await client.connect()
    await client.emit("ask", "unknown", 5)
    await until(lambda: len(answers) == 1)
    assert answers == [["from catch-all"]]
    assert ("unknown", 5) in caught
    with pytest.raises(ValueError):
        client.emit("disconnect")
    del server


async def test_connect_retry_until_server_starts(clients: Any) -> None:
    port = free_port()
    client = clients(
        f"http://127.0.0.1:{port}", reconnection_delay=0.05, reconnection_delay_max=0.1
    )
    attempts: list[int] = []
    client.manager.on("reconnect_attempt", attempts.append)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    connecting = asyncio.ensure_future(client.connect(retry=True))
    await until(lambda: len(attempts) >= 2)
    peer = WsioPeer()
    peer.port, peer.url = port, f"http://127.0.0.1:{port}"
    await peer.start()
    try:
        await asyncio.wait_for(connecting, 5)
        assert client.connected and await client.call("echo", 1) == 1
        assert len(errors) >= 2 and all(isinstance(e, wsio.ConnectionError) for e in errors)
    finally:
        await client.manager.close()
        await peer.stop()


async def test_reconnect_failed_and_without_reconnection(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    client = clients(
        server.url,
        transports=("websocket",),
        reconnection_attempts=1,
        reconnection_delay=0.05,
    )
    events: list[str] = []
    for name in ("reconnect_attempt", "reconnect_error", "reconnect_failed"):
        client.manager.on(name, lambda *a, name=name: events.append(name))
    plain = clients(server.url, transports=("websocket",), reconnection=False)
    await client.connect()
    await plain.connect()
    await server.stop()
    await asyncio.wait_for(plain.wait(), 2)
    await asyncio.wait_for(client.wait(), 2)
    assert events == ["reconnect_attempt", "reconnect_failed", "reconnect_error"]
    assert not client.active and not plain.active


async def test_disconnect_reasons_and_wait(wsio_factory: Any, clients: Any) -> None:
    server = await wsio_factory()
    async with wsio.Client(server.url, transports=("websocket",)) as client:
        rec = Recorder(client)
        waiting = asyncio.ensure_future(client.wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 1)
    assert rec.of("disconnect") == [("io client disconnect",)]
    assert [x["reason"] for x in server.lines("disconnect")] == ["client namespace disconnect"]


# -- the backoff -----------------------------------------------------------------------------------


def official_delays(min_ms: float, max_ms: float, jitter: float, randoms: list[float]) -> list[int]:
    """backo2's formula, written out."""
    delays = []
    for attempt, rand in enumerate(randoms):
        ms = min_ms * 2**attempt
        if jitter:
            deviation = math.floor(rand * jitter * ms)
            ms = ms + deviation if math.floor(rand * 10) % 2 else ms - deviation
        delays.append(int(min(ms, max_ms)))
    return delays


def test_backoff_sequence() -> None:
    randoms = [0.0, 0.12, 0.25, 0.49, 0.5, 0.61, 0.99, 0.35, 0.8, 0.05]
    backoff = Backoff(1000, 5000, jitter=0.5, random=iter(randoms).__next__)
    assert [backoff.duration() for _ in randoms] == official_delays(1000, 5000, 0.5, randoms)
    assert official_delays(1000, 5000, 0.5, randoms)[:4] == [1000, 2120, 3500, 5000]
    backoff.reset()
    backoff.random = lambda: 0.0
    assert backoff.duration() == 1000
    # far past the cap: no overflow, the cap
    backoff.attempts = 5000
    assert backoff.duration() == 5000
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)


async def test_reconnection_delays_follow_the_backoff(clients: Any) -> None:
    port = free_port()
    randoms = iter([0.95, 0.3, 0.95, 0.3])
    client = clients(
        f"http://127.0.0.1:{port}",
        transports=("websocket",),
        reconnection_attempts=3,
        reconnection_delay=0.1,
        reconnection_delay_max=0.25,
        randomization_factor=0.5,
        random=randoms.__next__,
    )
    times: list[tuple[str, float]] = []
    for name in ("reconnect_attempt", "reconnect_error", "error"):
        client.manager.on(name, lambda *a, name=name: times.append((name, time.monotonic())))
    with pytest.raises(wsio.ConnectionError):
        await client.connect(retry=True)
    # 100 + floor(0.95 * 0.5 * 100) (floor(9.5) is odd: added), 200 + 30 (floor(3.0) odd), 590 capped
    expected = [d / 1000 for d in official_delays(100, 250, 0.5, [0.95, 0.3, 0.95])]
    assert expected == [0.147, 0.23, 0.25]
    starts = [t for name, t in times if name == "reconnect_attempt"]
    failures = [t for name, t in times if name == "error"]
    gaps = [start - failure for failure, start in zip(failures, starts)]
    assert len(starts) == 3
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay - 0.005 <= gap <= delay + 0.15, (gaps, expected)


# -- bad servers ------------------------------------------------------------------------------------


class FakeServer:
    """A TCP server on 127.0.0.1 that answers every connection with *behaviour*."""

    def __init__(self, behaviour: Callable[..., Any]) -> None:
        self.behaviour = behaviour
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                await self.behaviour(reader, writer)
            except (Exception, asyncio.CancelledError):
                pass  # the client went away
            finally:
                writer.close()
                self.tasks.discard(task)

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return head.split(b" ")[1].decode(), body


def _http(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _garbage_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(_http(b"\x00garbage\xff"))
    await writer.drain()
    await asyncio.sleep(1)


async def _not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH\r\n\x00\x01\x02")
    await writer.drain()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)


async def _close_mid_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0{"sid":')
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def _refuse_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(_http(b'{"code":3,"message":"Bad request"}', "400 Bad Request"))
    await writer.drain()


OPEN = b'0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100000}'


def _engine_then(reply: bytes) -> Callable[..., Any]:
    """A polling Engine.IO server that opens, then answers the CONNECT with *reply*."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            target, _body = await _read_request(reader)
            if "sid=" not in target:
                writer.write(_http(OPEN))
            elif _body:
                writer.write(_http(b"ok"))
            else:
                await asyncio.sleep(0.05)
                writer.write(_http(reply))
            await writer.drain()

    return serve


BAD_SERVERS = {
    "garbage": (_garbage_http, ("polling",), "expected an open packet|cannot open"),
    "garbage-websocket": (_garbage_http, ("websocket",), "cannot open"),
    "not-http": (_not_http, ("polling",), "cannot open"),
    "closes": (_close_at_once, ("polling",), "cannot open"),
    "closes-websocket": (_close_at_once, ("websocket",), "cannot open"),
    "closes-mid-response": (_close_mid_response, ("polling",), "cannot open"),
    "silent": (_silent, ("polling",), "timed out|timeout"),
    "silent-websocket": (_silent, ("websocket",), "timed out|timeout"),
    "refuses": (_refuse_handshake, ("polling",), "refused: HTTP 400"),
    "bad-connect-reply": (_engine_then(b"4garbage"), ("polling",), "parse error"),
    "connect-reply-no-sid": (_engine_then(b'40{"nosid":1}'), ("polling",), "no sid"),
    "no-connect-reply": (_engine_then(b"6"), ("polling",), "timeout"),
}


@pytest.mark.parametrize("case", list(BAD_SERVERS))
async def test_bad_server_gives_connect_error(case: str, caplog: pytest.LogCaptureFixture) -> None:
    behaviour, transports, message = BAD_SERVERS[case]
    async with FakeServer(behaviour) as url:
        client = wsio.Client(url, transports=transports, timeout=0.5)
        errors: list[Any] = []
        client.on("connect_error", errors.append)
        start = time.monotonic()
        with caplog.at_level(logging.ERROR), pytest.raises(wsio.ConnectionError) as info:
            await client.connect()
        elapsed = time.monotonic() - start
        assert elapsed < 0.9
        assert re.search(message, str(info.value)), str(info.value)
        assert len(errors) == 1 and isinstance(errors[0], wsio.ConnectionError)
        assert not client.active and not client.manager.reconnecting
        await asyncio.sleep(0.05)
        assert client.manager.engine is None
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_connect_reply_timeout_from_a_real_server(wsio_factory: Any) -> None:
    server = await wsio_factory()
    client = wsio.Client(server.url + "/slow", timeout=0.3)
    start = time.monotonic()
    with pytest.raises(wsio.ConnectionError, match="timeout"):
        await client.connect()
    assert time.monotonic() - start < 0.6
    await asyncio.sleep(0.05)
    assert client.manager.engine is None


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        wsio.Client("ftp://example/")
    with pytest.raises(ValueError):
        wsio.Client("http://127.0.0.1:1", parser="xml")
    with pytest.raises(TypeError):
        wsio.Client("http://127.0.0.1:1", auth="token")
    with pytest.raises(ValueError):
        wsio.Client("http://127.0.0.1:1", transports=("carrier-pigeon",))


# -- SimpleClient -------------------------------------------------------------------------------------


class ThreadedServer:
    """wsio's test server on its own event loop in a thread (for the blocking client)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.peer = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> WsioPeer:
        peer = WsioPeer()
        await peer.start()
        return peer

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.peer.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def threaded_server() -> Iterator[WsioPeer]:
    server = ThreadedServer()
    try:
        yield server.peer
    finally:
        server.close()


def _client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "wsio-simple-client"]


def test_simple_client(threaded_server: WsioPeer) -> None:
    with wsio.SimpleClient(threaded_server.url, transports=("websocket",)) as client:
        assert client.connected and isinstance(client.id, str)
        assert client.receive(timeout=5) == (
            "welcome",
            [{"nsp": "/", "tag": "run1", "recovered": False}],
        )
        assert client.call("echo", 1, b"two") == (1, b"two")
        client.emit("burst", 3)
        assert [client.receive(timeout=5) for _ in range(3)] == [("seq", [i]) for i in range(3)]
        with pytest.raises(TimeoutError):
            client.receive(timeout=0.05)
        with pytest.raises(wsio.AckTimeout):
            client.call("flaky", 77, timeout=0.05)  # the first ack comes after 0.3 s
        # the server calls the client: acknowledged with no arguments
        client.emit("ask", "question", 1)
        assert client.receive(timeout=5) == ("question", [1])
        assert client.receive(timeout=5) == ("answer", [[]])
        client.emit("kick")
        with pytest.raises(wsio.Disconnected):
            client.receive(timeout=5)
    assert not client.connected
    assert _client_threads() == []


def test_simple_client_refused(threaded_server: WsioPeer) -> None:
    client = wsio.SimpleClient()
    with pytest.raises(wsio.ConnectionError) as info:
        client.connect(threaded_server.url + "/private", auth={"token": "no"}, timeout=2)
    assert info.value.data == {"code": 401, "hint": "token"}
    assert not client.connected and _client_threads() == []
    client.connect(threaded_server.url + "/private", auth={"token": "secret"})
    try:
        assert client.call("echo", "ok") == "ok"
    finally:
        client.disconnect()
    assert _client_threads() == []


@pytest.mark.parametrize("ordered", [True, False])
async def test_unordered_client_handler_runs_while_a_call_waits(
    clients: Any, ordered: bool
) -> None:
    """A client handler awaits ``call("x")``; the server's "x" needs the client's "b" first."""
    sio = wsio.Server()

    @sio.on("x")
    async def x(socket: wsio.Socket) -> Any:
        return "x+" + await socket.call("b", timeout=1)

    http = await sio.start("127.0.0.1", 0)
    try:
        client = clients(f"http://127.0.0.1:{http.port}", transports=["websocket"])

        @client.on("a")
        async def a() -> Any:
            return await client.call("x", timeout=3)

        client.on("b", lambda: "B", ordered=ordered)
        await client.connect()
        (socket,) = sio.sockets.values()
        if ordered:
            # "b" waits behind "a", which waits for "x", which waits for "b": the
            # server's call times out, "x" fails and acknowledges with nothing.
            started = time.monotonic()
            assert await socket.call("a", timeout=3) is None
            assert time.monotonic() - started >= 1
        else:
            assert await socket.call("a", timeout=3) == "x+B"
    finally:
        await sio.shutdown()


async def test_client_handlers_run_in_a_task_from_their_first_line(clients: Any) -> None:
    """asyncio.timeout() and current_task() work in a client handler before it waits."""
    sio = wsio.Server()
    http = await sio.start("127.0.0.1", 0)
    try:
        client = clients(f"http://127.0.0.1:{http.port}", transports=["websocket"])

        @client.on("q")
        async def q() -> bool:
            async with asyncio.timeout(1):
                return asyncio.current_task() is not None

        await client.connect()
        (socket,) = sio.sockets.values()
        assert await socket.call("q", timeout=3) is True
    finally:
        await sio.shutdown()
