"""The Engine.IO server, checked on the wire.

Requests are written by hand (a raw HTTP/1.x client and a minimal RFC 6455
client below), so every byte the server sends is visible. Most tests run on
the built-in HTTP server and under uvicorn through ``asgi_app()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import wsio.engineio
from wsio.asgi import ASGIApp
from wsio.engineio import Server, Session

BACKENDS = ["builtin", "uvicorn"]
RS = "\x1e"


# -- a raw HTTP client -------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP response as it came over the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[-1] if values else None

    def header_all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
    reply = Reply(status, headers, b"", head)  # type: ignore[arg-type]
    length = reply.header("Content-Length")
    if length is not None:
        reply.body = await reader.readexactly(int(length))
    elif (reply.header("Transfer-Encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        reply.body = b"".join(chunks)
    else:
        reply.body = await reader.read()
    return reply


async def request(
    port: int,
    method: str = "GET",
    target: str = "/engine.io/?EIO=4&transport=polling",
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | str = b"",
    version: str = "1.1",
    timeout: float = 5.0,
) -> Reply:
    """One request on a new connection (closed afterwards)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if isinstance(body, str):
            body = body.encode()
        writer.write(_head(port, method, target, headers or [], len(body), version) + body)
        return await asyncio.wait_for(read_reply(reader), timeout)
    finally:
        writer.close()


def _head(
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    length: int | None,
    version: str,
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", f"Host: 127.0.0.1:{port}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if length or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {length}")
    if version == "1.1" and not any(n.lower() == "connection" for n, _ in headers):
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def polling(sid: str | None = None, **extra: str) -> str:
    query = "EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    for key, value in extra.items():
        query += f"&{key}={value}"
    return f"/engine.io/?{query}"


def websocket(sid: str | None = None) -> str:
    return "/engine.io/?EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")


async def handshake(port: int, **kwargs: Any) -> tuple[str, dict[str, Any], Reply]:
    reply = await request(port, "GET", polling(), **kwargs)
    assert reply.status == 200, reply
    assert reply.text[0] == "0"
    data = json.loads(reply.text[1:])
    return data["sid"], data, reply


async def get(port: int, sid: str, **kwargs: Any) -> Reply:
    return await request(port, "GET", polling(sid), **kwargs)


async def post(port: int, sid: str, body: bytes | str, **kwargs: Any) -> Reply:
    return await request(port, "POST", polling(sid), body=body, **kwargs)


# -- a raw WebSocket client ----------------------------------------------------------


