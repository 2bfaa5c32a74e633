"""The built-in HTTP/1.1 server (wsio.http.server), driven over raw sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from wsio.http import HTTPServer, Limits, Request, Response


class App:
    """Answers with what it saw; ``/slow/<ms>`` waits first, ``/boom`` raises."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.path.startswith("/slow/"):
            await asyncio.sleep(int(request.path.split("/")[2]) / 1000)
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        if request.path == "/big":
            return Response(200, b"b" * 100_000, content_type="application/octet-stream")
        if request.path == "/wait-disconnect":
            await asyncio.wait_for(request.wait_disconnected(), 5)
            return Response(200, "gone")
        body = f"{request.method} {request.path} {request.query_string} {len(request.body)}"
        return Response.text(200, body, [("X-Body", request.body[:50].decode("latin-1"))])


Start = Callable[..., Awaitable[tuple[HTTPServer, App]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[HTTPServer] = []

    async def run(**limits: object) -> tuple[HTTPServer, App]:
        app = App()
        server = HTTPServer(app, Limits(**limits))  # type: ignore[arg-type]
        await server.listen("127.0.0.1", 0)
        servers.append(server)
        return server, app

    try:
        yield run
    finally:
        for server in servers:
            await server.close()


async def open_conn(server: HTTPServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def read_response(
    reader: asyncio.StreamReader, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One response: status, lower-cased headers, body (by Content-Length)."""
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        return status, headers, body


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 3.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return await reader.read() == b""
    except ConnectionError:
        return True


async def test_keep_alive(start: Start) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    for i in range(3):
        writer.write(f"GET /n{i}?x=1 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, headers, body = await read_response(reader)
        assert status == 200
        assert body == f"GET /n{i} x=1 0".encode()
        assert headers.get("connection", "") != "close"
    assert len({id(r) for r in app.requests}) == 3
    writer.close()


async def test_http_1_0_closes(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(b"GET /old HTTP/1.0\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 200 and body == b"GET /old  0"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert await closed_by_server(reader)
    writer.close()


async def test_http_1_0_keep_alive(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    for _ in range(2):
        writer.write(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 200 and body == b"GET /ka  0"
        assert headers["connection"].lower() == "keep-alive"
        assert headers["content-length"] == str(len(body))
    writer.close()


async def test_connection_close_request(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await closed_by_server(reader)
    writer.close()


async def test_content_length_body(start: Start) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    writer.write(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello")
    await asyncio.sleep(0.05)
    writer.write(b" world")
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"POST /p  11"
    assert app.requests[0].body == b"hello world"
    writer.close()


async def test_chunked_body(start: Start) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n"
    )
    await asyncio.sleep(0.05)
    writer.write(b"5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"POST /c  11"
    assert app.requests[0].body == b"hello world"
    # The connection is still usable afterwards.
    writer.write(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, body = await read_response(reader)
    assert body == b"GET /after  0"
    writer.close()


async def test_expect_100_continue(start: Start) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    writer.write(b"PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert line.startswith(b"HTTP/1.1 100 ")
    writer.write(b"data")
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"PUT /e  4"
    assert app.requests[0].body == b"data"
    writer.close()


async def test_expect_100_continue_refused_when_too_large(start: Start) -> None:
    server, app = await start(max_body_size=100)
    reader, writer = await open_conn(server)
    writer.write(
        b"PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _, _ = await read_response(reader)
    assert status == 413  # no 100 Continue first
    assert await closed_by_server(reader)
    assert app.requests == []
    writer.close()


async def test_431_many_headers(start: Start) -> None:
    server, app = await start(max_header_size=4096)
    reader, writer = await open_conn(server)
    filler = "".join(f"X-H{i}: {'v' * 50}\r\n" for i in range(100))
    writer.write(f"GET / HTTP/1.1\r\nHost: t\r\n{filler}\r\n".encode())
    status, headers, _ = await read_response(reader)
    assert status == 431 and headers["connection"] == "close"
    assert await closed_by_server(reader)
    assert app.requests == []
    writer.close()


async def test_431_one_endless_header(start: Start) -> None:
    """A header line that never ends is refused once it passes the limit."""
    server, _ = await start(max_header_size=4096)
    reader, writer = await open_conn(server)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nX-Endless: ")
    status = None
    for _ in range(50):  # up to 500 KB, without ever ending the line
        try:
            writer.write(b"a" * 10_000)
            await writer.drain()
        except ConnectionError:
            break
        try:
            status, _, _ = await read_response(reader, timeout=0.02)
            break
        except TimeoutError:
            continue
    assert status == 431
    writer.close()


async def test_414_long_target(start: Start) -> None:
    server, _ = await start(max_header_size=4096)
    reader, writer = await open_conn(server)
    writer.write(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status in (414, 431)
    writer.close()


async def test_413_content_length(start: Start) -> None:
    server, app = await start(max_body_size=1000)
    reader, writer = await open_conn(server)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 413
    assert await closed_by_server(reader)
    assert app.requests == []
    writer.close()


async def test_413_chunked(start: Start) -> None:
    server, app = await start(max_body_size=1000)
    reader, writer = await open_conn(server)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):
        writer.write(b"12c\r\n" + b"x" * 300 + b"\r\n")
    status, _, _ = await read_response(reader)
    assert status == 413
    assert app.requests == []
    writer.close()


async def test_body_at_limit_accepted(start: Start) -> None:
    server, _ = await start(max_body_size=1000)
    reader, writer = await open_conn(server)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000)
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"POST /  1000"
    writer.close()


async def test_slowloris_gets_408(start: Start) -> None:
    server, app = await start(request_timeout=0.4)
    reader, writer = await open_conn(server)
    started = time.monotonic()
    request = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n\r\n"
    status = None
    for i in range(len(request) - 4):  # one byte every 50 ms, never the end
        writer.write(request[i : i + 1])
        try:
            status, _, _ = await read_response(reader, timeout=0.05)
            break
        except TimeoutError:
            continue
        except (ConnectionError, asyncio.IncompleteReadError):
            break
    elapsed = time.monotonic() - started
    assert status == 408
    assert 0.3 < elapsed < 1.5
    assert await closed_by_server(reader)
    assert app.requests == []
    writer.close()


async def test_slow_body_gets_408(start: Start) -> None:
    server, app = await start(request_timeout=0.4)
    reader, writer = await open_conn(server)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    status = None
    for _ in range(40):
        writer.write(b"x")
        try:
            status, _, _ = await read_response(reader, timeout=0.05)
            break
        except TimeoutError:
            continue
    assert status == 408
    assert app.requests == []
    writer.close()


async def test_slow_handler_is_not_a_timeout(start: Start) -> None:
    server, _ = await start(request_timeout=0.2)
    reader, writer = await open_conn(server)
    writer.write(b"GET /slow/500 HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"GET /slow/500  0"
    writer.close()


async def test_silent_connection_closed(start: Start) -> None:
    server, _ = await start(request_timeout=0.3)
    reader, writer = await open_conn(server)
    started = time.monotonic()
    assert await closed_by_server(reader)
    assert time.monotonic() - started < 1.5
    writer.close()


async def test_idle_keep_alive_closed(start: Start) -> None:
    server, _ = await start(keepalive_timeout=0.3)
    reader, writer = await open_conn(server)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await read_response(reader)
    started = time.monotonic()
    assert await closed_by_server(reader)
    assert 0.2 < time.monotonic() - started < 1.5
    writer.close()


async def test_pipelined_requests_in_order(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(
        b"GET /slow/200 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /slow/0 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /slow/50 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    bodies = [(await read_response(reader))[2] for _ in range(4)]
    assert bodies == [b"GET /slow/200  0", b"POST /slow/0  3", b"GET /slow/50  0", b"GET /last  0"]
    writer.close()


async def test_pipelined_expect_100_continue_in_order(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(
        b"GET /slow/200 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"PUT /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"GET /slow/200  0")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 100 ")
    writer.write(b"ok")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"PUT /b  2")
    writer.close()


async def test_many_pipelined_requests(start: Start) -> None:
    server, _ = await start(max_pipelined=2)
    reader, writer = await open_conn(server)
    writer.write(b"".join(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(50)))
    bodies = [(await read_response(reader))[2] for _ in range(50)]
    assert bodies == [f"GET /r{i}  0".encode() for i in range(50)]
    writer.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        # request smuggling guards
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
    ],
)
async def test_malformed_request_400(start: Start, raw: bytes) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    writer.write(raw)
    status, headers, _ = await read_response(reader)
    assert status == 400
    assert headers["connection"] == "close"
    assert await closed_by_server(reader)
    assert app.requests == []
    writer.close()


async def test_head_has_no_body(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: 10\r\n" in head  # of "HEAD /h  0"
    # The next bytes are the next response, not a body.
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"GET /next  0"
    writer.close()


async def test_handler_error_is_500(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 500
    assert any("handler bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    writer.write(b"GET /fine HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 200
    writer.close()


async def test_large_response_and_path_decoding(start: Start) -> None:
    server, app = await start()
    reader, writer = await open_conn(server)
    writer.write(
        b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /a%20b/%C3%A9?q=%20 HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    status, _, body = await read_response(reader)
    assert status == 200 and body == b"b" * 100_000
    status, _, body = await read_response(reader)
    assert app.requests[1].path == "/a b/é"
    assert app.requests[1].query_string == "q=%20"
    assert app.requests[1].query == {"q": " "}
    writer.close()


async def test_client_disconnect_is_noticed(start: Start) -> None:
    server, app = await start()
    _, writer = await open_conn(server)
    writer.write(b"GET /wait-disconnect HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.1)
    assert app.requests[0].disconnected


async def test_max_connections(start: Start) -> None:
    server, _ = await start(max_connections=2)
    first = await open_conn(server)
    second = await open_conn(server)
    await asyncio.sleep(0.05)
    reader, writer = await open_conn(server)
    assert await closed_by_server(reader)
    writer.close()
    for r, w in (first, second):
        w.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, _ = await read_response(r)
        assert status == 200
        w.close()


async def test_close_finishes_request_in_progress(start: Start) -> None:
    server, _ = await start()
    reader, writer = await open_conn(server)
    writer.write(b"GET /slow/200 HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.sleep(0.05)
    await server.close()
    status, headers, body = await read_response(reader)
    assert status == 200 and body == b"GET /slow/200  0"
    assert headers["connection"] == "close"
    assert await closed_by_server(reader)
    writer.close()
