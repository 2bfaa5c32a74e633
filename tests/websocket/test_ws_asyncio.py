"""The asyncio layer: serve() and connect() talking to each other (and to raw peers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wsutil import (
    RawClient,
    StartServer,
    build_frame,
    close_payload,
    echo,
    read_head,
    upgrade_request,
)

from support.certs import make_cert
from wsio.http.request import Request, Response
from wsio.websocket import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DeflateOptions,
    InvalidStatus,
    WebSocket,
    WebSocketServer,
    connect,
)
from wsio.websocket.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT


def url(server: WebSocketServer, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


# -- round trips -------------------------------------------------------------------


async def test_text_and_binary_roundtrip(echo_server: WebSocketServer) -> None:
    async with connect(url(echo_server)) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send(bytearray(b"ba"))
        assert await ws.recv() == b"ba"
        await ws.send(memoryview(b"mv"))
        assert await ws.recv() == b"mv"
        await ws.send("")
        assert await ws.recv() == ""
        assert ws.open and ws.close_code is None
    assert ws.closed
    assert ws.close_code == 1000


async def test_fragmented_send(start_server: StartServer) -> None:
    received: list[str | bytes] = []

    async def handler(ws: WebSocket) -> None:
        for _ in range(4):
            received.append(await ws.recv())

    async def agen() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"bc", b"def"):
            await asyncio.sleep(0)
            yield chunk

    server = await start_server(handler)
    async with connect(url(server)) as ws:
        await ws.send(["fr", "ag", "ment"])
        await ws.send(agen())
        await ws.send(iter([b"single"]))
        await ws.send(["compressed " * 100, "fragments " * 100])
        with pytest.raises(TypeError):
            await ws.send(["a", b"b"])
        await ws.wait_closed()
    assert received == ["fragment", b"abcdef", b"single", "compressed " * 100 + "fragments " * 100]


async def test_send_waits_for_fragmented_message(echo_server: WebSocketServer) -> None:
    async def slow() -> AsyncIterator[str]:
        yield "x"
        await asyncio.sleep(0.2)
        yield "y"

    async with connect(url(echo_server)) as ws:
        task = asyncio.create_task(ws.send(slow()))
        await asyncio.sleep(0.05)
        await ws.send("after")  # not inside the fragmented message
        await task
        assert [await ws.recv(), await ws.recv()] == ["xy", "after"]


async def test_fragment_producer_failure_closes_1011(start_server: StartServer) -> None:
    seen: list[int | None] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen.append(exc.code)

    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        yield b"second"
        raise ValueError("producer failed")

    server = await start_server(handler)
    ws = await connect(url(server))
    with pytest.raises(ValueError):
        await ws.send(broken())
    with pytest.raises(ConnectionClosed):
        await ws.send("no more")
    await asyncio.wait_for(ws.wait_closed(), 3)
    assert seen == [1011]
    assert ws.protocol.close_sent == 1011


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_16_mib_messages(start_server: StartServer, compression: str | None) -> None:
    size = 16 * 2**20
    server = await start_server(max_size=size, compression=compression)
    text = ("0123456789abcdef" * (size // 16 // 64)) * 64
    blob = os.urandom(size) if compression is None else text.encode()
    async with connect(url(server), max_size=size, compression=compression) as ws:
        await ws.send(blob)
        assert await ws.recv() == blob
        if compression:
            await ws.send(text)
            assert await ws.recv() == text


async def test_ping_pong_latency(echo_server: WebSocketServer) -> None:
    async with connect(url(echo_server)) as ws:
        waiter = await ws.ping()
        latency = await asyncio.wait_for(waiter, 5)
        assert 0 <= latency < 2
        first = await ws.ping(b"one")
        with pytest.raises(ValueError):
            await ws.ping(b"one")
        second = await ws.ping("two")
        assert await asyncio.wait_for(second, 5) >= 0
        assert first.done()


async def test_ping_pending_when_connection_drops(start_server: StartServer) -> None:
    async def deaf(ws: WebSocket) -> None:
        ws.transport.pause_reading()  # never sees the Ping
        await asyncio.sleep(0.2)
        ws.abort()

    server = await start_server(deaf)
    async with connect(url(server)) as ws:
        waiter = await ws.ping()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(waiter, 5)


async def test_client_closes_with_code_and_reason(start_server: StartServer) -> None:
    seen: list[tuple[int | None, str | None, str]] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen.append((ws.close_code, ws.close_reason, type(exc).__name__))
            assert exc.code == 4000 and exc.reason == "client done"

    server = await start_server(handler)
    ws = await connect(url(server))
    await ws.close(4000, "client done")
    assert ws.closed
    await asyncio.sleep(0.1)
    assert seen == [(4000, "client done", "ConnectionClosedError")]
    # The server echoed our code.
    assert ws.close_code == 4000


async def test_server_closes_with_code_and_reason(start_server: StartServer) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.close(4001, "server done")
        assert ws.close_code == 4001

    server = await start_server(handler)
    async with connect(url(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (4001, "server done")
        assert ws.close_code == 4001 and ws.close_reason == "server done"


async def test_normal_close_ends_iteration(start_server: StartServer) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send("a")
        await ws.send("b")

    server = await start_server(handler)
    async with connect(url(server)) as ws:
        assert [m async for m in ws] == ["a", "b"]
        with pytest.raises(ConnectionClosedOK):
            await ws.send("late")
        assert ws.close_code == 1000


async def test_server_close_sends_1001(start_server: StartServer) -> None:
    connected = asyncio.Event()

    async def handler(ws: WebSocket) -> None:
        connected.set()
        await ws.wait_closed()

    server = await start_server(handler)
    address = url(server)
    clients = [await connect(address) for _ in range(3)]
    await asyncio.wait_for(connected.wait(), 5)
    started = time.monotonic()
    await server.close()
    assert time.monotonic() - started < 2
    for ws in clients:
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert info.value.code == 1001
        await ws.wait_closed()
    # No longer listening.
    with pytest.raises(OSError):
        await connect(address)


async def test_handler_exception_closes_1011(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.recv()
        raise RuntimeError("boom in handler")

    server = await start_server(handler)
    with caplog.at_level(logging.ERROR, logger="wsio.websocket"):
        async with connect(url(server)) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
    logged = [r for r in caplog.records if r.name == "wsio.websocket" and r.exc_info]
    assert any("boom in handler" in str(r.exc_info[1]) for r in logged if r.exc_info)
    # The server still serves (and fails this handler the same way).
    async with connect(url(server)) as ws:
        await ws.send("again")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1011


async def test_max_size_1009_server_side(start_server: StartServer) -> None:
    server = await start_server(max_size=1000)
    async with connect(url(server)) as ws:
        await ws.send("x" * 1000)
        assert await ws.recv() == "x" * 1000
        await ws.send("x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1009


async def test_max_size_1009_client_side(start_server: StartServer) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send(b"y" * 5000)
        await ws.wait_closed()

    server = await start_server(handler)
    async with connect(url(server), max_size=4096, compression=None) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == 1009


async def test_max_size_compressed_bomb(start_server: StartServer) -> None:
    server = await start_server(max_size=100_000)
    async with connect(url(server)) as ws:
        assert ws.protocol.deflate is not None
        await ws.send(b"\x00" * 100_001)  # a few hundred bytes on the wire
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1009


# -- flow control ----------------------------------------------------------------------


def small_buffers(sock: socket.socket) -> socket.socket:
    """Shrink the kernel buffers so that backpressure shows after a few hundred KB."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    return sock


