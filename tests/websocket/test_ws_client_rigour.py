"""connect() against a deliberately misbehaving raw asyncio server.

Every test scripts the server byte by byte and checks what the client does:
the message it returns, the error it raises, and the Close frame (with its
code) it sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from wsutil import RawFrame, build_frame, close_payload, read_frame

from wsio.websocket import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidResponse,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    connect,
)
from wsio.websocket.client import parse_uri
from wsio.websocket.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT
from wsio.websocket.handshake import accept_key


class Peer:
    """The server side of one connection, driven by a test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.request: dict[str, str] = {}
        self.request_line = ""

    async def read_request(self) -> dict[str, str]:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.request_line = head.split("\r\n")[0]
        for line in head.split("\r\n")[1:]:
            if line:
                name, _, value = line.partition(":")
                self.request[name.strip().lower()] = value.strip()
        return self.request

    def accept(self, *extra: str, accept: str | None = None, tail: bytes = b"") -> None:
        """Answer 101 (with a correct Sec-WebSocket-Accept unless told otherwise)."""
        key = self.request["sec-websocket-key"]
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept if accept is not None else accept_key(key)}",
            *extra,
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + tail)

    def frame(self, opcode: int, payload: bytes = b"", **kw: object) -> None:
        self.writer.write(build_frame(opcode, payload, **kw))  # type: ignore[arg-type]

    async def read(self, timeout: float = 5.0) -> RawFrame | None:
        return await asyncio.wait_for(read_frame(self.reader), timeout)

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the client's Close frame; its code (None: EOF first)."""
        while True:
            frame = await self.read(timeout)
            if frame is None:
                return None
            assert frame.masked, "client frames must be masked"
            if frame.opcode == OP_CLOSE:
                return struct.unpack("!H", frame.payload[:2])[0] if frame.payload else 1005

    async def eof(self, timeout: float = 5.0) -> bool:
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
                return True
        return False


Script = Callable[[Peer], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[tuple[str, list[BaseException]]]:
    """Serve *script* on 127.0.0.1; yields the ws:// URL and the script's errors."""
    errors: list[BaseException] = []
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        peer = Peer(reader, writer)
        try:
            await peer.read_request()
            await script(peer)
        except Exception as exc:
            errors.append(exc)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/", errors
        if tasks:
            await asyncio.wait(tasks, timeout=5)
    finally:
        for task in tasks:
            task.cancel()
        server.close()
        await server.wait_closed()
    if errors:
        raise errors[0]


OPTS = {"ping_interval": None, "close_timeout": 1.0, "open_timeout": 3.0}


# -- messages -------------------------------------------------------------------


async def test_fragmented_message_with_interleaved_pings() -> None:
    pongs: list[RawFrame] = []

    async def script(peer: Peer) -> None:
        peer.accept()
        peer.frame(OP_TEXT, b"frag", fin=False)
        peer.frame(OP_PING, b"p1")
        peer.frame(OP_CONT, "mént".encode()[:3], fin=False)
        peer.frame(OP_PING, b"p2")
        peer.frame(OP_CONT, "mént".encode()[3:])
        for _ in range(2):
            frame = await peer.read()
            assert frame is not None
            pongs.append(frame)
        peer.frame(OP_CLOSE, close_payload(1000))
        assert await peer.close_code() == 1000

    async with raw_server(script) as (uri, _), connect(uri, **OPTS) as ws:
        assert await ws.recv() == "fragmént"
        await ws.wait_closed()
    assert [(f.opcode, f.payload, f.masked) for f in pongs] == [
        (OP_PONG, b"p1", True),
        (OP_PONG, b"p2", True),
    ]


async def test_compressed_and_uncompressed_frames() -> None:
    offers: list[str] = []

    async def script(peer: Peer) -> None:
        offers.append(peer.request["sec-websocket-extensions"])
        peer.accept("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12")
        c = zlib.compressobj(6, zlib.DEFLATED, -12)

        def deflate(data: bytes) -> bytes:
            return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]

        peer.frame(OP_TEXT, deflate(b"compressed " * 20), rsv1=True)
        peer.frame(OP_BINARY, b"plain")
        payload = deflate(b"fragmented and compressed")
        peer.frame(OP_BINARY, payload[:5], fin=False, rsv1=True)
        peer.frame(OP_CONT, payload[5:])
        # What the client compresses inflates with its window.
        frame = await peer.read()
        assert frame is not None and frame.rsv1
        d = zlib.decompressobj(-12)
        assert d.decompress(frame.payload + b"\x00\x00\xff\xff") == b"reply " * 50
        peer.frame(OP_CLOSE, close_payload(1000))
        assert await peer.close_code() == 1000

    async with raw_server(script) as (uri, _), connect(uri, **OPTS) as ws:
        assert ws.protocol.deflate is not None
        assert await ws.recv() == "compressed " * 20
        assert await ws.recv() == b"plain"
        assert await ws.recv() == b"fragmented and compressed"
        await ws.send("reply " * 50)
        await ws.wait_closed()
    assert offers[0].startswith("permessage-deflate")


