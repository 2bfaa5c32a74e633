"""The asyncio HTTP/1.1 client (wsio.http.client) against wsio's server and raw sockets."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from pathlib import Path

import pytest

from support.certs import make_cert
from wsio.http import HTTPServer, Request, Response
from wsio.http.client import (
    ConnectError,
    CookieJar,
    HTTPClient,
    HTTPError,
    ProtocolError,
    RequestAborted,
    RequestTimeout,
    ResponseTooLarge,
    ServerDisconnected,
)

Handler = Callable[[Request], Awaitable[Response]]


class App:
    """A wsio HTTPServer application that records requests and delegates to a handler."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.peers: set[tuple[str, int]] = set()

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.client is not None:
            self.peers.add(request.client)
        return await self.handler(request)


StartApp = Callable[..., Awaitable[tuple[App, str]]]


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """``app, base_url = await start_app(handler, ssl=None)``: a wsio HTTP server on 127.0.0.1."""
    servers: list[HTTPServer] = []

    async def start(handler: Handler, ssl: ssl.SSLContext | None = None) -> tuple[App, str]:
        app = App(handler)
        server = HTTPServer(app)
        await server.listen("127.0.0.1", 0, ssl=ssl)
        servers.append(server)
        scheme = "https" if ssl is not None else "http"
        return app, f"{scheme}://127.0.0.1:{server.port}"

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[RawHandler], Awaitable[str]]]:
    """``base_url = await raw_server(handler)``: an asyncio stream server for canned responses."""
    servers: list[asyncio.Server] = []

    async def start(handler: RawHandler) -> str:
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    try:
        yield start
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def canned(*responses: bytes, keep_open: bool = False) -> RawHandler:
    """Answer successive requests on one connection with *responses*, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_head(reader)
            writer.write(response)
            await writer.drain()
        if keep_open:
            await reader.read()

    return handler


# -- basic requests ------------------------------------------------------------------


async def test_get_and_post_with_content_length(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        body = f"{request.method} {request.target} {request.body.decode()}"
        return Response(200, body, [("X-Seen", request.headers.get("X-Test") or "")], "text/plain")

    app, base = await start_app(handler)
    async with HTTPClient() as http:
        r1 = await http.request("GET", f"{base}/a?x=1", headers={"X-Test": "one"})
        r2 = await http.request("POST", f"{base}/b", body=b"payload", headers=[("X-Test", "two")])
        r3 = await http.request("POST", f"{base}/c", body="é")
    assert (r1.status, r1.body, r1.headers["X-Seen"]) == (200, b"GET /a?x=1 ", "one")
    assert (r2.status, r2.body, r2.headers["X-Seen"]) == (200, b"POST /b payload", "two")
    assert r3.body == "POST /c é".encode()
    assert r1.ok and r1.reason == "OK" and r1.text().startswith("GET")
    assert app.requests[1].headers["Content-Length"] == "7"
    assert app.requests[0].headers["Host"] == base.removeprefix("http://")
    assert app.requests[0].headers["User-Agent"] == "wsio"
    # keep-alive: the three requests shared one connection
    assert len(app.peers) == 1


async def test_error_status_is_a_response(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        return Response(404, "nope", content_type="text/plain")

    _, base = await start_app(handler)
    async with HTTPClient() as http:
        response = await http.request("GET", f"{base}/missing")
    assert (response.status, response.body, response.ok) == (404, b"nope", False)


async def test_long_poll_and_post_run_at_once(start_app: StartApp) -> None:
    release = asyncio.Event()

    async def handler(request: Request) -> Response:
        if request.method == "GET":
            await release.wait()
            return Response(200, "polled")
        release.set()
        return Response(200, "posted")

    app, base = await start_app(handler)
    async with HTTPClient() as http:
        poll = asyncio.ensure_future(http.request("GET", f"{base}/poll"))
        await asyncio.sleep(0.05)
        post = await http.request("POST", f"{base}/post", body=b"x", timeout=2)
        assert post.body == b"posted"
        assert (await asyncio.wait_for(poll, 2)).body == b"polled"
    assert len(app.peers) == 2


async def test_pool_limit_queues_requests(start_app: StartApp) -> None:
    active = 0
    peak = 0

    async def handler(request: Request) -> Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return Response(200, request.path)

    app, base = await start_app(handler)
    async with HTTPClient(max_connections_per_host=2) as http:
        results = await asyncio.gather(*(http.request("GET", f"{base}/{i}") for i in range(8)))
    assert [r.body for r in results] == [f"/{i}".encode() for i in range(8)]
    assert peak == 2
    assert len(app.peers) == 2


async def test_head_and_no_content(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    base = await raw_server(
        canned(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            keep_open=True,
        )
    )
    async with HTTPClient() as http:
        head = await http.request("HEAD", base + "/", timeout=2)
        empty = await http.request("DELETE", base + "/", timeout=2)
        last = await http.request("GET", base + "/", timeout=2)
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "1234")
    assert (empty.status, empty.body) == (204, b"")
    assert last.body == b"ok"


# -- body framing and encodings ----------------------------------------------------------


async def test_chunked_response(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world"):
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        await writer.drain()
        await reader.read()

    base = await raw_server(handler)
    async with HTTPClient() as http:
        response = await http.request("GET", base + "/", timeout=2)
    assert response.body == b"hello chunked world"


async def test_interim_response_is_skipped(
    raw_server: Callable[[RawHandler], Awaitable[str]],
) -> None:
    base = await raw_server(
        canned(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
    )
    async with HTTPClient() as http:
        response = await http.request("POST", base + "/", body=b"x", timeout=2)
    assert (response.status, response.body) == (200, b"done")


async def test_body_until_close(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    base = await raw_server(canned(b"HTTP/1.0 200 OK\r\n\r\nall of it"))
    async with HTTPClient() as http:
        response = await http.request("GET", base + "/", timeout=2)
    assert response.body == b"all of it"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_content_encoding_decoded(start_app: StartApp, encoding: str) -> None:
    payload = ("0123456789" * 5000).encode()

    async def handler(request: Request) -> Response:
        assert "gzip" in (request.headers.get("Accept-Encoding") or "")
        if encoding == "gzip":
            body, name = gzip.compress(payload), "gzip"
        elif encoding == "deflate":
            body, name = zlib.compress(payload), "deflate"
        else:
            c = zlib.compressobj(wbits=-15)
            body, name = c.compress(payload) + c.flush(), "deflate"
        return Response(200, body, [("Content-Encoding", name)])

    _, base = await start_app(handler)
    async with HTTPClient() as http:
        response = await http.request("GET", base + "/", timeout=2)
    assert response.body == payload
    assert response.headers["Content-Encoding"] in ("gzip", "deflate")


async def test_response_size_limit(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/bomb":
            return Response(200, gzip.compress(b"\0" * 200_000), [("Content-Encoding", "gzip")])
        return Response(200, b"x" * 20_000)

    _, base = await start_app(handler)
    async with HTTPClient(max_response_size=10_000) as http:
        with pytest.raises(ResponseTooLarge):
            await http.request("GET", base + "/big", timeout=2)
        with pytest.raises(ResponseTooLarge):
            await http.request("GET", base + "/bomb", timeout=2)
        # the client still works
        http.max_response_size = 50_000
        assert len((await http.request("GET", base + "/big", timeout=2)).body) == 20_000


# -- failures ------------------------------------------------------------------------------------


async def test_malformed_response(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    base = await raw_server(canned(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n"))
    async with HTTPClient() as http:
        with pytest.raises(ProtocolError):
            await http.request("GET", base + "/", timeout=2)


async def test_truncated_response(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    base = await raw_server(canned(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
    async with HTTPClient() as http:
        with pytest.raises(ServerDisconnected) as info:
            await http.request("GET", base + "/", timeout=2)
    assert info.value.partial


async def test_connection_refused() -> None:
    from support.procs import free_port

    async with HTTPClient() as http:
        with pytest.raises(ConnectError) as info:
            await http.request("GET", f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, OSError)


async def test_timeout(raw_server: Callable[[RawHandler], Awaitable[str]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    base = await raw_server(silent)
    async with HTTPClient() as http:
        start = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await http.request("GET", base + "/", timeout=0.2)
    assert 0.15 < time.monotonic() - start < 2
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, HTTPError)


async def test_close_aborts_pending_long_poll(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        await asyncio.sleep(30)
        return Response(200, "late")

    _, base = await start_app(handler)
    http = HTTPClient()
    poll = asyncio.ensure_future(http.request("GET", base + "/poll"))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await http.close()
    with pytest.raises(RequestAborted):
        await asyncio.wait_for(poll, 1)
    assert time.monotonic() - start < 0.5
    with pytest.raises(RequestAborted):
        await http.request("GET", base + "/")


async def test_cancelled_request_drops_its_connection(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            await asyncio.sleep(5)
        return Response(200, request.path)

    app, base = await start_app(handler)
    async with HTTPClient() as http:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(http.request("GET", base + "/slow"), 0.1)
        response = await http.request("GET", base + "/fast", timeout=2)
    assert response.body == b"/fast"
    assert len(app.peers) == 2  # the cancelled request's connection was not reused


async def test_stale_keepalive_connection_is_retried(
    raw_server: Callable[[RawHandler], Awaitable[str]],
) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # the server drops the kept-alive connection as soon as the next
        # request arrives, without answering it
        await reader.read(1)

    base = await raw_server(handler)
    async with HTTPClient() as http:
        first = await http.request("POST", base + "/", body=b"1", timeout=2)
        second = await http.request("POST", base + "/", body=b"2", timeout=2)
    assert first.body == second.body == b"ok"
    assert connections == 2


async def test_invalid_urls_and_headers() -> None:
    async with HTTPClient() as http:
        with pytest.raises(ValueError):
            await http.request("GET", "ftp://127.0.0.1/")
        with pytest.raises(ValueError):
            await http.request("GET", "http:///nohost")
        with pytest.raises(ValueError):
            await http.request("GET", "http://127.0.0.1:1/", headers={"X": "a\r\nInjected: 1"})


# -- cookies -------------------------------------------------------------------------------------


async def test_cookie_jar_round_trip(start_app: StartApp) -> None:
    expired = formatdate(time.time() - 3600, usegmt=True)
    future = formatdate(time.time() + 3600, usegmt=True)

    async def handler(request: Request) -> Response:
        if request.path == "/login":
            return Response(
                200,
                "ok",
                [
                    ("Set-Cookie", "session=abc; Path=/; HttpOnly"),
                    ("Set-Cookie", "lb=node-1; Max-Age=60"),  # default path: "/"
                    ("Set-Cookie", f"api=1; Path=/api; Expires={future}"),
                    ("Set-Cookie", "secret=s; Secure; Path=/"),
                    ("Set-Cookie", "other=x; Domain=example.com; Path=/"),
                    ("Set-Cookie", f"gone=1; Path=/; Expires={expired}"),
                ],
            )
        if request.path == "/logout":
            return Response(200, "bye", [("Set-Cookie", "session=; Path=/; Max-Age=0")])
        return Response(200, request.headers.get("Cookie") or "")

    _, base = await start_app(handler)
    async with HTTPClient() as http:
        await http.request("GET", base + "/login")
        root = await http.request("GET", base + "/page")
        api = await http.request("GET", base + "/api/v1")
        apix = await http.request("GET", base + "/apix")
        mixed = await http.request("GET", base + "/page", headers={"Cookie": "mine=1"})
        await http.request("GET", base + "/logout")
        after = await http.request("GET", base + "/page")
        names = {c.name for c in http.cookie_jar}
    assert root.body == b"session=abc; lb=node-1"
    assert api.body == b"api=1; session=abc; lb=node-1"  # longest path first
    assert apix.body == b"session=abc; lb=node-1"
    assert mixed.body == b"mine=1; session=abc; lb=node-1"
    assert after.body == b"lb=node-1"
    # Secure cookies are kept for https, the foreign domain is refused
    assert names == {"lb", "api", "secret"}


def test_cookie_jar_rules() -> None:
    jar = CookieJar()
    jar.set_cookie("http://a.example.com/x/y", "dom=1; Domain=.example.com; Path=/")
    jar.set_cookie("http://a.example.com/x/y", "host=2")  # default path "/x"
    assert jar.set_cookie("http://a.example.com/", "bad=3; Domain=com") is None
    assert jar.set_cookie("http://a.example.com/", "bad=3; Domain=other.org") is None
    jar.set_cookie("https://a.example.com/", "sec=4; Secure; Path=/")
    jar.set_cookie("http://a.example.com/", 'quoted="v"; Max-Age=abc; Path=/')
    assert jar.header_for("http://b.example.com/") == "dom=1"
    assert jar.header_for("http://a.example.com/x/z") == "host=2; dom=1; quoted=v"
    assert jar.header_for("ws://a.example.com/x") == "host=2; dom=1; quoted=v"
    assert jar.header_for("http://a.example.com/xy") == "dom=1; quoted=v"
    assert jar.header_for("wss://a.example.com/") == "dom=1; sec=4; quoted=v"
    assert jar.header_for("http://example.org/") is None
    jar.set_cookie("http://a.example.com/", "quoted=new; Path=/")
    assert jar.header_for("http://a.example.com/") == "dom=1; quoted=new"
    assert len(jar) == 4
    jar.set_cookie("http://a.example.com/", "quoted=; Max-Age=0; Path=/")
    assert len(jar) == 3
    jar.clear()
    assert len(jar) == 0


# -- TLS -------------------------------------------------------------------------------------------


async def test_tls_verification(start_app: StartApp, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    async def handler(request: Request) -> Response:
        return Response(200, "secure hello")

    _, base = await start_app(handler, ssl=server_ctx)
    assert base.startswith("https://")
    async with HTTPClient() as http:
        with pytest.raises(ConnectError) as info:
            await http.request("GET", base + "/", timeout=3)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    async with HTTPClient(ssl=False) as http:
        assert (await http.request("GET", base + "/", timeout=3)).body == b"secure hello"
    trusted = ssl.create_default_context(cafile=str(cert))
    async with HTTPClient(ssl=trusted) as http:
        assert (await http.request("GET", base + "/", timeout=3)).body == b"secure hello"


async def test_many_sequential_requests_reuse_connections(start_app: StartApp) -> None:
    async def handler(request: Request) -> Response:
        return Response(200, request.body)

    app, base = await start_app(handler)
    async with HTTPClient() as http:
        for i in range(50):
            response = await http.request("POST", base + "/", body=str(i).encode(), timeout=2)
            assert response.body == str(i).encode()
    assert len(app.peers) == 1