def small_listener() -> socket.socket:
    """A listening socket whose accepted connections inherit small buffers."""
    sock = small_buffers(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


def small_client_socket(port: int) -> socket.socket:
    sock = small_buffers(socket.socket())
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_max_queue_pauses_reading(start_server: StartServer) -> None:
    """A handler that does not read: the server stops reading, the client's send blocks."""
    server_ws: list[WebSocket] = []
    release = asyncio.Event()
    got: list[str | bytes] = []
    count = 400

    async def slow(ws: WebSocket) -> None:
        server_ws.append(ws)
        await release.wait()
        async for message in ws:
            got.append(message)
            if len(got) == count:
                return

    server = await start_server(slow, max_queue=4, compression=None, sock=small_listener())
    message = b"m" * 10_000
    sock = small_client_socket(server.port)
    async with connect(url(server), compression=None, write_limit=16384, sock=sock) as ws:
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(count):
                await ws.send(message + str(i).encode())
                sent += 1

        task = asyncio.create_task(sender())
        await asyncio.sleep(0.5)
        (sws,) = server_ws
        # The server stopped reading; what it holds in memory stays bounded.
        assert not sws.transport.is_reading()
        queued = len(sws._messages)
        assert 4 <= queued <= 4 + 256 * 1024 // len(message) + 1
        # The client's send is blocked by TCP backpressure.
        assert not task.done()
        assert sent < 100
        stalled = sent
        await asyncio.sleep(0.3)
        assert len(sws._messages) == queued
        assert sent == stalled
        release.set()
        await asyncio.wait_for(task, 10)
    assert got == [message + str(i).encode() for i in range(count)]


async def test_send_waits_when_peer_does_not_read(start_server: StartServer) -> None:
    progress: list[int] = []
    done = asyncio.Event()
    count = 300

    async def flood(ws: WebSocket) -> None:
        for i in range(count):
            await ws.send(b"z" * 50_000)
            progress.append(i)
            assert ws.write_buffer_size <= 65536 + 50_010
        done.set()
        await ws.wait_closed()

    server = await start_server(flood, write_limit=65536, compression=None, sock=small_listener())
    sock = small_client_socket(server.port)
    async with connect(url(server), compression=None, max_size=None, max_queue=2, sock=sock) as ws:
        await asyncio.sleep(0.5)
        stalled = len(progress)
        assert 0 < stalled < 30
        await asyncio.sleep(0.3)
        assert len(progress) == stalled  # the handler is waiting in send()
        assert not ws.transport.is_reading()  # max_queue reached on the client
        for _ in range(count):
            assert await ws.recv() == b"z" * 50_000
        await asyncio.wait_for(done.wait(), 5)


async def test_close_completes_behind_unread_messages(start_server: StartServer) -> None:
    """A handler that returns while the client kept sending: the Close still gets through."""
    result: list[tuple[int | None, float]] = []

    async def handler(ws: WebSocket) -> None:
        await ws.recv()
        started = time.monotonic()
        await ws.close()
        result.append((ws.close_code, time.monotonic() - started))

    server = await start_server(handler, max_queue=4, close_timeout=2, compression=None)
    async with connect(url(server), compression=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(500):
                await ws.send(b"x" * 1000)
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
    await asyncio.sleep(0.05)
    ((code, elapsed),) = result
    assert code == 1000  # the client's Close frame was read, not given up on
    assert elapsed < 1


# -- keepalive -----------------------------------------------------------------------


async def test_keepalive_closes_unresponsive_peer(start_server: StartServer) -> None:
    server = await start_server(ping_interval=0.2, ping_timeout=0.3)
    peer, status, _ = await RawClient.open(server.port)
    assert status == 101
    started = time.monotonic()
    frames, code = await peer.read_until_close(timeout=3)
    elapsed = time.monotonic() - started
    await peer.close()
    assert frames[0].opcode == OP_PING and not frames[0].masked
    assert code == 1011
    assert 0.4 < elapsed < 2


async def test_keepalive_answered(start_server: StartServer) -> None:
    server = await start_server(ping_interval=0.1, ping_timeout=0.1)
    async with connect(url(server), ping_interval=0.1, ping_timeout=0.1) as ws:
        await asyncio.sleep(0.8)
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_keepalive_spares_peer_busy_sending_a_large_message(
    start_server: StartServer,
) -> None:
    server = await start_server(ping_interval=0.15, ping_timeout=0.2, max_size=None)
    peer, status, _ = await RawClient.open(server.port)
    assert status == 101
    size = 30 * 4000
    payload = os.urandom(size)
    wire = build_frame(OP_BINARY, payload, mask=True)
    # About 1.5 s of trickle: several ping intervals and timeouts.
    for i in range(0, len(wire), 4000):
        peer.send(wire[i : i + 4000])
        await asyncio.sleep(0.05)
    # Only now can the peer answer the pings it got meanwhile.
    pings = []
    while True:
        frame = await peer.read(3)
        assert frame is not None, "server closed the connection"
        if frame.opcode == OP_PING:
            pings.append(frame.payload)
            peer.frame(OP_PONG, frame.payload)
        else:
            break
    assert pings
    assert frame.opcode == OP_BINARY and frame.payload == payload
    peer.frame(OP_CLOSE, close_payload(1000))
    _, code = await peer.read_until_close(3)
    assert code == 1000
    await peer.close()


async def test_keepalive_spares_connection_sending_a_large_message_slowly(
    start_server: StartServer,
) -> None:
    """Our own Ping waits behind a large message the peer reads slowly."""

    async def big(ws: WebSocket) -> None:
        await ws.send(b"q" * (8 << 20))
        await ws.wait_closed()

    server = await start_server(
        big,
        ping_interval=0.15,
        ping_timeout=0.2,
        write_limit=2**16,
        compression=None,
        sock=small_listener(),
    )
    sock = small_client_socket(server.port)
    peer, status, _ = await RawClient.open(server.port, sock=sock, limit=2**16)
    assert status == 101
    head = await peer.reader.readexactly(10)
    assert head[:2] == b"\x82\x7f" and struct.unpack("!Q", head[2:])[0] == 8 << 20
    received = 0
    started = time.monotonic()
    # Read 8 MiB in 1.5 s: the Ping cannot reach us before the message does.
    while received < (8 << 20):
        chunk = await asyncio.wait_for(
            peer.reader.readexactly(min(64 * 1024, (8 << 20) - received)), 3
        )
        received += len(chunk)
        await asyncio.sleep(0.012)
    assert time.monotonic() - started > 1
    # Then the Pings (answered now) and nothing else.
    frame = await peer.read(2)
    assert frame is not None and frame.opcode == OP_PING
    peer.frame(OP_PONG, frame.payload)
    peer.frame(OP_CLOSE, close_payload(1000))
    _, code = await peer.read_until_close(3)
    assert code == 1000
    await peer.close()


async def test_keepalive_spares_slow_consumer(start_server: StartServer) -> None:
    """Reading paused by max_queue hides the peer's Pongs: that is no ping timeout."""
    got: list[str | bytes] = []

    async def lazy(ws: WebSocket) -> None:
        await asyncio.sleep(1)  # several ping timeouts with reading paused
        got.extend([await ws.recv() for _ in range(20)])

    server = await start_server(lazy, ping_interval=0.1, ping_timeout=0.2, max_queue=4)
    async with connect(url(server)) as ws:
        for i in range(20):
            await ws.send(f"m{i}")
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 3)
    assert got == [f"m{i}" for i in range(20)]


# -- handshake options -------------------------------------------------------------


async def test_origins(start_server: StartServer) -> None:
    server = await start_server(origins=["https://good.example", None])
    async with connect(url(server), origin="https://good.example") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"
    async with connect(url(server)) as ws:  # no Origin header
        await ws.send("ok")
    with pytest.raises(InvalidStatus) as info:
        await connect(url(server), origin="https://evil.example")
    assert info.value.status == 403
    strict = await start_server(origins=["https://good.example"])
    with pytest.raises(InvalidStatus) as info:
        await connect(url(strict))
    assert info.value.status == 403


async def test_process_request(start_server: StartServer) -> None:
    seen: list[str] = []

    async def hook(request: Request) -> Response | None:
        seen.append(request.path)
        if request.path == "/health":
            return Response.text(200, "healthy\n")
        if request.path == "/forbidden":
            return Response.text(403, "no\n")
        return None

    server = await start_server(process_request=hook)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert await reader.readexactly(8) == b"healthy\n"
    # Plain HTTP on a WebSocket path: 426.
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426 ")
    writer.close()
    with pytest.raises(InvalidStatus) as info:
        await connect(url(server, "/forbidden"))
    assert info.value.status == 403 and info.value.body == b"no\n"
    async with connect(url(server, "/ws")) as ws:
        await ws.send("fine")
        assert await ws.recv() == "fine"
    assert seen == ["/health", "/ws", "/forbidden", "/ws"]


async def test_process_request_sync_hook(start_server: StartServer) -> None:
    server = await start_server(process_request=lambda request: Response(204))
    with pytest.raises(InvalidStatus) as info:
        await connect(url(server))
    assert info.value.status == 204


@pytest.mark.parametrize(
    ("request_head", "status", "header", "message"),
    [
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
            ("sec-websocket-version", "13"),
            "version",
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n",
            400,
            None,
            "Sec-WebSocket-Key",
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
            None,
            "Connection",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Content-Length: 0\r\n\r\n",
            400,
            None,
            "GET",
        ),
        (
            "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
            None,
            "HTTP/1.1",
        ),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426, ("upgrade", "websocket"), "Upgrade"),
    ],
)
async def test_handshake_refusals_over_http(
    echo_server: WebSocketServer,
    request_head: str,
    status: int,
    header: tuple[str, str] | None,
    message: str,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server.port)
    writer.write(request_head.encode())
    got, headers = await read_head(reader)
    body = await reader.readexactly(int(headers["content-length"]))
    writer.close()
    assert got == status
    if header is not None:
        assert headers[header[0]].lower() == header[1]
    assert message in body.decode()