async def test_client_fragments_on_the_wire() -> None:
    frames: list[RawFrame] = []

    async def script(peer: Peer) -> None:
        peer.accept()
        while True:
            frame = await peer.read()
            assert frame is not None
            frames.append(frame)
            if frame.opcode == OP_CLOSE:
                break
        peer.frame(OP_CLOSE, frame.payload[:2])

    async with raw_server(script) as (uri, _), connect(uri, compression=None, **OPTS) as ws:
        await ws.send(["ab", "c", ""])
        await ws.send([b"x"])
    assert [(f.opcode, f.fin, f.payload, f.masked) for f in frames] == [
        (OP_TEXT, False, b"ab", True),
        (OP_CONT, False, b"c", True),
        (OP_CONT, True, b"", True),
        (OP_BINARY, True, b"x", True),
        (OP_CLOSE, True, close_payload(1000), True),
    ]


async def test_frames_right_after_the_101_and_max_queue() -> None:
    """Messages in the same packet as the 101 are delivered, and fill the queue."""
    reading: list[bool] = []

    async def script(peer: Peer) -> None:
        tail = b"".join(build_frame(OP_TEXT, str(i).encode()) for i in range(50))
        peer.accept(tail=tail)
        await asyncio.sleep(0.3)
        peer.frame(OP_CLOSE, close_payload(1000))
        assert await peer.close_code() == 1000

    async with raw_server(script) as (uri, _), connect(uri, max_queue=4, **OPTS) as ws:
        await asyncio.sleep(0.2)
        reading.append(ws.transport.is_reading())
        assert [await ws.recv() for _ in range(50)] == [str(i) for i in range(50)]
        await ws.wait_closed()
    assert reading == [False]


# -- closing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "reason", "exc_type"),
    [
        (close_payload(1000, b"bye"), 1000, "bye", ConnectionClosedOK),
        (close_payload(1001), 1001, "", ConnectionClosedOK),
        (b"", 1005, "", ConnectionClosedOK),
        (close_payload(4321, "é".encode()), 4321, "é", ConnectionClosedError),
    ],
)
async def test_server_initiated_close(
    payload: bytes, code: int, reason: str, exc_type: type
) -> None:
    echoed: list[int | None] = []

    async def script(peer: Peer) -> None:
        peer.accept()
        peer.frame(OP_CLOSE, payload)
        echoed.append(await peer.close_code())

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, **OPTS)
        with pytest.raises(exc_type) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (code, reason)
        await asyncio.wait_for(ws.wait_closed(), 3)
        assert ws.close_code == code and ws.close_reason == reason
    assert echoed == [code]


async def test_client_close_waits_for_server_tcp_close() -> None:
    async def script(peer: Peer) -> None:
        peer.accept()
        assert await peer.close_code() == 1000
        peer.frame(OP_CLOSE, close_payload(1000))
        await asyncio.sleep(0.1)  # then our TCP close

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, **OPTS)
        started = time.monotonic()
        await ws.close()
        assert time.monotonic() - started < 0.9
        assert ws.close_code == 1000


async def test_client_aborts_when_server_keeps_tcp_open() -> None:
    async def script(peer: Peer) -> None:
        peer.accept()
        assert await peer.close_code() == 1000
        peer.frame(OP_CLOSE, close_payload(1000))
        assert await peer.eof(3)  # the client aborts after close_timeout

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, **{**OPTS, "close_timeout": 0.3})
        started = time.monotonic()
        await ws.close()
        assert 0.2 < time.monotonic() - started < 2


async def test_client_close_without_answer() -> None:
    async def script(peer: Peer) -> None:
        peer.accept()
        assert await peer.close_code() == 4000
        assert await peer.eof(3)

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, **{**OPTS, "close_timeout": 0.3})
        await ws.close(4000, "x")
        assert ws.close_code == 1006


