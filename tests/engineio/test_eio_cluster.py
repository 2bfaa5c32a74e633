"""Sessions without sticky load balancing: three nodes behind a round-robin proxy.

The nodes share an in-process bus here (tests/interop/test_no_sticky.py does
the same over Redis behind nginx). Every new TCP connection goes to the next
node, so the GET, the POST and the WebSocket of one session land on different
nodes and must be served through the session's owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from wsio.engineio import Client, Server
from wsio.engineio.cluster import MemoryNetwork, Router

pytestmark = pytest.mark.asyncio


class RoundRobinProxy:
    """A TCP proxy sending each new connection to the next backend."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.next = 0
        self.hits = [0] * len(ports)
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.next % len(self.ports)
        self.next += 1
        self.hits[index] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.ports[index])
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def cluster() -> AsyncIterator[Any]:
    network = MemoryNetwork()
    servers: list[Server] = []
    buses = []
    ports = []
    for _ in range(3):
        eio = Server(ping_interval=1, ping_timeout=2)
        bus = network.bus()
        eio.router = Router(eio, bus, request_timeout=3)

        @eio.on("message")
        async def echo(session: Any, data: Any) -> None:
            await session.send(data)

        http = await eio.start("127.0.0.1", 0)
        servers.append(eio)
        buses.append(bus)
        ports.append(http.port)
    proxy = RoundRobinProxy(ports)
    port = await proxy.start()
    yield {"servers": servers, "buses": buses, "proxy": proxy, "url": f"http://127.0.0.1:{port}"}
    await proxy.close()
    for eio in servers:
        await eio.shutdown()


async def stream(client: Client, count: int) -> list[Any]:
    got: list[Any] = []
    done = asyncio.Event()

    @client.on("message")
    def message(data: Any) -> None:
        got.append(data)
        if len(got) == count:
            done.set()

    for i in range(count):
        await client.send(f"m{i}" if i % 3 else f"m{i}".encode())
        if i % 10 == 0:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(done.wait(), 15)
    return got


def expected(count: int) -> list[Any]:
    return [f"m{i}" if i % 3 else f"m{i}".encode() for i in range(count)]


@pytest.mark.parametrize("transports", [("polling",), ("polling", "websocket")])
async def test_numbered_messages_through_three_nodes(
    cluster: Any, transports: tuple[str, ...]
) -> None:
    client = Client(cluster["url"], transports=transports, timeout=5)
    await client.connect()
    try:
        owner = client.sid.partition(".")[0]
        assert owner in {bus.node_id for bus in cluster["buses"]}
        got = await stream(client, 60)
        assert got == expected(60)
        if "websocket" in transports:
            for _ in range(100):
                if client.transport == "websocket":
                    break
                await asyncio.sleep(0.02)
            assert client.transport == "websocket"
            more = await stream(client, 30)
            assert more[-30:] == expected(30)
    finally:
        await client.close()
    # The session's requests really did land on several nodes.
    assert sum(1 for hits in cluster["proxy"].hits if hits) >= 2
    routers = [eio.router for eio in cluster["servers"]]
    assert sum(r.forwarded for r in routers) > 0
    if "websocket" in transports:
        assert sum(r.relayed for r in routers) == 1


async def test_session_of_a_vanished_owner_is_unknown(cluster: Any) -> None:
    client = Client(cluster["url"], transports=("polling",), timeout=5)
    closed = asyncio.Event()
    reasons: list[str] = []

    @client.on("close")
    def on_close(reason: str) -> None:
        reasons.append(reason)
        closed.set()

    await client.connect()
    owner = client.sid.partition(".")[0]
    index = [bus.node_id for bus in cluster["buses"]].index(owner)
    cluster["buses"][index].close()  # the owner leaves the cluster
    await cluster["servers"][index].shutdown()
    await asyncio.wait_for(closed.wait(), 10)
    assert reasons and reasons[0] in (
        "transport error",
        "transport close",
        "forced close",
        "ping timeout",
    )