async def test_frames_in_the_same_packet_as_the_request(echo_server: WebSocketServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server.port)
    writer.write(
        upgrade_request(echo_server.port)
        + build_frame(OP_TEXT, b"early", mask=True)
        + build_frame(OP_BINARY, b"bird", mask=True)
    )
    status, headers = await read_head(reader)
    assert status == 101
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    peer = RawClient(reader, writer)
    first, second = await peer.read(), await peer.read()
    assert first is not None and (first.opcode, first.payload) == (OP_TEXT, b"early")
    assert second is not None and (second.opcode, second.payload) == (OP_BINARY, b"bird")
    peer.frame(OP_CLOSE, close_payload(1000))
    _, code = await peer.read_until_close()
    assert code == 1000
    await peer.close()


async def test_headers_and_request_info(start_server: StartServer) -> None:
    seen: list[tuple[str, str | None, str | None, str, tuple[str, int] | None]] = []

    async def handler(ws: WebSocket) -> None:
        seen.append(
            (
                ws.path,
                ws.request_headers.get("X-Client"),
                ws.request_headers.get("User-Agent"),
                ws.request.query_string,
                ws.remote_address,
            )
        )

    server = await start_server(handler, extra_headers=[("X-Server", "yes")])
    async with connect(
        url(server, "/room/42?token=abc"),
        extra_headers=[("X-Client", "hello")],
        user_agent="test-agent/1",
    ) as ws:
        assert ws.response_headers["X-Server"] == "yes"
        assert ws.path == "/room/42"
        await ws.wait_closed()
    ((path, x_client, agent, query, remote),) = seen
    assert (path, x_client, agent, query) == ("/room/42", "hello", "test-agent/1", "token=abc")
    assert remote is not None and remote[0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("server_protocols", "client_protocols", "expected"),
    [
        (["chat", "superchat"], ["superchat", "chat"], "chat"),
        (["chat"], ["other"], None),
        (None, ["chat"], None),
        (["chat"], [], None),
    ],
)
async def test_subprotocols(
    start_server: StartServer,
    server_protocols: list[str] | None,
    client_protocols: list[str],
    expected: str | None,
) -> None:
    chosen: list[str | None] = []

    async def handler(ws: WebSocket) -> None:
        chosen.append(ws.subprotocol)

    server = await start_server(handler, subprotocols=server_protocols)
    async with connect(url(server), subprotocols=client_protocols) as ws:
        assert ws.subprotocol == expected
        await ws.wait_closed()
    assert chosen == [expected]