async def test_abrupt_tcp_close_is_1006() -> None:
    async def script(peer: Peer) -> None:
        peer.accept()
        peer.frame(OP_TEXT, b"last words")
        peer.frame(OP_TEXT, b"cut", fin=False)

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, **OPTS)
        assert await ws.recv() == "last words"
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1006
        assert ws.close_code == 1006


# -- invalid server behaviour -------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([build_frame(OP_TEXT, b"masked", mask=True)], 1002),
        ([build_frame(OP_TEXT, b"\xce\xba\xff")], 1007),
        ([build_frame(OP_TEXT, b"ok", fin=False), build_frame(OP_CONT, b"\xed\xa0\x80")], 1007),
        ([build_frame(OP_TEXT, b"x", rsv1=True)], 1002),
        ([build_frame(OP_TEXT, b"x", rsv2=True)], 1002),
        ([build_frame(OP_BINARY, b"x", rsv3=True)], 1002),
        ([build_frame(OP_PING, b"x" * 126)], 1002),
        ([build_frame(OP_PING, b"x", fin=False)], 1002),
        ([build_frame(0xB, b"")], 1002),
        ([build_frame(OP_CONT, b"orphan")], 1002),
        ([build_frame(OP_CLOSE, b"\x03")], 1002),
        ([build_frame(OP_CLOSE, close_payload(1006))], 1002),
        ([build_frame(OP_CLOSE, close_payload(1000, b"\xff"))], 1007),
        ([build_frame(OP_BINARY, b"y" * 2000)], 1009),
    ],
)
async def test_protocol_violations(frames: list[bytes], code: int) -> None:
    got: list[int | None] = []

    async def script(peer: Peer) -> None:
        peer.accept()
        for frame in frames:
            peer.writer.write(frame)
        got.append(await peer.close_code())
        assert await peer.eof()

    async with raw_server(script) as (uri, _):
        ws = await connect(uri, compression=None, max_size=1000, **OPTS)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == code
        await asyncio.wait_for(ws.wait_closed(), 3)
    assert got == [code]


async def handshake_error(
    *extra: str, accept: str | None = None, **connect_kw: object
) -> BaseException:
    async def script(peer: Peer) -> None:
        peer.accept(*extra, accept=accept)
        assert await peer.eof()  # the client hangs up

    async with raw_server(script) as (uri, _):
        with pytest.raises(InvalidHandshake) as info:
            await connect(uri, **{**OPTS, **connect_kw})  # type: ignore[arg-type]
    return info.value


async def test_bad_accept() -> None:
    exc = await handshake_error(accept=accept_key("AAAAAAAAAAAAAAAAAAAAAA=="))
    assert type(exc) is InvalidResponse


async def test_missing_accept() -> None:
    exc = await handshake_error(accept="")
    assert type(exc) is InvalidResponse


async def test_unrequested_extension() -> None:
    exc = await handshake_error("Sec-WebSocket-Extensions: permessage-deflate", compression=None)
    assert isinstance(exc, NegotiationError)


async def test_unknown_extension() -> None:
    exc = await handshake_error("Sec-WebSocket-Extensions: x-custom")
    assert isinstance(exc, NegotiationError)


async def test_unrequested_subprotocol() -> None:
    exc = await handshake_error("Sec-WebSocket-Protocol: chat")
    assert isinstance(exc, NegotiationError)
    exc = await handshake_error("Sec-WebSocket-Protocol: other", subprotocols=["chat"])
    assert isinstance(exc, NegotiationError)


async def test_requested_subprotocol_accepted() -> None:
    async def script(peer: Peer) -> None:
        assert peer.request["sec-websocket-protocol"] == "chat, v2"
        peer.accept("Sec-WebSocket-Protocol: v2")
        peer.frame(OP_CLOSE, close_payload(1000))
        await peer.close_code()

    async with (
        raw_server(script) as (uri, _),
        connect(uri, subprotocols=["chat", "v2"], **OPTS) as ws,
    ):
        assert ws.subprotocol == "v2"


@pytest.mark.parametrize(
    ("response", "status", "body"),
    [
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!", 404, b"nope!"),
        (b"HTTP/1.1 403 Forbidden\r\nX-Why: origin\r\nContent-Length: 0\r\n\r\n", 403, b""),
        (b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nbody until EOF", 500, b"body until EOF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, b"hi"),
    ],
)
async def test_non_101_status(response: bytes, status: int, body: bytes) -> None:
    async def script(peer: Peer) -> None:
        peer.writer.write(response)
        await peer.writer.drain()
        if b"Content-Length" in response:
            await peer.eof(3)

    async with raw_server(script) as (uri, _):
        with pytest.raises(InvalidStatus) as info:
            await connect(uri, **OPTS)
    assert info.value.status == status
    assert info.value.body == body
    if status == 403:
        assert ("X-Why", "origin") in info.value.headers


