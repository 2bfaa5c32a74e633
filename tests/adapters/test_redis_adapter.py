"""wsio's Redis adapter between wsio nodes sharing a private redis-server.

The nodes are ``wsio.Server`` instances in this test's event loop, each with
its own Redis connections (a cluster in one process); the clients are
``wsio.Client`` instances over WebSocket. Every check is on what a client or
a node actually received. Both wire formats run every cluster scenario.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import wsio
from support.cluster import Recorder, connect
from support.procs import free_port, start_redis, stop
from support.sio import until
from wsio.adapters import ClusterError, RedisAdapter, RemoteSocket
from wsio.adapters.redis import Codec, _RedisLink
from wsio.socketio.socket import DONE

MODES = ["sharded", "classic"]


class Cluster:
    """wsio nodes on one Redis, and their clients."""

    def __init__(self, redis_port: int, mode: str, **adapter_options: Any) -> None:
        self.url = f"redis://127.0.0.1:{redis_port}"
        self.mode = mode
        self.adapter_options = adapter_options
        self.nodes: list[wsio.Server] = []
        self.ports: list[int] = []
        self.clients: list[wsio.Client] = []

    async def node(self, setup: Callable[[wsio.Server], None] | None = None) -> wsio.Server:
        sio = wsio.Server(adapter=RedisAdapter(self.url, mode=self.mode, **self.adapter_options))

        @sio.on("connect")
        async def connect(socket: wsio.Socket, auth: Any) -> None:
            auth = auth or {}
            socket.data = {"name": auth.get("name")}
            await socket.join(auth.get("rooms", []))

        if setup is not None:
            setup(sio)
        http = await sio.start("127.0.0.1", 0)
        self.nodes.append(sio)
        self.ports.append(http.port)
        return sio

    async def client(self, node: int, name: str, rooms: list[str] = (), **kw: Any) -> Recorder:  # type: ignore[assignment]
        recorder = await connect(self.ports[node], name, rooms, **kw)
        self.clients.append(recorder.client)
        return recorder

    def link(self, node: int) -> _RedisLink:
        sio = self.nodes[node]
        link = sio.namespaces["/"].adapter.link  # type: ignore[attr-defined]
        assert isinstance(link, _RedisLink)
        return link

    async def close(self) -> None:
        for client in self.clients:
            await client.disconnect()
        for sio in self.nodes:
            await sio.shutdown()


@pytest.fixture
async def cluster_factory(redis_server: int) -> AsyncIterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(mode: str, **options: Any) -> Cluster:
        c = Cluster(redis_server, mode, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


@pytest.mark.parametrize("mode", MODES)
async def test_broadcasts_reach_rooms_on_every_node(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    cl = cluster_factory(mode)
    a = await cl.node()
    await cl.node()
    a1 = await cl.client(0, "a1", ["r1"])
    b1 = await cl.client(1, "b1", ["r1", "r2"])
    b2 = await cl.client(1, "b2", ["r2"])
    b3 = await cl.client(1, "b3", [])

    await a.to("r1").emit("m", "to r1")
    await a.to("r2").except_("r1").emit("m", "r2 except r1")
    await a.to(["r1", "r2"]).emit("m", "r1+r2")
    await a.emit("m", "all", {"n": [1, 2.5, None, True]})
    await a.local.emit("m", "local")
    await a.volatile.emit("m", "volatile")
    await a.to("r2").emit("m", "bytes", b"\x00\x01\xff")
    await a.to(b3.client.id).emit("m", "by id")  # type: ignore[arg-type]
    await a.to("nobody").emit("m", "nobody")
    await a.emit("m", "end")
    everyone = (a1, b1, b2, b3)
    await until(lambda: all(("m", "end") in r.seen for r in everyone))

    def got(r: Recorder) -> list[Any]:
        return [e[0] for e in r.events("m")]

    assert got(a1) == ["to r1", "r1+r2", "all", "local", "volatile", "end"]
    assert got(b1) == ["to r1", "r1+r2", "all", "volatile", "bytes", "end"]
    assert got(b2) == ["r2 except r1", "r1+r2", "all", "volatile", "bytes", "end"]
    assert got(b3) == ["all", "volatile", "by id", "end"]
    assert ("m", "all", {"n": [1, 2.5, None, True]}) in b3.seen
    assert ("m", "bytes", b"\x00\x01\xff") in b2.seen


@pytest.mark.parametrize("mode", MODES)
async def test_a_socket_broadcast_from_the_other_node(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    def setup(sio: wsio.Server) -> None:
        @sio.on("shout")
        async def shout(socket: wsio.Socket, text: str) -> None:
            await socket.to("r1").emit("heard", text)  # everyone in r1 but the sender

    cl = cluster_factory(mode)
    await cl.node(setup)
    await cl.node(setup)
    a1 = await cl.client(0, "a1", ["r1"])
    b1 = await cl.client(1, "b1", ["r1"])
    b2 = await cl.client(1, "b2", ["r1"])
    await b1.client.call("shout", "hi from b1")
    await until(lambda: ("heard", "hi from b1") in a1.seen and ("heard", "hi from b1") in b2.seen)
    await asyncio.sleep(0.1)
    assert b1.events("heard") == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_node_receives_only_the_rooms_of_its_clients(
    cluster_factory: Callable[..., Cluster],
    mode: str,
    redis_server: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[Codec] = []
    for name in ("decode", "unpack"):
        original = getattr(Codec, name)

        def counting(self: Codec, data: bytes, original: Any = original) -> Any:
            decoded.append(self)
            return original(self, data)

        monkeypatch.setattr(Codec, name, counting)
    cl = cluster_factory(mode)
    a = await cl.node()
    await cl.node()
    a1 = await cl.client(0, "a1", ["lonely"])
    b1 = await cl.client(1, "b1", ["shared"])
    link_a, link_b = cl.link(0), cl.link(1)
    codec_a = a.namespaces["/"].adapter.codec  # type: ignore[attr-defined]
    received_a, received_b = link_a.received, link_b.received
    decoded.clear()
    for i in range(50):
        a.to("lonely").emit("m", i)
    await a.to("shared").emit("m", "barrier")
    await until(lambda: ("m", "barrier") in b1.seen)
    await asyncio.sleep(0.05)
    assert [e[0] for e in a1.events("m")] == list(range(50))
    # Only the broadcast to "shared" travelled to node B.
    assert link_b.received - received_b == 1
    # Node A got its own 50 broadcasts back from Redis and decoded none of them.
    assert link_a.received - received_a == 50
    assert codec_a not in decoded and len(decoded) == 1
    # Redis knows one subscriber (node A) for the room's channel.
    r = redis.Redis(port=redis_server)
    try:
        command = "SHARDNUMSUB" if mode == "sharded" else "NUMSUB"
        assert r.execute_command("PUBSUB", command, "socket.io#/#lonely#")[1] == 1
        assert r.execute_command("PUBSUB", command, "socket.io#/#shared#")[1] == 1
        # A room subscription goes when the room's last member leaves.
        await cl.clients[0].disconnect()
        await asyncio.sleep(0.1)
        assert r.execute_command("PUBSUB", command, "socket.io#/#lonely#")[1] == 0
    finally:
        r.close()


@pytest.mark.parametrize("mode", MODES)
async def test_sockets_join_leave_and_disconnect_across_nodes(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    cl = cluster_factory(mode)
    a = await cl.node()
    b = await cl.node()
    a1 = await cl.client(0, "a1", ["r1"])
    b1 = await cl.client(1, "b1", ["r1"])
    b2 = await cl.client(1, "b2", ["kick"])
    sb1 = b.sockets[b1.client.id]  # type: ignore[index]

    await a.in_("r1").sockets_join(["x", "y"])
    await until(lambda: {"x", "y"} <= sb1.rooms)
    assert {"x", "y"} <= a.sockets[a1.client.id].rooms  # type: ignore[index]
    await a.to("x").emit("m", "to x")
    await until(lambda: ("m", "to x") in b1.seen and ("m", "to x") in a1.seen)

    await a.in_("r1").sockets_leave("x")
    await until(lambda: "x" not in sb1.rooms)
    assert "y" in sb1.rooms

    await a.in_("kick").disconnect_sockets(True)
    await until(lambda: b2.disconnects == ["io server disconnect"])
    assert b1.disconnects == []


@pytest.mark.parametrize("mode", MODES)
async def test_fetch_sockets_describes_remote_sockets(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    cl = cluster_factory(mode)
    a = await cl.node()
    await cl.node()
    a1 = await cl.client(0, "a1", ["r1"])
    b1 = await cl.client(1, "b1", ["r1", "r2"], headers={"X-Test": "yes"})
    await cl.client(1, "b2", [])

    started = time.monotonic()
    sockets = await a.in_("r1").fetch_sockets()
    # Redis tells how many nodes there are: no waiting for the 5 s request timeout.
    assert time.monotonic() - started < 1.0
    by_id = {s.id: s for s in sockets}
    assert set(by_id) == {a1.client.id, b1.client.id}
    assert isinstance(by_id[a1.client.id], wsio.Socket)
    remote = by_id[b1.client.id]
    assert isinstance(remote, RemoteSocket)
    assert remote.rooms == {b1.client.id, "r1", "r2"}
    assert remote.data == {"name": "b1"}
    assert remote.handshake.auth == {"name": "b1", "rooms": ["r1", "r2"]}
    assert remote.handshake.address == "127.0.0.1"
    assert remote.handshake.headers.get("x-test") == "yes"
    assert remote.handshake.query.get("EIO") == "4"

    assert len(await a.fetch_sockets()) == 3
    # A remote socket can be acted on.
    await remote.emit("m", "just you")
    await remote.join("vip")
    await until(lambda: ("m", "just you") in b1.seen)
    await until(lambda: "vip" in cl.nodes[1].sockets[b1.client.id].rooms)  # type: ignore[index]
    [vip] = await a.in_("vip").fetch_sockets()
    assert vip.id == b1.client.id
    await remote.disconnect()
    await until(lambda: b1.disconnects == ["io server disconnect"])


@pytest.mark.parametrize("mode", MODES)
async def test_server_side_emit_with_answers_from_the_other_nodes(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    calls: list[tuple[str, Any]] = []

    def setup_for(tag: str) -> Callable[[wsio.Server], None]:
        def setup(sio: wsio.Server) -> None:
            @sio.on_server_event("ping")
            async def ping(x: Any) -> Any:
                calls.append((tag, x))
                await asyncio.sleep(0.01)
                return {"tag": tag, "x": x}

            @sio.on_server_event("pair")
            def pair(x: Any) -> Any:
                return (tag, x)

        return setup

    cl = cluster_factory(mode)
    a = await cl.node(setup_for("a"))
    await cl.node(setup_for("b"))
    await cl.node(setup_for("c"))

    started = time.monotonic()
    answers = await a.server_side_emit("ping", 7, timeout=5)
    assert time.monotonic() - started < 1.0
    assert sorted(answers, key=lambda d: d["tag"]) == [{"tag": "b", "x": 7}, {"tag": "c", "x": 7}]
    assert sorted(await a.server_side_emit("pair", 1, timeout=5)) == [["b", 1], ["c", 1]]

    calls.clear()
    assert await a.server_side_emit("ping", "no answer wanted") == []
    await until(lambda: len(calls) == 2)
    assert sorted(calls) == [("b", "no answer wanted"), ("c", "no answer wanted")]

    # A node with no handler does not answer: the answers so far come with the timeout.
    await cl.node()
    with pytest.raises(wsio.AckTimeout) as info:
        await a.server_side_emit("ping", 8, timeout=0.5)
    assert sorted(d["tag"] for d in info.value.responses) == ["b", "c"]


@pytest.mark.parametrize("mode", MODES)
async def test_broadcast_acks_across_nodes(
    cluster_factory: Callable[..., Cluster], mode: str
) -> None:
    cl = cluster_factory(mode)
    a = await cl.node()
    b = await cl.node()
    await cl.client(0, "a1", ["r1"])
    await cl.client(1, "b1", ["r1"])
    await cl.client(1, "b2", [])

    started = time.monotonic()
    assert sorted(await a.timeout(5).call("q", 2)) == [20, 20, 20]
    assert time.monotonic() - started < 1.0
    assert await a.to("r1").timeout(5).call("q", 3) == [30, 30]
    assert sorted(await b.local.timeout(5).call("q", 4)) == [40, 40]


@pytest.mark.parametrize("mode", MODES)
async def test_emitter_reaches_every_node(
    cluster_factory: Callable[..., Cluster], mode: str, redis_server: int
) -> None:
    pings: list[Any] = []

    def setup(sio: wsio.Server) -> None:
        sio.on_server_event("ping", pings.append)
        sio.of("/admin")

    cl = cluster_factory(mode)
    await cl.node(setup)
    b = await cl.node(setup)
    a1 = await cl.client(0, "a1", ["room"])
    b1 = await cl.client(1, "b1", ["room"])
    b2 = await cl.client(1, "b2", ["kick"])
    admin = await cl.client(0, "adm", [], nsp="/admin")

    async with wsio.Emitter(cl.url, mode=mode) as emitter:
        await emitter.to("room").emit("news", "to room", b"\x07")
        await emitter.emit("news", "to all")
        await emitter.except_("room").emit("news", "except room")
        await emitter.of("/admin").emit("news", "admin")
        await emitter.in_("room").sockets_join("joined")
        await until(lambda: "joined" in b.sockets[b1.client.id].rooms)  # type: ignore[index]
        await emitter.to("joined").emit("news", "to joined")
        await emitter.server_side_emit("ping", "from emitter")
        await emitter.in_("kick").disconnect_sockets(True)
    await until(lambda: ("news", "to joined") in a1.seen and ("news", "to joined") in b1.seen)
    await until(lambda: b2.disconnects == ["io server disconnect"])
    for r in (a1, b1):
        assert r.events("news") == [("to room", b"\x07"), ("to all",), ("to joined",)]
    assert b2.events("news") == [("to all",), ("except room",)]
    assert admin.events("news") == [("admin",)]
    await until(lambda: len(pings) == 2)
    assert pings == ["from emitter", "from emitter"]


async def test_recovery_logs_every_event_in_redis(redis_server: int) -> None:
    """With recovery on, events are logged in the namespace's Redis stream (any node can replay them)."""
    url = f"redis://127.0.0.1:{redis_server}"
    nodes = [
        wsio.Server(adapter=RedisAdapter(url), connection_state_recovery=True) for _ in range(2)
    ]
    ports = [(await sio.start("127.0.0.1", 0)).port for sio in nodes]
    client = wsio.Client(
        f"http://127.0.0.1:{ports[1]}", transports=["websocket"], reconnection=False
    )
    got: list[Any] = []
    client.on("m", got.append)
    try:
        await client.connect()
        link = nodes[1].namespaces["/"].adapter.link  # type: ignore[attr-defined]
        sent = link.publisher.sent
        socket = nodes[1].sockets[client.id]  # type: ignore[index]
        await socket.emit("m", "direct")  # logged for recovery, but not published
        await nodes[0].emit("m", "remote")
        await until(lambda: got == ["direct", "remote"])
        assert link.publisher.sent == sent
        entries = await link.command("XRANGE", "socket.io#/#log", "-", "+")
        assert len(entries) == 2  # both, whichever node sent them
        # The offsets the client saw (stripped from the arguments) are the entry ids.
        assert client._last_offset == entries[1][0].decode()  # type: ignore[attr-defined]
        assert nodes[1].namespaces["/"].adapter._log == []  # nothing kept in memory
    finally:
        await client.disconnect()
        for sio in nodes:
            await sio.shutdown()


