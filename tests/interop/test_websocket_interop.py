"""wsio's WebSocket against real peers: Node `ws` both ways, Python `websockets` as a client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from support.procs import NODE_DIR, free_port, node_env, require_binary, run_node, start, stop
from wsio.websocket import (
    ConnectionClosed,
    ConnectionClosedError,
    DeflateOptions,
    WebSocket,
    WebSocketServer,
    connect,
    serve,
)

BIG = 16 * 2**20


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# -- a wsio server with a few behaviours, by path ---------------------------------------


class Behaviours:
    """The handler of the wsio server the Node / websockets clients talk to.

    ``/echo`` echoes, ``/close`` closes with 4001 after the first message,
    ``/boom`` raises in the handler, ``/shutdown`` closes the whole server.
    """

    def __init__(self) -> None:
        self.server: WebSocketServer | None = None
        self.closes: list[tuple[str, int | None, str | None]] = []
        self.deflate: list[Any] = []

    async def __call__(self, ws: WebSocket) -> None:
        self.deflate.append(ws.protocol.deflate)
        try:
            async for message in ws:
                if ws.path == "/echo":
                    await ws.send(message)
                elif ws.path == "/close":
                    await ws.close(4001, "bye from wsio")
                elif ws.path == "/boom":
                    raise RuntimeError("handler failure")
                elif ws.path == "/shutdown":
                    assert self.server is not None
                    asyncio.get_running_loop().create_task(self.server.close())
        except ConnectionClosed:
            pass
        finally:
            self.closes.append((ws.path, ws.close_code, ws.close_reason))


async def behaviours_server(max_size: int) -> tuple[WebSocketServer, Behaviours]:
    behaviours = Behaviours()
    server = await serve(behaviours, "127.0.0.1", 0, max_size=max_size, ping_interval=None)
    behaviours.server = server
    return server, behaviours


@pytest.fixture
async def wsio_server() -> AsyncIterator[tuple[WebSocketServer, Behaviours]]:
    """The wsio server with room for 16 MiB messages."""
    server, behaviours = await behaviours_server(32 * 2**20)
    try:
        yield server, behaviours
    finally:
        await asyncio.wait_for(server.close(), 10)


@pytest.fixture
async def small_wsio_server() -> AsyncIterator[tuple[WebSocketServer, Behaviours]]:
    """The wsio server with max_size=1000."""
    server, behaviours = await behaviours_server(1000)
    try:
        yield server, behaviours
    finally:
        await asyncio.wait_for(server.close(), 10)


async def node_client(
    port: int, path: str, scenario: str, **options: Any
) -> tuple[int, list[dict[str, Any]], str]:
    """Run ws_client.js in a thread (the server runs on this event loop)."""
    result = await asyncio.to_thread(
        run_node, "ws_client.js", f"ws://127.0.0.1:{port}{path}", scenario, json.dumps(options)
    )
    return result.returncode, result.lines, result.stderr


def events(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == kind]


# -- Node ws client -> wsio server ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "negotiated", "size"),
    [
        ({}, {"local_max_window_bits": 12, "remote_max_window_bits": 12}, 2**20),
        ({"perMessageDeflate": False}, None, BIG),
        (
            {
                "perMessageDeflate": {
                    "threshold": 0,
                    "serverMaxWindowBits": 8,
                    "clientMaxWindowBits": 9,
                }
            },
            {"local_max_window_bits": 8, "remote_max_window_bits": 9},
            2**20,
        ),
        (
            {
                "perMessageDeflate": {
                    "threshold": 0,
                    "serverNoContextTakeover": True,
                    "clientNoContextTakeover": True,
                    "serverMaxWindowBits": 10,
                    "clientMaxWindowBits": True,
                }
            },
            {
                "local_max_window_bits": 10,
                "local_no_context_takeover": True,
                "remote_no_context_takeover": True,
                "remote_max_window_bits": 12,
            },
            2**20,
        ),
    ],
)
async def test_node_client_echo(
    wsio_server: tuple[WebSocketServer, Behaviours],
    options: dict[str, Any],
    negotiated: dict[str, Any] | None,
    size: int,
) -> None:
    server, behaviours = wsio_server
    rc, lines, err = await node_client(server.port, "/echo", "echo", size=size, **options)
    assert rc == 0, (lines, err)
    (opened,) = events(lines, "open")
    (deflate,) = behaviours.deflate
    if negotiated is None:
        assert opened["extensions"] == ""
        assert deflate is None
    else:
        assert opened["extensions"] == "permessage-deflate"
        assert {k: getattr(deflate, k) for k in negotiated} == negotiated
    messages = events(lines, "message")
    assert [m.get("data") for m in messages[:3]] == ["hello wsio", [0, 1, 2, 255], "fragmént"]
    assert messages[3]["sha"] == sha("compressible " * 10000) and not messages[3]["binary"]
    (sent_big,) = events(lines, "sent-big")
    assert messages[4]["binary"] and messages[4]["length"] == size
    assert messages[4]["sha"] == sent_big["sha"]
    assert events(lines, "pong") == [{"event": "pong", "data": "are you there"}]
    # The server echoes the code of our Close frame (RFC 6455 section 5.5.1).
    assert events(lines, "close") == [{"event": "close", "code": 4000, "reason": ""}]
    await asyncio.sleep(0.05)
    assert behaviours.closes == [("/echo", 4000, "done")]


@pytest.mark.parametrize(
    ("path", "scenario", "options", "code", "reason", "server_view"),
    [
        ("/close", "wait-close", {}, 4001, "bye from wsio", 4001),
        ("/boom", "wait-close", {}, 1011, "internal error", None),
        ("/shutdown", "wait-close", {}, 1001, "server shutting down", 1001),
        ("/echo", "too-big", {"size": 1001}, 1009, None, 1009),
        ("/echo", "invalid-utf8", {}, 1007, None, 1007),
    ],
)
async def test_node_client_close_paths(
    path: str,
    scenario: str,
    options: dict[str, Any],
    code: int,
    reason: str | None,
    server_view: int | None,
) -> None:
    server, behaviours = await behaviours_server(1000 if scenario == "too-big" else 2**20)
    try:
        rc, lines, err = await node_client(server.port, path, scenario, **options)
    finally:
        await asyncio.wait_for(server.close(), 10)
    assert rc == 0, (lines, err)
    (closed,) = events(lines, "close")
    assert closed["code"] == code
    if reason is not None:
        assert closed["reason"] == reason
    await asyncio.sleep(0.05)
    ((_, seen_code, _),) = behaviours.closes
    # The server's view: the code it received back (echo) or 1006 after failing
    # (None: the handler raised before the connection closed).
    assert seen_code in (server_view, 1006) if server_view else seen_code is None


async def test_node_client_abrupt_close(wsio_server: tuple[WebSocketServer, Behaviours]) -> None:
    server, behaviours = wsio_server
    rc, lines, err = await node_client(server.port, "/echo", "abort")
    assert rc == 0, (lines, err)
    await asyncio.sleep(0.2)
    assert behaviours.closes == [("/echo", 1006, "")]
    # Still serving.
    rc, lines, err = await node_client(server.port, "/close", "wait-close")
    assert events(lines, "close")[0]["code"] == 4001


async def test_node_client_answers_keepalive() -> None:
    async def handler(ws: WebSocket) -> None:
        await asyncio.sleep(1)
        assert ws.open  # the Pongs kept it alive
        await ws.close(1000, "enough")

    server = await serve(handler, "127.0.0.1", 0, ping_interval=0.15, ping_timeout=0.1)
    try:
        rc, lines, err = await node_client(server.port, "/", "wait-close")
    finally:
        await server.close()
    assert rc == 0, (lines, err)
    assert len(events(lines, "ping")) >= 4
    assert events(lines, "close") == [{"event": "close", "code": 1000, "reason": "enough"}]


# -- wsio client -> Node ws server ----------------------------------------------------


class NodeServer:
    """ws_server.js running on a free port; its JSON log is read per connection id."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def url(self, variant: str, action: str) -> tuple[str, str]:
        conn_id = uuid.uuid4().hex[:12]
        return f"ws://127.0.0.1:{self.port}/{variant}/{action}/{conn_id}", conn_id

    async def events(
        self, conn_id: str, until: str = "close", timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The server's events for *conn_id*, waiting until one of kind *until*."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]
            mine = [x for x in lines if x.get("id") == conn_id]
            if (
                any(x["event"] == until for x in mine)
                or asyncio.get_running_loop().time() > deadline
            ):
                return mine
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeServer]:
    node = require_binary("node")
    env = node_env()
    port = free_port()
    log = tmp_path_factory.mktemp("node-ws") / "server.log"
    with log.open("wb") as out:
        proc = start(
            [node, str(NODE_DIR / "ws_server.js"), str(port)],
            port,
            cwd=NODE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield NodeServer(port, log)
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("variant", "size"), [("deflate", 2**20), ("plain", BIG), ("tight", 2**20)]
)
async def test_wsio_client_echo(node_server: NodeServer, variant: str, size: int) -> None:
    uri, conn_id = node_server.url(variant, "echo")
    async with connect(uri, max_size=32 * 2**20, ping_interval=None) as ws:
        deflate = ws.protocol.deflate
        assert (deflate is not None) is (variant != "plain")
        if variant == "tight":
            assert deflate.local_no_context_takeover and deflate.remote_no_context_takeover
            assert deflate.remote_max_window_bits == 10
            assert deflate.local_max_window_bits == 11
        await ws.send("hello node")
        assert await ws.recv() == "hello node"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
        await ws.send(["frag", "mént"])
        assert await ws.recv() == "fragmént"
        text = "compress me please " * 5000
        await ws.send(text)
        assert await ws.recv() == text
        for _ in range(2):  # context takeover (or not) across messages
            await ws.send(text)
            assert await ws.recv() == text
        blob = os.urandom(size)
        await ws.send(blob)
        assert await ws.recv() == blob
        latency = await asyncio.wait_for(await ws.ping(), 5)
        assert latency >= 0
        await ws.close(4002, "client done")
    seen = await node_server.events(conn_id)
    assert [e["length"] for e in seen if e["event"] == "message"] == [
        10,
        3,
        len("fragmént".encode()),
        len(text),
        len(text),
        len(text),
        size,
    ]
    assert [e["sha"] for e in seen if e["event"] == "message"][-1] == sha(blob)
    assert seen[-1] == {"id": conn_id, "event": "close", "code": 4002, "reason": "client done"}
    assert ws.close_code == 4002