@pytest.mark.parametrize(
    "response",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 10x Switching\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n",  # then EOF
    ],
)
async def test_malformed_response(response: bytes) -> None:
    async def script(peer: Peer) -> None:
        peer.writer.write(response)
        await peer.writer.drain()

    async with raw_server(script) as (uri, _):
        with pytest.raises(InvalidResponse):
            await connect(uri, **OPTS)


async def test_oversized_response_head() -> None:
    async def script(peer: Peer) -> None:
        peer.writer.write(b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"a" * 100_000)
        await peer.eof(3)

    async with raw_server(script) as (uri, _):
        with pytest.raises(InvalidResponse):
            await connect(uri, **OPTS)


async def test_open_timeout() -> None:
    async def script(peer: Peer) -> None:
        await peer.eof(3)  # never answers

    async with raw_server(script) as (uri, _):
        started = time.monotonic()
        with pytest.raises(InvalidHandshake):
            await connect(uri, **{**OPTS, "open_timeout": 0.3})
        assert time.monotonic() - started < 1.5


async def test_server_ping_answered_while_idle() -> None:
    async def script(peer: Peer) -> None:
        peer.accept()
        peer.frame(OP_PING, b"hb")
        frame = await peer.read()
        assert frame is not None and (frame.opcode, frame.payload, frame.masked) == (
            OP_PONG,
            b"hb",
            True,
        )
        peer.frame(OP_CLOSE, close_payload(1000))
        assert await peer.close_code() == 1000

    async with raw_server(script) as (uri, _), connect(uri, **OPTS) as ws:
        await ws.wait_closed()


async def test_keepalive_closes_unresponsive_server() -> None:
    seen: list[tuple[int, bool]] = []

    async def script(peer: Peer) -> None:
        peer.accept()
        while True:  # never answers a Ping
            frame = await peer.read()
            if frame is None:
                break
            seen.append((frame.opcode, frame.masked))
            if frame.opcode == OP_CLOSE:
                assert struct.unpack("!H", frame.payload[:2])[0] == 1011
                break

    async with raw_server(script) as (uri, _):
        started = time.monotonic()
        ws = await connect(uri, **{**OPTS, "ping_interval": 0.1, "ping_timeout": 0.2})
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(ws.recv(), 3)
        assert info.value.sent_code == 1011
        await asyncio.wait_for(ws.wait_closed(), 3)
        assert time.monotonic() - started < 1.5
    assert seen == [(OP_PING, True), (OP_CLOSE, True)]


async def test_request_head() -> None:
    seen: dict[str, str] = {}

    async def script(peer: Peer) -> None:
        seen.update(peer.request)
        seen["request line"] = peer.request_line
        peer.accept()
        peer.frame(OP_CLOSE, close_payload(1000))
        await peer.close_code()

    async with (
        raw_server(script) as (uri, _),
        connect(
            uri + "path?q=1",
            origin="http://o.example",
            extra_headers=[("X-Custom", "yes")],
            **OPTS,
        ),
    ):
        pass
    assert seen["request line"] == "GET /path?q=1 HTTP/1.1"
    assert seen["upgrade"].lower() == "websocket"
    assert "upgrade" in seen["connection"].lower()
    assert seen["sec-websocket-version"] == "13"
    assert seen["origin"] == "http://o.example"
    assert seen["x-custom"] == "yes"
    assert seen["host"].startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ws://example.com", (False, "example.com", 80, "/", "example.com")),
        ("wss://example.com/chat?x=1", (True, "example.com", 443, "/chat?x=1", "example.com")),
        ("ws://example.com:8080/a/b", (False, "example.com", 8080, "/a/b", "example.com:8080")),
        ("wss://[::1]:9000/", (True, "::1", 9000, "/", "[::1]:9000")),
        ("ws://127.0.0.1:443/", (False, "127.0.0.1", 443, "/", "127.0.0.1:443")),
    ],
)
def test_parse_uri(uri: str, expected: tuple[bool, str, int, str, str]) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    ["http://example.com/", "example.com", "ws://", "ws://user:pw@example.com/", "ws://h:99999/"],
)
async def test_invalid_uri(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)
    with pytest.raises(InvalidURI):
        await connect(uri)