async def test_subprotocol_selector(start_server: StartServer) -> None:
    server = await start_server(subprotocols=lambda offered: offered[-1])
    async with connect(url(server), subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"


@pytest.mark.parametrize(
    ("server_compression", "client_compression", "negotiated"),
    [
        ("deflate", "deflate", True),
        (None, "deflate", False),
        ("deflate", None, False),
        (
            DeflateOptions(server_no_context_takeover=True),
            DeflateOptions(client_max_window_bits=9),
            True,
        ),
    ],
)
async def test_compression_negotiation(
    start_server: StartServer,
    server_compression: object,
    client_compression: object,
    negotiated: bool,
) -> None:
    server_side: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        server_side.append(ws)
        await echo(ws)

    server = await start_server(handler, compression=server_compression)
    async with connect(url(server), compression=client_compression) as ws:  # type: ignore[arg-type]
        assert (ws.protocol.deflate is not None) is negotiated
        assert ("sec-websocket-extensions" in ws.response_headers) is negotiated
        big = "compress me " * 1000
        written: list[int] = []
        real_write = ws.transport.write
        real_writelines = ws.transport.writelines
        ws.transport.write = lambda data: (written.append(len(data)), real_write(data))[1]  # type: ignore[method-assign]
        ws.transport.writelines = lambda items: (  # type: ignore[method-assign]
            written.append(sum(map(len, items))),
            real_writelines(items),
        )[1]
        await ws.send(big)
        assert await ws.recv() == big
        assert (sum(written) < len(big) // 10) is negotiated
    assert (server_side[0].protocol.deflate is not None) is negotiated


# -- TLS ----------------------------------------------------------------------------


def _self_signed_with_cryptography(cert: Path, key: Path) -> bool:
    """Write a certificate for localhost / 127.0.0.1 with ``cryptography``, if installed."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    import datetime
    import ipaddress

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return True


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (cryptography, else openssl)."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    if not _self_signed_with_cryptography(cert, key):
        return make_cert(tmp, ("localhost", "127.0.0.1"))
    return cert, key


async def test_tls(start_server: StartServer, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    server = await start_server(ssl=server_ctx, max_size=2**21)
    async with connect(f"wss://localhost:{server.port}/", ssl=client_ctx, max_size=2**21) as ws:
        assert ws.transport.get_extra_info("ssl_object") is not None
        await ws.send("secure")
        assert await ws.recv() == "secure"
        blob = os.urandom(2**21)
        await ws.send(blob)
        assert await ws.recv() == blob
    async with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_ctx) as ws:
        await ws.send(b"by IP")
        assert await ws.recv() == b"by IP"
    # The default context does not trust a self-signed certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(f"wss://localhost:{server.port}/")
    # The server keeps serving.
    async with connect(f"wss://localhost:{server.port}/", ssl=client_ctx) as ws:
        await ws.send("after")
        assert await ws.recv() == "after"


# -- limits ----------------------------------------------------------------------------


async def test_max_connections(start_server: StartServer) -> None:
    server = await start_server(max_connections=2)
    first = await connect(url(server))
    second = await connect(url(server))
    with pytest.raises(InvalidStatus) as info:
        await connect(url(server))
    assert info.value.status == 503
    await first.close()
    await asyncio.sleep(0.1)
    async with connect(url(server)) as ws:
        await ws.send("room again")
        assert await ws.recv() == "room again"
    await second.close()


async def test_recv_twice_concurrently(echo_server: WebSocketServer) -> None:
    async with connect(url(echo_server)) as ws:
        first = asyncio.create_task(ws.recv())
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError):
            await ws.recv()
        await ws.send("one")
        assert await first == "one"


async def test_connect_refused() -> None:
    from support.procs import free_port

    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{free_port()}/")


async def test_server_side_ping_and_close_timeout(start_server: StartServer) -> None:
    """A peer that never answers the closing handshake is dropped after close_timeout."""
    closed = asyncio.Event()

    async def handler(ws: WebSocket) -> None:
        started = time.monotonic()
        await ws.close(1000)
        assert time.monotonic() - started < 1.5
        closed.set()

    server = await start_server(handler, close_timeout=0.3)
    peer, status, _ = await RawClient.open(server.port)
    assert status == 101
    frame = await peer.read(3)
    assert frame is not None and frame.opcode == OP_CLOSE
    await asyncio.wait_for(closed.wait(), 3)
    assert await peer.at_eof(3)
    await peer.close()


async def test_peer_ping_is_answered(echo_server: WebSocketServer) -> None:
    peer, status, _ = await RawClient.open(echo_server.port)
    assert status == 101
    peer.frame(OP_PING, b"are you there")
    frame = await peer.read(3)
    assert frame is not None and (frame.opcode, frame.payload) == (OP_PONG, b"are you there")
    assert not frame.masked
    peer.frame(OP_CLOSE, b"")
    frames, code = await peer.read_until_close(3)
    assert code == 1005 and frames[-1].payload == b""
    await peer.close()


async def test_violation_behind_a_message_echo_first(echo_server: WebSocketServer) -> None:
    """The message before a bad frame is answered, then the connection fails with 1002."""
    peer, status, _ = await RawClient.open(echo_server.port)
    assert status == 101
    peer.send(build_frame(OP_TEXT, b"fine", mask=True) + build_frame(5, b"bad", mask=True))
    frames, code = await peer.read_until_close(3)
    await peer.close()
    assert [(f.opcode, f.payload) for f in frames[:-1]] == [(OP_TEXT, b"fine")]
    assert code == 1002


async def test_violation_behind_a_message_without_recv(start_server: StartServer) -> None:
    """A handler that never calls recv() does not keep a failed connection open."""
    server = await start_server(lambda ws: ws.wait_closed())
    peer, status, _ = await RawClient.open(server.port)
    assert status == 101
    peer.send(build_frame(OP_TEXT, b"fine", mask=True) + build_frame(5, b"bad", mask=True))
    _, code = await peer.read_until_close(3)
    await peer.close()
    assert code == 1002
