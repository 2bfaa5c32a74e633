"""Bad input from many connections at once: the others keep being served."""

from __future__ import annotations

import asyncio
import os
import random
import struct
import subprocess
import sys
import time

from wsutil import RawClient, StartServer, build_frame, upgrade_request

from support.procs import REPO_ROOT, free_port, start, stop
from wsio.http import Limits
from wsio.websocket import WebSocketServer, connect
from wsio.websocket.frames import OP_BINARY, OP_CONT, OP_TEXT


async def read_status(reader: asyncio.StreamReader, timeout: float = 5.0) -> int | None:
    """The status of the HTTP response, None if the server closed without one."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (ConnectionError, asyncio.IncompleteReadError):
        return None
    if not line:
        return None
    return int(line.split()[1])


async def garbage(port: int, rng: random.Random) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))) + b"\r\n\r\n")
    status = await read_status(reader)
    writer.close()
    return f"garbage {status}"


async def partial_handshake(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(port)[:60])  # and never the rest
    started = time.monotonic()
    status = await read_status(reader)
    await asyncio.wait_for(reader.read(), 3)  # the rest of the response, then EOF
    closed = reader.at_eof()
    writer.close()
    assert time.monotonic() - started < 3
    return f"partial {status} {closed}"


async def oversized_headers(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = upgrade_request(port, extra=[(f"X-Filler-{i}", "f" * 100) for i in range(200)])
    writer.write(request)
    status = await read_status(reader)
    writer.close()
    return f"headers {status}"


async def ws_abuse(port: int, frames: bytes) -> str:
    peer, status, _ = await RawClient.open(port)
    assert status == 101
    peer.send(frames)
    _, code = await peer.read_until_close(5)
    await peer.close()
    return f"ws {code}"


async def legit_traffic(port: int, stop_at: float) -> int:
    rounds = 0
    async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            await ws.send(f"hello {rounds}")
            assert await ws.recv() == f"hello {rounds}"
            assert time.monotonic() - started < 1
            rounds += 1
            await asyncio.sleep(0.01)
    return rounds


def abusers(port: int) -> list[asyncio.Future[str]]:
    rng = random.Random(1234)
    jobs = []
    for _ in range(8):
        jobs.append(garbage(port, rng))
        jobs.append(partial_handshake(port))
        jobs.append(oversized_headers(port))
        jobs.append(ws_abuse(port, build_frame(OP_TEXT, b"ok \xff\xfe", mask=True)))
        jobs.append(
            ws_abuse(
                port,
                build_frame(OP_TEXT, "κό".encode()[:3], fin=False, mask=True)
                + build_frame(OP_CONT, b"\xed\xa0\x80", mask=True),
            )
        )
        # A frame header announcing 1 GiB.
        jobs.append(ws_abuse(port, b"\x82\xff" + struct.pack("!Q", 1 << 30) + b"\x00\x00\x00\x00"))
        # Random bytes behind reserved bits.
        jobs.append(ws_abuse(port, b"\x7f" + os.urandom(16)))
        # Half a frame, then silence (and no Pong): keepalive ends it.
        jobs.append(ws_abuse(port, build_frame(OP_BINARY, b"x" * 1000, mask=True)[:20]))
    return [asyncio.ensure_future(job) for job in jobs]


async def test_abuse_from_many_connections(start_server: StartServer) -> None:
    limits = Limits(max_header_size=8192, request_timeout=0.5, max_body_size=1024)
    server: WebSocketServer = await start_server(
        max_size=65536, limits=limits, ping_interval=0.3, ping_timeout=0.3
    )
    port = server.port
    legit = asyncio.ensure_future(legit_traffic(port, time.monotonic() + 1.5))
    results = await asyncio.wait_for(asyncio.gather(*abusers(port)), 10)
    assert await legit > 20
    counts: dict[str, int] = {}
    for result in results:
        counts[result] = counts.get(result, 0) + 1
    assert counts.pop("partial 408 True") == 8
    assert counts.pop("headers 431") == 8
    assert counts.pop("ws 1007") == 16
    assert counts.pop("ws 1009") == 8
    assert counts.pop("ws 1002") == 8
    assert counts.pop("ws 1011") == 8
    # Random bytes: a 400, or (when they happen to hold a header block) another 4xx.
    assert sum(counts.values()) == 8, counts
    assert set(counts) <= {"garbage 400", "garbage 431", "garbage 505", "garbage None"}, counts
    # Everything was cleaned up, and new clients are served.
    await asyncio.sleep(0.2)
    assert not server.connections
    assert not server.http.connections
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send(b"still alive")
        assert await ws.recv() == b"still alive"


async def test_cli_echo_server_survives_abuse() -> None:
    port = free_port()
    proc = start(
        [sys.executable, "-m", "wsio", "echo", "--port", str(port), "--max-size", "65536"],
        port,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        jobs = []
        rng = random.Random(99)
        for _ in range(10):
            jobs.append(garbage(port, rng))
            jobs.append(oversized_headers(port))
            jobs.append(ws_abuse(port, build_frame(OP_TEXT, b"\xc0\xaf", mask=True)))
            jobs.append(ws_abuse(port, build_frame(OP_BINARY, b"x" * 70_000, mask=True)))
        results = await asyncio.wait_for(asyncio.gather(*jobs), 10)
        assert results.count("ws 1007") == 10
        assert results.count("ws 1009") == 10
        assert proc.poll() is None
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("echo?")
            assert await ws.recv() == "echo?"
    finally:
        assert stop(proc) == 0
