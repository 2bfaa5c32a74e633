"""Backpressure and volatile packets: what a client that reads slowly (or not at all) gets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import wsio
from support.sio import stalled_client

pytestmark = pytest.mark.asyncio


def drain(sock: socket.socket, seconds: float) -> int:
    """Read for *seconds*; returns the bytes read."""
    sock.settimeout(0.2)
    total = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            break
        total += len(chunk)
    return total


@pytest.fixture
async def server() -> AsyncIterator[tuple[wsio.Server, int, list[wsio.Socket]]]:
    sio = wsio.Server(max_outgoing_bytes=64 * 2**20)
    sockets: list[wsio.Socket] = []

    @sio.on("connect")
    def connect(socket: wsio.Socket, auth: Any) -> None:
        sockets.append(socket)

    http = await sio.start("127.0.0.1", 0)
    yield sio, http.port, sockets
    await sio.shutdown()


async def wait_for(predicate: Any, timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_awaited_emit_waits_for_room_unawaited_never_blocks(server: Any) -> None:
    _sio, port, sockets = server
    loop = asyncio.get_running_loop()
    client = await loop.run_in_executor(None, stalled_client, port)
    try:
        await wait_for(lambda: sockets and sockets[0].connected)
        sock = sockets[0]
        blob = "x" * 65536
        sent = 0

        async def producer() -> None:
            nonlocal sent
            for _ in range(400):
                await sock.emit("blob", blob)
                sent += 1

        task = asyncio.ensure_future(producer())
        await asyncio.sleep(1.0)
        # The client reads nothing: the producer is held back near the high-water mark.
        assert not task.done()
        held_at = sent
        assert held_at < 200, held_at
        ws = sock.conn.session._ws
        assert ws.write_buffer_size < 4 * 2**20
        # Emits that are not awaited still go out at once (and are never lost).
        for _ in range(10):
            sock.emit("extra", "y")
        # Once the client reads, the producer finishes.
        read = await loop.run_in_executor(None, drain, client, 3.0)
        await asyncio.wait_for(task, 5)
        assert sent == 400
        assert read > 300 * 65536
    finally:
        client.close()


async def test_volatile_packets_are_dropped_for_a_stalled_client(server: Any) -> None:
    sio, port, sockets = server
    loop = asyncio.get_running_loop()
    client = await loop.run_in_executor(None, stalled_client, port)
    try:
        await wait_for(lambda: sockets and sockets[0].connected)
        sock = sockets[0]
        ws = sock.conn.session._ws
        blob = "x" * 65536
        for _ in range(200):
            sio.volatile.emit("v", blob)
            sock.volatile.emit("v", blob)
            await asyncio.sleep(0)
        # 400 x 64 KiB were offered; almost all were dropped at the high-water mark.
        assert ws.write_buffer_size < 2 * 2**20
        sio.emit("kept", "z")  # a normal emit is queued even now
        assert ws.write_buffer_size > 0
    finally:
        client.close()


async def test_polling_volatile_dropped_without_pending_get(server: Any) -> None:
    import json
    import urllib.request

    sio, port, sockets = server
    base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    loop = asyncio.get_running_loop()

    def http(method: str, url: str, body: bytes | None = None) -> str:
        req = urllib.request.Request(url, data=body, method=method)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read().decode()

    opened = await loop.run_in_executor(None, http, "GET", base)
    sid = json.loads(opened[1:])["sid"]
    url = f"{base}&sid={sid}"
    assert await loop.run_in_executor(None, http, "POST", url, b"40") == "ok"
    reply = await loop.run_in_executor(None, http, "GET", url)
    assert reply.startswith('40{"sid"')
    await wait_for(lambda: sockets and sockets[0].connected)
    # No GET is pending now: the volatile packet is dropped, the normal one queued.
    sio.volatile.emit("v", 1)
    sio.emit("n", 2)
    reply = await loop.run_in_executor(None, http, "GET", url)
    assert reply == '42["n",2]'