async def test_broadcasts_wait_only_when_redis_lags(
    cluster_factory: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    cl = cluster_factory("sharded")
    a = await cl.node()
    await cl.node()
    b1 = await cl.client(1, "b1", ["r"])
    link = cl.link(0)
    assert link.publisher is not None
    # Below the high-water mark a broadcast needs no waiting, like an emit to a socket.
    assert a.to("r").emit("m", 1) is DONE
    monkeypatch.setattr(wsio.adapters.redis, "HIGH_WATER", 0)
    pending = a.to("r").emit("m", 2)
    assert pending is not DONE
    assert link.publisher.backlog == 2
    await pending
    assert link.publisher.backlog == 0
    await until(lambda: b1.events("m") == [(1,), (2,)])


# -- Redis failures ----------------------------------------------------------------------------


async def test_redis_restart_keeps_local_service_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wsio.adapters.redis")
    port = free_port()
    proc = start_redis(port, tmp_path)
    cl = Cluster(port, "sharded", reconnect_delay=0.05, reconnect_delay_max=0.2)
    try:

        def setup_b(sio: wsio.Server) -> None:
            @sio.on_server_event("slow")
            async def slow() -> str:
                await asyncio.sleep(2)
                return "late"

        a = await cl.node()
        await cl.node(setup_b)
        a1 = await cl.client(0, "a1", ["room"])
        b1 = await cl.client(1, "b1", ["room"])
        await a.to("room").emit("m", "before")
        await until(lambda: ("m", "before") in b1.seen)

        in_flight = asyncio.ensure_future(a.server_side_emit("slow", timeout=10))
        await asyncio.sleep(0.2)
        stop(proc)
        started = time.monotonic()
        with pytest.raises(ClusterError, match="lost"):
            await in_flight
        assert time.monotonic() - started < 2

        # Redis is gone: local clients are still served, cluster requests fail clearly.
        await until(lambda: not cl.link(0).up)
        await a.to("room").emit("m", "during")
        await until(lambda: ("m", "during") in a1.seen)
        with pytest.raises(ClusterError, match="unreachable"):
            await a.fetch_sockets()
        with pytest.raises(ClusterError):
            await a.server_side_emit("anything")
        assert ("m", "during") not in b1.seen

        proc = start_redis(port, tmp_path)
        await until(lambda: cl.link(0).up and cl.link(1).up, timeout=10)
        await a.to("room").emit("m", "after")
        await until(lambda: ("m", "after") in b1.seen)
        assert len(await a.fetch_sockets()) == 2
        assert [e[0] for e in b1.events("m")] == ["before", "after"]
    finally:
        await cl.close()
        stop(proc)
    messages = [r.getMessage() for r in caplog.records]
    assert any("Redis connection lost" in m for m in messages)
    restored = [m for m in messages if "Redis connection restored after" in m]
    dropped = sorted(int(re.search(r"; (\d+) message", m).group(1)) for m in restored)  # type: ignore[union-attr]
    # Node A dropped the broadcast "during" and the server-side emit; node B nothing.
    assert dropped == [0, 2]


async def test_redis_unreachable_at_start(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    sio = wsio.Server(adapter=RedisAdapter(f"redis://127.0.0.1:{port}", connect_timeout=0.5))
    http = await sio.start("127.0.0.1", 0)
    client = wsio.Client(
        f"http://127.0.0.1:{http.port}", transports=["websocket"], reconnection=False
    )
    got: list[Any] = []
    client.on("m", got.append)
    try:
        await client.connect()
        await sio.emit("m", "local still works")
        await until(lambda: got == ["local still works"])
        with pytest.raises(ClusterError):
            await sio.fetch_sockets()
    finally:
        await client.disconnect()
        await sio.shutdown()
    assert any("cannot connect to Redis" in r.getMessage() for r in caplog.records)


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"wsio\[redis\]"):
        RedisAdapter()
    with pytest.raises(ImportError, match=r"wsio\[redis\]"):
        wsio.Emitter()


def test_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        RedisAdapter(mode="pattern")


async def test_recovery_loses_nothing_logged_while_the_session_is_restored(
    redis_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events logged between the replay's read and the room subscription are caught up, once."""
    from wsio.adapters.redis_recovery import SharedRecovery

    url = f"redis://127.0.0.1:{redis_server}"
    recovery = wsio.RecoveryOptions(max_disconnection_duration=10)
    ticker = wsio.Server(adapter=RedisAdapter(url), connection_state_recovery=recovery)
    node = wsio.Server(adapter=RedisAdapter(url), connection_state_recovery=recovery)

    @node.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        if not socket.recovered:
            await socket.join("r")

    await ticker.start("127.0.0.1", 0)
    port = (await node.start("127.0.0.1", 0)).port
    client = wsio.Client(
        f"http://127.0.0.1:{port}", transports=["websocket"], reconnection_delay=0.05
    )
    ticks: list[int] = []
    client.on("tick", ticks.append)
    running = True

    async def tick() -> None:
        i = 0
        while running:
            await ticker.to("r").emit("tick", i)
            i += 1
            await asyncio.sleep(0.005)

    original_read = SharedRecovery.read

    async def slow_read(self: SharedRecovery, start: str, rooms: set[str]) -> list[Any]:
        result = await original_read(self, start, rooms)
        await asyncio.sleep(0.1)  # ticks keep being logged meanwhile
        return result

    task = asyncio.ensure_future(tick())
    try:
        await client.connect()
        await until(lambda: len(ticks) > 10)
        monkeypatch.setattr(SharedRecovery, "read", slow_read)
        await client.manager.engine.close()  # a transport close: the client recovers
        await until(lambda: client.connected and client.recovered, timeout=10)
        count = len(ticks)
        await until(lambda: len(ticks) > count + 30)
    finally:
        running = False
        await task
        await client.disconnect()
        await ticker.shutdown()
        await node.shutdown()
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), "every tick once, in order"


@pytest.mark.parametrize("logged", [True, False], ids=["with-recovery", "without"])
@pytest.mark.parametrize("mode", ["sharded", "classic"])
async def test_emitter_events_are_recovered(redis_server: int, mode: str, logged: bool) -> None:
    """An Emitter told the nodes' recovery setting logs its broadcasts: a client away gets them."""
    url = f"redis://127.0.0.1:{redis_server}"
    recovery = wsio.RecoveryOptions(max_disconnection_duration=10)
    node = wsio.Server(adapter=RedisAdapter(url, mode=mode), connection_state_recovery=recovery)

    @node.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        if not socket.recovered:
            await socket.join("r")

    port = (await node.start("127.0.0.1", 0)).port
    client = wsio.Client(
        f"http://127.0.0.1:{port}",
        transports=["websocket"],
        reconnection_delay=0.5,
        randomization_factor=0,
    )
    got: list[Any] = []
    client.on("news", got.append)
    emitter = wsio.Emitter(url, mode=mode, connection_state_recovery=recovery if logged else False)
    try:
        await client.connect()
        await emitter.to("r").emit("news", 0)
        await until(lambda: got == [0])
        await client.manager.engine.close()  # a transport close: the client will recover
        await until(lambda: not client.connected)
        for i in (1, 2, 3):
            await emitter.to("r").emit("news", i)
        await emitter.to("r").volatile.emit("news", "volatile")  # never logged
        await until(lambda: client.connected, timeout=10)
        assert client.recovered
        await emitter.to("r").emit("news", 4)
        await until(lambda: got[-1] == 4)
        assert got == ([0, 1, 2, 3, 4] if logged else [0, 4])
    finally:
        await emitter.close()
        await client.disconnect()
        await node.shutdown()


@pytest.mark.parametrize("recovery", [False, True], ids=["plain", "logging"])
async def test_emitter_without_redis_raises_cluster_error(recovery: bool) -> None:
    """No Redis: an emit fails with ClusterError (never hangs), in both of the emitter's paths."""
    emitter = wsio.Emitter(
        f"redis://127.0.0.1:{free_port()}", connect_timeout=1, connection_state_recovery=recovery
    )
    try:
        with pytest.raises(ClusterError):
            await asyncio.wait_for(emitter.to("r").emit("news", 1), 10)
        with pytest.raises(ClusterError):
            await asyncio.wait_for(emitter.sockets_join("x"), 10)
    finally:
        await asyncio.wait_for(emitter.close(), 10)