class Closed(Exception):
    """The server closed the WebSocket (``code``) or dropped the TCP connection (None)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class RawWebSocket:
    """Just enough RFC 6455 to see the server's frames one by one."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.reply = reply

    @classmethod
    async def connect(
        cls, port: int, target: str, headers: list[tuple[str, str]] | None = None
    ) -> RawWebSocket | Reply:
        """The connection, or the server's refusal (a Reply) when it does not answer 101."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        hs = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
            *(headers or []),
        ]
        writer.write(_head(port, "GET", target, hs, None, "1.1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        parsed = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
        reply = Reply(status, parsed, b"", head)  # type: ignore[arg-type]
        if status != 101:
            length = reply.header("Content-Length")
            with contextlib.suppress(Exception):
                reply.body = await asyncio.wait_for(
                    reader.readexactly(int(length)) if length else reader.read(), 5
                )
            writer.close()
            return reply
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        assert reply.header("Sec-WebSocket-Accept") == accept
        return cls(reader, writer, reply)

    @staticmethod
    def frame(message: str | bytes, opcode: int | None = None) -> bytes:
        payload = message.encode() if isinstance(message, str) else message
        if opcode is None:
            opcode = 1 if isinstance(message, str) else 2
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    async def send(self, *messages: str | bytes) -> None:
        """Send the messages in one write (so in one TCP segment when small)."""
        self.writer.write(b"".join(self.frame(m) for m in messages))
        await self.writer.drain()

    async def recv(self, timeout: float = 3.0) -> str | bytes:
        """The next data message; raises Closed on a close frame or EOF."""
        while True:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            except asyncio.IncompleteReadError:
                raise Closed(None) from None
            opcode = head[0] & 0x0F
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n)
            if opcode == 1:
                return payload.decode()
            if opcode == 2:
                return payload
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                with contextlib.suppress(Exception):
                    self.writer.write(self.frame(payload[:2], opcode=8))
                raise Closed(code)
            if opcode == 9:
                self.writer.write(self.frame(payload, opcode=10))

    async def expect_nothing(self, delay: float = 0.15) -> None:
        with pytest.raises(TimeoutError):
            got = await self.recv(timeout=delay)
            pytest.fail(f"unexpected message {got!r}")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(self.frame(struct.pack("!H", 1000), opcode=8))
        self.writer.close()


async def ws_connect(port: int, target: str, **kwargs: Any) -> RawWebSocket:
    ws = await RawWebSocket.connect(port, target, **kwargs)
    assert isinstance(ws, RawWebSocket), ws
    return ws


async def ws_refused(port: int, target: str, **kwargs: Any) -> Reply:
    reply = await RawWebSocket.connect(port, target, **kwargs)
    assert isinstance(reply, Reply), "the WebSocket handshake was accepted"
    return reply


# -- servers -----------------------------------------------------------------------------


@dataclass
class Running:
    """A started server, its port, and what its handlers saw."""

    eio: Server
    port: int
    backend: str
    events: list[tuple[Any, ...]] = field(default_factory=list)
    stop: Callable[[], Any] | None = None

    def session(self, sid: str) -> Session:
        return self.eio.sessions[sid]

    def messages(self, sid: str) -> list[str | bytes]:
        return [e[2] for e in self.events if e[0] == "message" and e[1] == sid]

    def disconnect(self, sid: str) -> tuple[str, float] | None:
        for e in self.events:
            if e[0] == "disconnect" and e[1] == sid:
                return e[2], e[3]
        return None

    async def wait_disconnect(self, sid: str, timeout: float = 3.0) -> tuple[str, float]:
        await until(lambda: self.disconnect(sid) is not None, timeout)
        result = self.disconnect(sid)
        assert result is not None
        return result


async def until(predicate: Callable[[], Any], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


def record(eio: Server, events: list[tuple[Any, ...]], echo: bool = False) -> None:
    opened: dict[str, float] = {}

    @eio.on("connect")
    def connect(session: Session, handshake: Any) -> None:
        opened[session.sid] = time.monotonic()
        events.append(("connect", session.sid, handshake))

    @eio.on("message")
    def message(session: Session, data: str | bytes) -> None:
        events.append(("message", session.sid, data))
        if echo:
            session.write(data)

    @eio.on("upgrade")
    def upgrade(session: Session) -> None:
        events.append(("upgrade", session.sid))

    @eio.on("disconnect")
    def disconnect(session: Session, reason: str) -> None:
        events.append(("disconnect", session.sid, reason, time.monotonic() - opened[session.sid]))


async def start_uvicorn(app: Any) -> tuple[int, Callable[[], Any]]:
    import uvicorn

    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started or task.done(), 10)
    if task.done():
        task.result()

    async def stop() -> None:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()

    return sock.getsockname()[1], stop


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """``await serve(backend, echo=False, **options)`` starts a recording server."""
    running: list[Running] = []

    async def start(backend: str = "builtin", echo: bool = False, **options: Any) -> Running:
        eio = Server(**options)
        events: list[tuple[Any, ...]] = []
        record(eio, events, echo)
        if backend == "builtin":
            http = await eio.start("127.0.0.1", 0)
            run = Running(eio, http.port, backend, events, eio.shutdown)
        else:
            port, stop = await start_uvicorn(eio.asgi_app())
            run = Running(eio, port, backend, events, stop)
        running.append(run)
        return run

    yield start
    for run in running:
        assert run.stop is not None
        await run.stop()


# -- handshake -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_handshake_has_exactly_the_keys_in_ms(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=0.3, ping_timeout=0.2, max_http_buffer_size=12345)
    sid, data, reply = await handshake(srv.port)
    assert reply.text == "0" + json.dumps(data, separators=(",", ":"))
    assert list(data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert data == {
        "sid": sid,
        "upgrades": ["websocket"],
        "pingInterval": 300,
        "pingTimeout": 200,
        "maxPayload": 12345,
    }
    assert reply.header("Content-Type") == "text/plain; charset=UTF-8"
    assert [e[0] for e in srv.events] == ["connect"]
    info = srv.events[0][2]
    assert info.query["transport"] == "polling"
    assert info.address == "127.0.0.1"

    # a WebSocket-only session gets the open packet as its first frame
    ws = await ws_connect(srv.port, websocket())
    first = await ws.recv()
    assert isinstance(first, str) and first[0] == "0"
    data = json.loads(first[1:])
    assert list(data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert data["upgrades"] == [] and data["pingInterval"] == 300 and data["maxPayload"] == 12345
    await ws.close()


async def test_defaults_are_the_reference_ones(serve: Any) -> None:
    eio = Server()
    assert (eio.ping_interval, eio.ping_timeout, eio.upgrade_timeout) == (25, 20, 10)
    assert eio.max_http_buffer_size == 1_000_000
    assert eio.path == "/engine.io/"
    assert eio.transports == ("polling", "websocket")
    assert eio.ws_options.compression is None  # per-message deflate off, as in Node
    srv = await serve()
    _, data, _ = await handshake(srv.port)
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (
        25000,
        20000,
        1000000,
    )


@pytest.mark.parametrize(
    ("options", "upgrades"),
    [({"allow_upgrades": False}, []), ({"transports": ["polling"]}, []), ({}, ["websocket"])],
)
async def test_upgrades_offered(serve: Any, options: dict[str, Any], upgrades: list[str]) -> None:
    srv = await serve(**options)
    _, data, _ = await handshake(srv.port)
    assert data["upgrades"] == upgrades


async def test_custom_path(serve: Any) -> None:
    srv = await serve(path="/socket.io")
    reply = await request(srv.port, "GET", "/socket.io/?EIO=4&transport=polling")
    assert reply.status == 200 and reply.text[0] == "0"
    assert (await request(srv.port, "GET", polling())).status == 404


# -- errors --------------------------------------------------------------------------------

ERRORS = [
    ("GET", "/engine.io/?EIO=4&transport=carrier-pigeon", 400, 0, "Transport unknown"),
    ("GET", "/engine.io/?EIO=4", 400, 0, "Transport unknown"),
    ("GET", "/engine.io/?EIO=4&transport=polling&sid=nope", 400, 1, "Session ID unknown"),
    ("POST", "/engine.io/?EIO=4&transport=polling", 400, 2, "Bad handshake method"),
    ("PUT", "/engine.io/?EIO=4&transport=polling", 400, 2, "Bad handshake method"),
    ("GET", "/engine.io/?EIO=3&transport=polling", 400, 5, "Unsupported protocol version"),
    ("GET", "/engine.io/?transport=polling", 400, 5, "Unsupported protocol version"),
    ("GET", "/engine.io/?EIO=abc&transport=polling", 400, 5, "Unsupported protocol version"),
]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_error_codes(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    for method, target, status, code, message in ERRORS:
        reply = await request(srv.port, method, target)
        assert (reply.status, reply.json()) == (status, {"code": code, "message": message}), target
        assert reply.header("Content-Type") == "application/json"
    # the websocket transport over plain HTTP (no Upgrade): bad request
    reply = await request(srv.port, "GET", websocket())
    assert reply.status == 400 and reply.json()["code"] == 3
    # an upgrade for the polling transport, or for an unknown sid
    reply = await ws_refused(srv.port, polling())
    assert reply.status == 400 and json.loads(reply.body)["code"] == 3
    reply = await ws_refused(srv.port, websocket("nope"))
    assert reply.status == 400 and json.loads(reply.body) == {
        "code": 1,
        "message": "Session ID unknown",
    }
    assert srv.events == []
    assert srv.eio.sessions == {}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_allow_request(serve: Any, backend: str) -> None:
    seen: list[str] = []

    async def allow(req: Any) -> bool | str:
        seen.append(req.query.get("transport"))
        token = req.query.get("token")
        if token == "good":
            return True
        return "bad token" if token else False

    srv = await serve(backend, allow_request=allow)
    reply = await request(srv.port, "GET", polling(token="bad"))
    assert (reply.status, reply.json()) == (403, {"code": 4, "message": "bad token"})
    reply = await request(srv.port, "GET", polling())
    assert (reply.status, reply.json()) == (403, {"code": 4, "message": "forbidden"})
    reply = await ws_refused(srv.port, websocket() + "&token=bad")
    assert reply.status == 403 and json.loads(reply.body) == {"code": 4, "message": "bad token"}
    reply = await request(srv.port, "GET", polling(token="good"))
    assert reply.status == 200
    sid = json.loads(reply.text[1:])["sid"]
    # requests of an open session are not asked again
    assert (await post(srv.port, sid, "4x")).text == "ok"
    assert seen == ["polling", "polling", "websocket", "polling"]
    ws = await ws_connect(srv.port, websocket() + "&token=good")
    assert (await ws.recv())[0] == "0"
    await ws.close()


# -- CORS and Origin -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cors_allowlist(serve: Any, backend: str) -> None:
    good = "https://good.example"
    srv = await serve(backend, cors_allowed_origins=[good])
    sid, _, reply = await handshake(srv.port, headers=[("Origin", good)])
    assert reply.header("Access-Control-Allow-Origin") == good
    assert reply.header("Access-Control-Allow-Credentials") == "true"
    reply = await post(srv.port, sid, "4hi", headers=[("Origin", good)])
    assert reply.text == "ok" and reply.header("Access-Control-Allow-Origin") == good

    preflight = await request(
        srv.port,
        "OPTIONS",
        polling(sid),
        headers=[("Origin", good), ("Access-Control-Request-Method", "POST")],
    )
    assert preflight.status == 204
    assert preflight.header("Access-Control-Allow-Origin") == good
    assert "POST" in (preflight.header("Access-Control-Allow-Methods") or "")

    evil = [("Origin", "https://evil.example")]
    reply = await request(srv.port, "GET", polling(), headers=evil)
    assert (reply.status, reply.json()) == (403, {"code": 4, "message": "origin not allowed"})
    assert reply.header("Access-Control-Allow-Origin") is None
    reply = await post(srv.port, sid, "4stolen", headers=evil)
    assert reply.status == 403
    preflight = await request(srv.port, "OPTIONS", polling(sid), headers=evil)
    assert preflight.header("Access-Control-Allow-Origin") is None
    # the same allowlist guards WebSocket requests (cross-site WebSocket hijacking)
    reply = await ws_refused(srv.port, websocket(), headers=evil)
    assert reply.status == 403
    ws = await ws_connect(srv.port, websocket(), headers=[("Origin", good)])
    assert (await ws.recv())[0] == "0"
    await ws.close()
    # the foreign requests changed nothing
    assert srv.messages(sid) == ["hi"]
    assert not srv.session(sid).closed


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cors_default_is_same_origin_only(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    same = f"http://127.0.0.1:{srv.port}"
    _, _, reply = await handshake(srv.port, headers=[("Origin", same)])
    assert reply.header("Access-Control-Allow-Origin") == same
    _, _, reply = await handshake(srv.port)  # no Origin: not a browser, allowed
    assert reply.header("Access-Control-Allow-Origin") is None
    reply = await request(srv.port, "GET", polling(), headers=[("Origin", "http://other:1")])
    assert reply.status == 403 and reply.json()["code"] == 4
    reply = await ws_refused(srv.port, websocket(), headers=[("Origin", "http://other:1")])
    assert reply.status == 403


async def test_cors_star_and_no_credentials(serve: Any) -> None:
    srv = await serve(cors_allowed_origins="*", cors_credentials=False)
    _, _, reply = await handshake(srv.port, headers=[("Origin", "https://anyone.example")])
    assert reply.header("Access-Control-Allow-Origin") == "https://anyone.example"
    assert reply.header("Access-Control-Allow-Credentials") is None


# -- cookie, compression, HTTP/1.0 -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cookie(serve: Any, backend: str) -> None:
    srv = await serve(backend, cookie="io")
    sid, _, reply = await handshake(srv.port)
    assert reply.header("Set-Cookie") == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    reply = await post(srv.port, sid, "4x")
    assert reply.header("Set-Cookie") is None  # only on the handshake
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    assert ws.reply.header("Set-Cookie") == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    await ws.close()


async def test_cookie_options(serve: Any) -> None:
    srv = await serve(
        cookie={"name": "lb", "path": "/rt", "samesite": "Strict", "secure": True, "max_age": 60}
    )
    sid, _, reply = await handshake(srv.port)
    assert (
        reply.header("Set-Cookie")
        == f"lb={sid}; Path=/rt; HttpOnly; Secure; Max-Age=60; SameSite=Strict"
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_http_compression(serve: Any, backend: str) -> None:
    srv = await serve(backend, compression_threshold=1024)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    big = "compressible " * 200

    session.write(big)
    reply = await get(srv.port, sid, headers=[("Accept-Encoding", "gzip, deflate")])
    assert reply.header("Content-Encoding") == "gzip"
    assert len(reply.body) < len(big) // 4
    assert gzip.decompress(reply.body).decode() == "4" + big

    session.write(big)
    reply = await get(srv.port, sid, headers=[("Accept-Encoding", "gzip;q=0, deflate")])
    assert reply.header("Content-Encoding") == "deflate"
    assert zlib.decompress(reply.body).decode() == "4" + big

    session.write(big)
    reply = await get(srv.port, sid)
    assert reply.header("Content-Encoding") is None and reply.text == "4" + big

    session.write("small")
    reply = await get(srv.port, sid, headers=[("Accept-Encoding", "gzip")])
    assert reply.header("Content-Encoding") is None and reply.text == "4small"


async def test_http_compression_off(serve: Any) -> None:
    srv = await serve(http_compression=False)
    sid, _, _ = await handshake(srv.port)
    srv.session(sid).write("x" * 5000)
    reply = await get(srv.port, sid, headers=[("Accept-Encoding", "gzip")])
    assert reply.header("Content-Encoding") is None and reply.text == "4" + "x" * 5000


@pytest.mark.parametrize("backend", BACKENDS)
async def test_http_10_gets_content_length_never_chunked(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    reply = await request(srv.port, "GET", polling(), version="1.0")
    assert reply.status == 200
    assert reply.header("Content-Length") == str(len(reply.body))
    assert reply.header("Transfer-Encoding") is None
    sid = json.loads(reply.text[1:])["sid"]
    # a long-poll answered later
    pending = asyncio.create_task(get(srv.port, sid, version="1.0"))
    await until(lambda: srv.session(sid)._poll is not None)
    srv.session(sid).write("late" * 500)
    reply = await pending
    assert reply.header("Content-Length") == str(len(reply.body))
    assert reply.header("Transfer-Encoding") is None
    assert reply.text == "4" + "late" * 500
    reply = await post(srv.port, sid, "4from 1.0", version="1.0")
    assert reply.text == "ok" and reply.header("Content-Length") == "2"
    assert srv.messages(sid) == ["from 1.0"]


# -- long-polling --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_post_answers_ok_and_delivers_in_order(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    body = RS.join(["4one", "bAQIDBA==", "4", "4three"])
    reply = await post(srv.port, sid, body, headers=[("Content-Type", "text/plain;charset=UTF-8")])
    assert (reply.status, reply.body) == (200, b"ok")
    assert reply.header("Content-Type") == "text/html"
    assert srv.messages(sid) == ["one", b"\x01\x02\x03\x04", "", "three"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_get_holds_until_data_and_batches(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=5)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    pending = asyncio.create_task(get(srv.port, sid))
    await until(lambda: session._poll is not None)
    await asyncio.sleep(0.1)
    assert not pending.done()
    session.write("a")
    session.write(b"\xff\x00")
    session.write("c")
    reply = await pending
    assert reply.text == RS.join(["4a", "b/wA=", "4c"])
    assert reply.header("Cache-Control") == "no-store"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_get_closes_the_session(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    first = asyncio.create_task(get(srv.port, sid))
    await until(lambda: session._poll is not None)
    second = await get(srv.port, sid)
    assert (second.status, second.json()) == (400, {"code": 3, "message": "Bad request"})
    first_reply = await first
    assert (first_reply.status, first_reply.text) == (200, "1")  # the close packet
    third = await get(srv.port, sid)
    assert third.status == 400 and third.json()["code"] == 1
    assert (await srv.wait_disconnect(sid))[0] == "transport error"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_post_closes_the_session(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    # a POST whose body is still on its way...
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(_head(srv.port, "POST", polling(sid), [], 10, "1.1") + b"4slo")
    await until(lambda: session._post is not None)
    # ...and a second one: the protocol allows one at a time
    second = await post(srv.port, sid, "4second")
    assert second.status == 400
    assert session.closed
    writer.write(b"w-post")
    first = await asyncio.wait_for(read_reply(reader), 5)
    writer.close()
    assert first.status == 400 and first.json()["code"] == 1
    assert srv.messages(sid) == []
    assert (await srv.wait_disconnect(sid))[0] == "transport error"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sequential_posts_are_fine(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    for i in range(5):
        assert (await post(srv.port, sid, f"4m{i}")).text == "ok"
    # an abandoned POST does not count as in progress
    _reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(_head(srv.port, "POST", polling(sid), [], 10, "1.1") + b"4ab")
    await until(lambda: srv.session(sid)._post is not None)
    writer.close()
    await until(lambda: srv.session(sid)._post is None)
    assert (await post(srv.port, sid, "4last")).text == "ok"
    assert srv.messages(sid) == ["m0", "m1", "m2", "m3", "m4", "last"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_oversized_post(serve: Any, backend: str) -> None:
    srv = await serve(backend, max_http_buffer_size=1000)
    sid, data, _ = await handshake(srv.port)
    assert data["maxPayload"] == 1000
    assert (await post(srv.port, sid, "4" + "x" * 999)).text == "ok"
    reply = await post(srv.port, sid, "4" + "y" * 1000)
    assert reply.status == 413
    assert srv.messages(sid) == ["x" * 999]
    assert (await srv.wait_disconnect(sid))[0] == "transport error"
    assert (await get(srv.port, sid)).status == 400
    # without a session the body limit holds too
    reply = await request(srv.port, "POST", polling("nope"), body="4" + "z" * 5000)
    assert reply.status in (400, 413)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_abandoned_long_poll_closes_the_session(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=10)
    sid, _, _ = await handshake(srv.port)
    _reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(_head(srv.port, "GET", polling(sid), [], None, "1.1"))
    await until(lambda: srv.session(sid)._poll is not None)
    writer.close()
    reason, _ = await srv.wait_disconnect(sid, timeout=3)
    assert reason == "transport error"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_client_close_packet(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    pending = asyncio.create_task(get(srv.port, sid))
    await until(lambda: srv.session(sid)._poll is not None)
    assert (await post(srv.port, sid, "1")).text == "ok"
    assert (await pending).text == "6"
    assert (await get(srv.port, sid)).status == 400
    assert (await srv.wait_disconnect(sid))[0] == "transport close"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_server_close_delivers_pending_data_then_close(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    session.write("bye")
    await session.close()
    reply = await get(srv.port, sid)
    assert reply.text == "4bye" + RS + "1"
    assert (await get(srv.port, sid)).status == 400
    assert (await srv.wait_disconnect(sid))[0] == "forced close"

    # over WebSocket: the message, the close packet, then the close frame
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    session = srv.session(sid)
    await session.send("bye")
    closing = asyncio.create_task(session.close())
    assert await ws.recv() == "4bye"
    assert await ws.recv() == "1"
    with pytest.raises(Closed) as info:
        await ws.recv()
    assert info.value.code == 1000
    await asyncio.wait_for(closing, 5)
    assert (await srv.wait_disconnect(sid))[0] == "forced close"


# -- WebSocket transport -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_websocket_only_session(serve: Any, backend: str) -> None:
    srv = await serve(backend, echo=True)
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    await ws.send("4text", b"\x00\x01", "4")
    assert [await ws.recv() for _ in range(3)] == ["4text", b"\x00\x01", "4"]
    assert srv.messages(sid) == ["text", b"\x00\x01", ""]
    # the websocket sid cannot be used for polling
    reply = await get(srv.port, sid)
    assert reply.status == 400 and reply.json()["code"] == 3
    reply = await post(srv.port, sid, "4stolen")
    assert reply.status == 400
    # nor for a second WebSocket
    reply = await ws_refused(srv.port, websocket(sid))
    assert reply.status == 400
    await ws.send("4still here")
    assert await ws.recv() == "4still here"
    await ws.send("1")  # the client leaves
    with pytest.raises(Closed):
        await ws.recv()
    assert (await srv.wait_disconnect(sid))[0] == "transport close"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_websocket_bad_packet_closes_the_session(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    await ws.send("9nonsense")
    assert await ws.recv() == "1"
    with pytest.raises(Closed):
        await ws.recv()
    assert (await srv.wait_disconnect(sid))[0] == "parse error"


async def test_websocket_failing_in_its_first_bytes_opens_no_session(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad frame sent with the upgrade request: closed with 1002, no session, no error."""
    srv = await serve()
    request = (
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    unmasked = b"\x81\x014"  # a client frame without a mask: a protocol error
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(request + unmasked)
        reply = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        writer.close()
        head, _, frames = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert frames[0] == 0x88 and frames[2:4] == b"\x03\xea"  # Close 1002, no open packet
    assert srv.eio.sessions == {}
    assert not [e for e in srv.events if e[0] == "connect"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    ws = await ws_connect(srv.port, websocket())  # the server serves on
    assert (await ws.recv())[0] == "0"  # type: ignore[index]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_websocket_message_over_the_limit(serve: Any, backend: str) -> None:
    srv = await serve(backend, max_http_buffer_size=1000)
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    await ws.send("4" + "x" * 999)
    await until(lambda: len(srv.messages(sid)) == 1)
    await ws.send("4" + "x" * 1000)
    with pytest.raises(Closed) as info:
        while True:
            await ws.recv()
    assert info.value.code == 1009
    assert (await srv.wait_disconnect(sid))[0] == "transport error"
    assert srv.messages(sid) == ["x" * 999]


async def test_per_message_deflate_is_off_by_default(serve: Any) -> None:
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    srv = await serve()
    ws = await ws_connect(srv.port, websocket(), headers=offer)
    assert ws.reply.header("Sec-WebSocket-Extensions") is None
    await ws.close()
    srv = await serve(per_message_deflate=True)
    ws = await ws_connect(srv.port, websocket(), headers=offer)
    assert (ws.reply.header("Sec-WebSocket-Extensions") or "").startswith("permessage-deflate")
    await ws.close()


# -- upgrade -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_sequence(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=5)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    session.write("before")
    assert (await get(srv.port, sid)).text == "4before"

    pending = asyncio.create_task(get(srv.port, sid))
    await until(lambda: session._poll is not None)
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.expect_nothing()  # no open packet, nothing before the probe
    assert not pending.done()

    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    assert (await pending).text == "6"  # the pending GET is released with a noop

    session.write("during")  # the upgrade is under way: this waits for the WebSocket
    assert (await get(srv.port, sid)).text == "6"
    assert (await get(srv.port, sid)).text == "6"
    await ws.expect_nothing()  # nothing over the WebSocket before "5"
    assert session.transport == "polling"

    await ws.send("5")
    assert await ws.recv() == "4during"
    await ws.expect_nothing()  # no stray noop
    assert session.transport == "websocket"
    assert ("upgrade", sid) in srv.events

    await ws.send("4hi", b"\x07")
    await until(lambda: len(srv.messages(sid)) == 2)
    assert srv.messages(sid) == ["hi", b"\x07"]
    await session.send("after")
    assert await ws.recv() == "4after"

    # polling for this sid is over, and a second WebSocket is refused
    reply = await get(srv.port, sid)
    assert reply.status == 400 and reply.json()["code"] == 3
    assert (await post(srv.port, sid, "4late")).status == 400
    assert (await ws_refused(srv.port, websocket(sid))).status == 400
    await ws.send("4ok")
    await until(lambda: len(srv.messages(sid)) == 3)
    assert not session.closed
    await ws.close()
    assert (await srv.wait_disconnect(sid))[0] == "transport close"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_packet_and_message_in_one_segment(serve: Any, backend: str) -> None:
    srv = await serve(backend, echo=True)
    sid, _, _ = await handshake(srv.port)
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    await ws.send("5", "4first", b"\x01", "4third")
    assert [await ws.recv() for _ in range(3)] == ["4first", b"\x01", "4third"]
    assert srv.messages(sid) == ["first", b"\x01", "third"]
    await ws.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_second_websocket_during_the_probe_is_refused(serve: Any, backend: str) -> None:
    srv = await serve(backend)
    sid, _, _ = await handshake(srv.port)
    ws = await ws_connect(srv.port, websocket(sid))
    assert (await ws_refused(srv.port, websocket(sid))).status == 400
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    await ws.send("5")
    await until(lambda: srv.session(sid).transport == "websocket")
    await ws.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_timeout(serve: Any, backend: str) -> None:
    srv = await serve(backend, upgrade_timeout=0.3, ping_interval=5)
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    session.write("held")
    started = time.monotonic()
    with pytest.raises(Closed):
        await ws.recv(timeout=3)  # the probe that never completes is closed
    assert 0.2 < time.monotonic() - started < 3
    # the session goes on over polling, with what was held back
    assert session.transport == "polling" and not session.closed
    assert (await get(srv.port, sid)).text == "4held"
    # and a new upgrade can be tried
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    await ws.send("5")
    await until(lambda: session.transport == "websocket")
    await ws.close()


async def test_probe_failure_keeps_polling(serve: Any) -> None:
    srv = await serve()
    sid, _, _ = await handshake(srv.port)
    session = srv.session(sid)
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.send("4not a probe")
    with pytest.raises(Closed):
        await ws.recv()
    assert not session.closed and session.transport == "polling"
    assert srv.messages(sid) == []
    # the client gives up on its probe: polling goes on
    ws = await ws_connect(srv.port, websocket(sid))
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    await ws.close()
    await until(lambda: not session.upgrading)
    session.write("still polling")
    assert (await get(srv.port, sid)).text == "4still polling"


# -- heartbeat -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_ping_timeout_is_enforced_without_any_request(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=0.2, ping_timeout=0.2)
    sid, _, _ = await handshake(srv.port)
    # not a single request after the handshake: the timer alone ends the session
    reason, after = await srv.wait_disconnect(sid, timeout=3)
    assert reason == "ping timeout"
    assert 0.35 <= after < 2.0
    assert sid not in srv.eio.sessions
    reply = await get(srv.port, sid)
    assert reply.status == 400 and reply.json()["code"] == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_polling_heartbeat(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=0.15, ping_timeout=0.3)
    sid, _, _ = await handshake(srv.port)
    for _ in range(3):
        started = time.monotonic()
        assert (await get(srv.port, sid)).text == "2"
        assert time.monotonic() - started < 1.5
        assert (await post(srv.port, sid, "3")).text == "ok"
    assert not srv.session(sid).closed


@pytest.mark.parametrize("backend", BACKENDS)
async def test_websocket_heartbeat(serve: Any, backend: str) -> None:
    srv = await serve(backend, ping_interval=0.2, ping_timeout=0.2)
    ws = await ws_connect(srv.port, websocket())
    sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    # answered pings: the next one comes one interval after the pong
    for _ in range(3):
        assert await ws.recv(timeout=1) == "2"
        await asyncio.sleep(0.1)
        await ws.send("3")
        pong_sent = time.monotonic()
    assert await ws.recv(timeout=1) == "2"
    assert time.monotonic() - pong_sent >= 0.18
    assert not srv.session(sid).closed
    # this ping goes unanswered: closed after ping_timeout
    with pytest.raises(Closed):
        await ws.recv(timeout=2)
    reason, after = await srv.wait_disconnect(sid)
    assert reason == "ping timeout"
    assert after >= 1.0


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_bad_input_disturbs_no_other_session(serve: Any, backend: str) -> None:
    srv = await serve(backend, cors_allowed_origins=["https://good.example"], echo=True)
    bystander, _, _ = await handshake(srv.port)
    bystander_ws = await ws_connect(srv.port, websocket())
    ws_sid = json.loads((await bystander_ws.recv())[1:])["sid"]  # type: ignore[index]

    async def victim() -> str:
        return (await handshake(srv.port))[0]

    for body in ["abc", "4ok" + RS, RS, "b!!!", "bAQI", "0{}", "6x", b"\xff\xfe"]:
        sid = await victim()
        reply = await post(srv.port, sid, body)
        assert reply.status == 400, body
        assert reply.json()["code"] == 3
        assert (await get(srv.port, sid)).status == 400, body
        assert (await srv.wait_disconnect(sid))[0] == "parse error"

    sid = await victim()
    reply = await post(srv.port, sid, "4x", headers=[("Content-Type", "application/octet-stream")])
    assert reply.status == 400

    reply = await get(srv.port, "nope")
    assert reply.json() == {"code": 1, "message": "Session ID unknown"}
    reply = await get(srv.port, ws_sid)  # a WebSocket session's sid used for polling
    assert reply.status == 400 and reply.json()["code"] == 3
    assert (await ws_refused(srv.port, websocket("nope"))).status == 400
    assert (await ws_refused(srv.port, websocket(ws_sid))).status == 400
    evil = [("Origin", "https://evil.example")]
    assert (await get(srv.port, bystander, headers=evil)).status == 403
    assert (await post(srv.port, bystander, "4evil", headers=evil)).status == 403
    assert (await ws_refused(srv.port, websocket(bystander), headers=evil)).status == 403
    # a malformed HTTP request
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GARBAGE\r\n\r\n")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.read(), 2)
    writer.close()

    # the bystanders never noticed
    assert srv.disconnect(bystander) is None, srv.events
    assert (await post(srv.port, bystander, "4alive")).text == "ok"
    assert (await get(srv.port, bystander)).text == "4alive"
    await bystander_ws.send("4alive too")
    assert await bystander_ws.recv() == "4alive too"
    assert srv.messages(bystander) == ["alive"]
    assert srv.messages(ws_sid) == ["alive too"]
    assert srv.disconnect(bystander) is None and srv.disconnect(ws_sid) is None
    await bystander_ws.close()


# -- ASGI specifics ---------------------------------------------------------------------------------


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI application standing for FastAPI/Starlette."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                plain_app.shutdowns += 1  # type: ignore[attr-defined]
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "other app"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = f"other app: {scope['method']} {scope['path']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


plain_app.shutdowns = 0  # type: ignore[attr-defined]


async def test_asgi_routes_other_paths(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>wsio</title>")
    eio = Server(ping_interval=5)
    events: list[tuple[Any, ...]] = []
    record(eio, events, echo=True)
    app = ASGIApp(eio, other_app=plain_app, static_files={"/static": str(tmp_path)})
    port, stop = await start_uvicorn(app)
    try:
        reply = await request(port, "GET", "/static/index.html")
        assert reply.text == "<title>wsio</title>"
        reply = await request(port, "POST", "/api/things", body="x")
        assert reply.text == "other app: POST /api/things"
        ws = await ws_connect(port, "/chat")
        assert await ws.recv() == "other app"
        sid, _, _ = await handshake(port)
        assert (await post(port, sid, "4hello")).text == "ok"
        assert (await get(port, sid)).text == "4hello"
        shutdowns = plain_app.shutdowns  # type: ignore[attr-defined]
    finally:
        await stop()
    # lifespan shutdown reached both: sessions closed, the other app told
    assert plain_app.shutdowns == shutdowns + 1  # type: ignore[attr-defined]
    assert ("disconnect", sid) in [e[:2] for e in events]
    assert eio.sessions == {}


async def test_asgi_alone_404_and_lifespan_closes_sessions() -> None:
    eio = Server(ping_interval=5)
    events: list[tuple[Any, ...]] = []
    record(eio, events)
    port, stop = await start_uvicorn(eio.asgi_app())
    try:
        assert (await request(port, "GET", "/elsewhere")).status == 404
        assert (await ws_refused(port, "/elsewhere")).status == 404
        sid, _, _ = await handshake(port)
        ws = await ws_connect(port, websocket())
        ws_sid = json.loads((await ws.recv())[1:])["sid"]  # type: ignore[index]
    finally:
        await stop()
    # uvicorn closes its WebSocket connections itself (1012) before the
    # lifespan shutdown, which then closes the remaining polling sessions
    with pytest.raises(Closed) as info:
        await ws.recv()
    assert info.value.code == 1012
    reasons = {e[1]: e[2] for e in events if e[0] == "disconnect"}
    assert reasons == {sid: "forced close", ws_sid: "transport close"}
    assert eio.sessions == {}


async def test_asgi_under_a_root_path() -> None:
    eio = Server(ping_interval=5)
    app = ASGIApp(eio)

    async def mounted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": "/rt", "path": "/rt" + scope["path"]}
        await app(scope, receive, send)

    port, stop = await start_uvicorn(mounted)
    try:
        sid, _, _ = await handshake(port)
        assert sid in eio.sessions
    finally:
        await stop()


def test_package_exports() -> None:
    assert wsio.engineio.Server is Server
    assert Server.asgi_app.__doc__


# -- the ASGI WebSocket adapter on its own ----------------------------------------------------------


class FakeASGIServer:
    """The ASGI server's side of one WebSocket: scripted receive, recorded send."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        await self.gate.wait()
        self.sent.append(message)


async def test_asgi_adapter_writes_in_order_with_backpressure() -> None:
    from wsio.asgi import ASGIWebSocket
    from wsio.websocket import ConnectionClosed

    peer = FakeASGIServer()
    ws = ASGIWebSocket(
        {"client": ("10.0.0.1", 5000)}, peer.receive, peer.send, write_limit=100, max_size=50
    )
    assert ws.remote_address == ("10.0.0.1", 5000)
    peer.gate.clear()  # the ASGI server is slow to take data
    assert ws.write_message("a" * 60) is True
    assert ws.write_message(b"b" * 60) is False  # above the high-water mark
    assert not ws.writable and ws.write_buffer_size == 120
    drained = asyncio.create_task(ws.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    peer.gate.set()
    await asyncio.wait_for(drained, 1)
    await until(lambda: ws.write_buffer_size == 0)
    assert [m.get("text") or m.get("bytes") for m in peer.sent] == ["a" * 60, b"b" * 60]

    got: list[str | bytes] = []
    closed: list[Any] = []
    reader = asyncio.create_task(ws.run())
    await peer.incoming.put({"type": "websocket.receive", "text": "early"})
    await until(lambda: ws._pending)
    ws.set_callbacks(got.append, closed.append)  # messages that came first are delivered first
    ws.pause_reading()
    await peer.incoming.put({"type": "websocket.receive", "bytes": b"later"})
    await asyncio.sleep(0.02)
    assert got == ["early"]  # paused: the ASGI server keeps it
    ws.resume_reading()
    await until(lambda: len(got) == 2)
    assert got == ["early", b"later"]

    await peer.incoming.put({"type": "websocket.receive", "text": "x" * 51})  # too big
    await until(lambda: peer.sent[-1]["type"] == "websocket.close")
    assert peer.sent[-1]["code"] == 1009 and ws.failed
    assert got == ["early", b"later"]
    with pytest.raises(ConnectionClosed):
        ws.write_message("after close")
    await peer.incoming.put({"type": "websocket.disconnect", "code": 1009})
    await asyncio.wait_for(reader, 1)
    assert closed == [ws]


async def test_asgi_adapter_close_flushes_first() -> None:
    from wsio.asgi import ASGIWebSocket

    peer = FakeASGIServer()
    ws = ASGIWebSocket({}, peer.receive, peer.send)
    reader = asyncio.create_task(ws.run())
    ws.write_message("4last words")
    ws.write_message("1")
    closing = asyncio.create_task(ws.close(1000))
    await until(lambda: len(peer.sent) == 3)
    assert [m["type"] for m in peer.sent] == ["websocket.send", "websocket.send", "websocket.close"]
    assert not closing.done()  # waits for the connection to end
    await peer.incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(closing, 1)
    await asyncio.wait_for(reader, 1)
    assert ws.close_code == 1000


async def test_session_write_accepts_str_subclasses_and_refuses_other_types() -> None:
    import enum

    from wsio.engineio.session import HandshakeInfo, Session
    from wsio.http.headers import Headers

    class Color(enum.StrEnum):
        RED = "red"

    eio = Server()
    session = Session(eio, "sid", HandshakeInfo(Headers(), {}, None, "/", False), "polling")
    session.write(Color.RED)
    session.write(bytearray(b"\x01"))
    assert session._queue == ["4red", b"\x01"]
    with pytest.raises(TypeError, match="str or bytes"):
        session.write(42)  # type: ignore[arg-type]