async def test_wsio_client_compression_off(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("deflate", "echo")
    async with connect(uri, compression=None, ping_interval=None) as ws:
        assert ws.protocol.deflate is None
        await ws.send("x" * 5000)
        assert await ws.recv() == "x" * 5000
    seen = await node_server.events(conn_id)
    assert seen[0]["extensions"] == ""
    assert seen[-1]["code"] == 1000


async def test_wsio_client_forces_8_bit_window(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("deflate", "echo")
    opts = DeflateOptions(server_max_window_bits=8, client_max_window_bits=8)
    async with connect(uri, compression=opts, ping_interval=None) as ws:
        assert ws.protocol.deflate is not None
        assert ws.protocol.deflate.remote_max_window_bits == 8
        for text in ("window of eight " * 3000, "another message, same context " * 100):
            await ws.send(text)
            assert await ws.recv() == text
    seen = await node_server.events(conn_id)
    assert seen[-1]["code"] == 1000


async def test_wsio_client_big_from_node(node_server: NodeServer) -> None:
    uri, _ = node_server.url("deflate", "big")
    async with connect(uri, max_size=BIG, ping_interval=None) as ws:
        await ws.send("go")
        assert await ws.recv() == b"\x07" * BIG


async def test_wsio_client_fragments_and_ping_from_node(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("plain", "fragments")
    async with connect(uri, ping_interval=None) as ws:
        await ws.send("go")
        assert await ws.recv() == "fragmént"
    uri, conn_id = node_server.url("deflate", "ping")
    async with connect(uri, ping_interval=None) as ws:
        await ws.send("go")
        seen = await node_server.events(conn_id, until="pong")
        assert {"id": conn_id, "event": "pong", "data": "node-ping"} in seen


async def test_wsio_client_server_closes(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("deflate", "close")
    ws = await connect(uri, ping_interval=None)
    await ws.send("bye?")
    with pytest.raises(ConnectionClosedError) as info:
        await ws.recv()
    assert (info.value.code, info.value.reason) == (4001, "node bye")
    await asyncio.wait_for(ws.wait_closed(), 5)
    seen = await node_server.events(conn_id)
    assert seen[-1]["code"] == 4001


async def test_wsio_client_normal_close_both_ways(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("plain", "echo")
    async with connect(uri, ping_interval=None) as ws:
        await ws.send("x")
        await ws.recv()
    assert ws.close_code == 1000
    seen = await node_server.events(conn_id)
    assert seen[-1] == {"id": conn_id, "event": "close", "code": 1000, "reason": ""}


async def test_wsio_client_abrupt_close(node_server: NodeServer) -> None:
    uri, _ = node_server.url("plain", "terminate")
    ws = await connect(uri, ping_interval=None)
    await ws.send("x")
    with pytest.raises(ConnectionClosedError) as info:
        await ws.recv()
    assert info.value.code == 1006


async def test_wsio_client_invalid_utf8_from_node(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("plain", "invalid-utf8")
    ws = await connect(uri, ping_interval=None)
    await ws.send("x")
    with pytest.raises(ConnectionClosedError) as info:
        await ws.recv()
    assert info.value.sent_code == 1007
    seen = await node_server.events(conn_id)
    assert seen[-1]["code"] == 1007


async def test_wsio_client_too_big_for_node(node_server: NodeServer) -> None:
    uri, conn_id = node_server.url("small", "echo")
    ws = await connect(uri, ping_interval=None)
    await ws.send("x" * 1001)
    with pytest.raises(ConnectionClosedError) as info:
        await ws.recv()
    assert info.value.code == 1009
    seen = await node_server.events(conn_id)
    assert seen[-1]["code"] == 1006  # node fails the connection without waiting for our echo


# -- Python websockets client -> wsio server -------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "size"),
    [
        ("default", 2**20),
        (None, BIG),
        (
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=8,
                client_max_window_bits=9,
            ),
            2**20,
        ),
        (
            ClientPerMessageDeflateFactory(server_max_window_bits=15, client_max_window_bits=True),
            2**20,
        ),
    ],
)
async def test_websockets_client(
    wsio_server: tuple[WebSocketServer, Behaviours], compression: Any, size: int
) -> None:
    server, behaviours = wsio_server
    kwargs: dict[str, Any] = {"max_size": 32 * 2**20, "ping_interval": None}
    if compression is None:
        kwargs["compression"] = None
    elif compression != "default":
        kwargs["extensions"] = [compression]
        kwargs["compression"] = None
    async with ws_connect(f"ws://127.0.0.1:{server.port}/echo", **kwargs) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send(["frag", "ment", "ed"])
        assert await ws.recv() == "fragmented"
        for _ in range(3):
            text = "compressible text " * 3000
            await ws.send(text)
            assert await ws.recv() == text
        blob = os.urandom(size)
        await ws.send(blob)
        assert await ws.recv() == blob
        latency = await asyncio.wait_for(await ws.ping(), 5)
        assert latency >= 0
        await ws.close(4000, "websockets done")
    await asyncio.sleep(0.05)
    assert behaviours.closes == [("/echo", 4000, "websockets done")]
    negotiated = behaviours.deflate[0]
    assert (negotiated is None) is (compression is None)
    if (
        isinstance(compression, ClientPerMessageDeflateFactory)
        and compression.server_max_window_bits == 8
    ):
        assert negotiated.local_max_window_bits == 8
        assert negotiated.local_no_context_takeover and negotiated.remote_no_context_takeover


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        ("/close", 4001, "bye from wsio"),
        ("/boom", 1011, "internal error"),
        ("/shutdown", 1001, "server shutting down"),
    ],
)
async def test_websockets_client_close_paths(
    wsio_server: tuple[WebSocketServer, Behaviours], path: str, code: int, reason: str
) -> None:
    server, _ = wsio_server
    async with ws_connect(f"ws://127.0.0.1:{server.port}{path}", ping_interval=None) as ws:
        await ws.send("hi")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)


async def test_websockets_client_too_big(
    small_wsio_server: tuple[WebSocketServer, Behaviours],
) -> None:
    server, _ = small_wsio_server
    async with ws_connect(f"ws://127.0.0.1:{server.port}/echo", ping_interval=None) as ws:
        await ws.send(b"x" * 1000)
        assert await ws.recv() == b"x" * 1000
        await ws.send(b"x" * 1001)
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_websockets_client_keepalive(wsio_server: tuple[WebSocketServer, Behaviours]) -> None:
    """Both sides ping each other and neither gives up."""
    server = await serve(
        lambda ws: ws.wait_closed(), "127.0.0.1", 0, ping_interval=0.1, ping_timeout=0.3
    )
    try:
        async with ws_connect(
            f"ws://127.0.0.1:{server.port}/", ping_interval=0.1, ping_timeout=0.3
        ) as ws:
            await asyncio.sleep(0.8)
            assert ws.state is websockets.protocol.State.OPEN
    finally:
        await server.close()
    assert not server.connections


async def test_wsio_server_close_ok_for_websockets(
    wsio_server: tuple[WebSocketServer, Behaviours],
) -> None:
    server, behaviours = wsio_server
    async with ws_connect(f"ws://127.0.0.1:{server.port}/echo", ping_interval=None) as ws:
        await ws.send("one")
        assert await ws.recv() == "one"
    await asyncio.sleep(0.05)
    assert behaviours.closes == [("/echo", 1000, "")]
