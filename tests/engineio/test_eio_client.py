"""wsio's Engine.IO client against the official Node ``engine.io`` server and wsio's own.

Both servers run the same small protocol (see ``tests/interop/eio_node_server.js``):
messages are echoed, and text commands starting with ``!`` make the server
stop pinging, close the session, stream numbered messages or report what it
received. Every behaviour is checked against both servers and in the three
transport modes: polling only, WebSocket only, polling then upgrade.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.certs import make_cert
from support.procs import NODE_DIR, free_port, node_env, require_binary, start, stop
from wsio.engineio import Client, Server, Session
from wsio.engineio.client import ConnectionError as EIOConnectionError
from wsio.http import HTTPServer, Request, Response
from wsio.http.client import CookieJar

PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 300
MAX_PAYLOAD = 100_000
DEAD_AFTER = (PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000

MODES = {
    "polling": ("polling",),
    "websocket": ("websocket",),
    "upgrade": ("polling", "websocket"),
}


# -- the servers ---------------------------------------------------------------------


@dataclass
class Peer:
    """A running Engine.IO server as the tests see it."""

    kind: str
    url: str
    server_close_reason: Callable[[str], Awaitable[str]]
    """The reason the server gives for the end of session *sid* (waits for it)."""
    upgrade_inflight: Callable[[str], int | None] | None = None
    """wsio only: polling requests in flight when the server saw the upgrade packet."""


class NodeServer:
    """The Node script, with its JSON-lines log in a file."""

    def __init__(self, log: Path, options: dict[str, Any]) -> None:
        node = require_binary("node")
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.proc = start(
                [node, str(NODE_DIR / "eio_node_server.js"), str(self.port), json.dumps(options)],
                self.port,
                cwd=NODE_DIR,
                env=node_env(),
                stdout=out,
            )

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    async def close_reason(self, sid: str) -> str:
        for _ in range(300):
            for event in self.events():
                if event.get("event") == "close" and event.get("sid") == sid:
                    return str(event["reason"])
            await asyncio.sleep(0.01)
        raise AssertionError(f"the Node server never closed {sid}")


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeServer]:
    options = {
        "pingInterval": PING_INTERVAL_MS,
        "pingTimeout": PING_TIMEOUT_MS,
        "maxHttpBufferSize": MAX_PAYLOAD,
        "cookie": {"name": "io"},
        "lbCookie": "lb=node-a",
    }
    server = NodeServer(tmp_path_factory.mktemp("eio-node") / "server.log", options)
    try:
        yield server
    finally:
        stop(server.proc)


class TestServer(Server):
    """wsio's Engine.IO server speaking the Node script's test protocol, recording requests."""

    __test__ = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.close_reasons: dict[str, str] = {}
        self.inflight = 0
        self.inflight_at_upgrade: dict[str, int] = {}
        self.received: dict[str, list[int]] = defaultdict(list)
        self.refuse_upgrades = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.on("message", self.message)

    def _record(self, request: Request) -> str | None:
        sid = request.query.get("sid")
        self.requests[sid or "handshake"].append(
            {
                "transport": request.query.get("transport"),
                "method": request.method,
                "cookie": request.headers.get("Cookie"),
                "headers": request.headers,
                "query": dict(request.query),
            }
        )
        return sid

    async def handle(self, request: Request) -> Response:
        sid = self._record(request)
        counted = sid is not None and request.query.get("transport") == "polling"
        self.inflight += counted
        try:
            return await super().handle(request)
        finally:
            self.inflight -= counted

    async def handle_upgrade(self, request: Request, conn: Any) -> Response | None:
        self._record(request)
        if self.refuse_upgrades and request.query.get("sid"):
            return Response.text(400, "no upgrades here\n")
        return await super().handle_upgrade(request, conn)

    def _on_upgrade(self, session: Session) -> None:
        self.inflight_at_upgrade[session.sid] = self.inflight
        super()._on_upgrade(session)

    def _on_close(self, session: Session, reason: str) -> None:
        self.close_reasons[session.sid] = reason
        super()._on_close(session, reason)

    async def close_reason(self, sid: str) -> str:
        for _ in range(300):
            if sid in self.close_reasons:
                return self.close_reasons[sid]
            await asyncio.sleep(0.01)
        raise AssertionError(f"the wsio server never closed {sid}")

    def message(self, session: Session, data: str | bytes) -> None:
        if isinstance(data, bytes) or not data.startswith("!"):
            if isinstance(data, str) and re.fullmatch(r"n\d+", data):
                self.received[session.sid].append(int(data[1:]))
            else:
                session.write(data)
            return
        command, *args = data.split(" ")
        if command == "!freeze":
            for name in ("_ping_timer", "_pong_timer"):
                handle = getattr(session, name)
                if handle is not None:
                    handle.cancel()
                    setattr(session, name, None)
        elif command == "!close":
            self._spawn(session.close())
        elif command == "!stream":
            self._spawn(self._stream(session, int(args[0]), int(args[1]) if len(args) > 1 else 0))
        elif command == "!received":
            session.write("!received " + json.dumps(self.received[session.sid]))
        elif command == "!cookies":
            seen = [
                {k: r[k] for k in ("transport", "method", "cookie")}
                for r in self.requests[session.sid]
            ]
            session.write("!cookies " + json.dumps(seen))
        elif command == "!transport":
            session.write("!transport " + session.transport)
        else:
            session.write("!unknown " + command)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _stream(self, session: Session, count: int, every_ms: int) -> None:
        for i in range(count):
            if session.closed:
                return
            session.write(f"s{i}")
            if every_ms:
                await asyncio.sleep(every_ms / 1000)
        session.write("!streamed")


StartWsio = Callable[..., Awaitable[tuple[TestServer, str]]]


@pytest.fixture
async def start_wsio() -> AsyncIterator[StartWsio]:
    """``server, url = await start_wsio(ssl=None, **server_options)``, on 127.0.0.1."""
    running: list[tuple[TestServer, HTTPServer]] = []

    async def start_one(
        ssl: ssl.SSLContext | None = None, **options: Any
    ) -> tuple[TestServer, str]:
        options.setdefault("ping_interval", PING_INTERVAL_MS / 1000)
        options.setdefault("ping_timeout", PING_TIMEOUT_MS / 1000)
        options.setdefault("max_http_buffer_size", MAX_PAYLOAD)
        options.setdefault("cookie", "io")
        server = TestServer(**options)
        http = await server.start("127.0.0.1", 0, ssl=ssl)
        running.append((server, http))
        scheme = "https" if ssl is not None else "http"
        return server, f"{scheme}://127.0.0.1:{http.port}"

    try:
        yield start_one
    finally:
        for server, _http in running:
            for task in list(server.tasks):
                task.cancel()
            await server.shutdown()


@pytest.fixture(params=["node", "wsio"])
async def peer(request: pytest.FixtureRequest, start_wsio: StartWsio) -> AsyncIterator[Peer]:
    if request.param == "node":
        node: NodeServer = request.getfixturevalue("node_server")
        yield Peer("node", f"http://127.0.0.1:{node.port}", node.close_reason)
    else:
        server, url = await start_wsio()
        yield Peer("wsio", url, server.close_reason, server.inflight_at_upgrade.get)


# -- a client that records what it gets ---------------------------------------------------


class Recorder:
    """Collects a client's messages and events; waits for them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.messages: list[str | bytes] = []
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        client.on("message", self._message)
        client.on("open", lambda: self._event("open", None))
        client.on("upgrade", lambda: self._event("upgrade", len(self.messages)))
        client.on("close", lambda reason: self._event("close", reason))

    def _message(self, data: str | bytes) -> None:
        self.messages.append(data)
        self._changed.set()

    def _event(self, name: str, value: Any) -> None:
        self.events.append((name, value))
        self._changed.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                self._changed.clear()
                await self._changed.wait()

    async def message(self, start: int = 0, timeout: float = 5.0) -> str | bytes:
        """The first message at index >= *start*."""
        await self.until(lambda: len(self.messages) > start, timeout)
        return self.messages[start]

    async def ask(self, command: str, timeout: float = 5.0) -> str:
        """Send a ``!command`` and return the text of the server's answer."""
        mark = len(self.messages)
        await self.client.send(command)

        def answered() -> str | None:
            for m in self.messages[mark:]:
                if isinstance(m, str) and m.startswith(command + " "):
                    return m[len(command) + 1 :]
            return None

        return str(await self.until(answered, timeout))

    async def echo(self, data: str | bytes, timeout: float = 5.0) -> str | bytes:
        mark = len(self.messages)
        await self.client.send(data)
        return await self.message(mark, timeout)

    def has(self, name: str) -> bool:
        """Whether event *name* happened."""
        return any(event == name for event, _ in self.events)

    def value(self, name: str) -> Any:
        """The value of the first event *name* (None if it did not happen)."""
        for event, value in self.events:
            if event == name:
                return value
        return None

    async def closed(self, timeout: float = 5.0) -> str:
        await self.until(lambda: self.has("close"), timeout)
        return str(self.value("close"))


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Poll *predicate* until it holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Client]]:
    """``make(url, **options)``: clients that are closed at teardown."""
    made: list[Client] = []

    def make(url: str, **options: Any) -> Client:
        options.setdefault("timeout", 5.0)
        client = Client(url, **options)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.close()


async def open_client(
    make: Callable[..., Client], peer: Peer, mode: str, **options: Any
) -> tuple[Client, Recorder]:
    client = make(peer.url, transports=MODES[mode], **options)
    recorder = Recorder(client)
    await client.connect()
    if mode == "upgrade":
        await recorder.until(lambda: recorder.has("upgrade"))
    return client, recorder


# -- the matrix: both servers x three transport modes -----------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_session_echo_heartbeat_and_close(
    peer: Peer, clients: Callable[..., Client], mode: str
) -> None:
    client, rec = await open_client(clients, peer, mode)
    hs = client.handshake
    assert hs is not None and client.sid == hs.sid and client.connected
    assert (hs.ping_interval_ms, hs.ping_timeout_ms, hs.max_payload) == (
        PING_INTERVAL_MS,
        PING_TIMEOUT_MS,
        MAX_PAYLOAD,
    )
    assert hs.upgrades == (() if mode == "websocket" else ("websocket",))
    expected = "polling" if mode == "polling" else "websocket"
    assert client.transport == expected
    assert await rec.ask("!transport") == expected
    assert rec.events[0] == ("open", None)
    assert await rec.echo("hello") == "hello"
    assert await rec.echo("héllo wörld ✓ 🎉") == "héllo wörld ✓ 🎉"
    assert await rec.echo("") == ""
    # Several heartbeat periods go by: the client answers the pings.
    await asyncio.sleep(DEAD_AFTER * 2)
    assert client.connected and not rec.has("close")
    assert await rec.echo("still here") == "still here"
    # Several messages written at once arrive in order (one POST on polling).
    mark = len(rec.messages)
    for i in range(20):
        assert client.write(f"m{i}")
    await rec.until(lambda: len(rec.messages) >= mark + 20)
    assert rec.messages[mark:] == [f"m{i}" for i in range(20)]
    await client.close()
    assert rec.value("close") == "forced close"
    assert client.close_reason == "forced close" and not client.connected
    assert await peer.server_close_reason(hs.sid) == "transport close"
    assert client.write("late") is False
    with pytest.raises(EIOConnectionError):
        await client.send("late")


@pytest.mark.parametrize("mode", MODES)
async def test_binary_both_ways(peer: Peer, clients: Callable[..., Client], mode: str) -> None:
    client, rec = await open_client(clients, peer, mode)
    payloads = [b"\x00\x01\x02\xff", bytes(range(256)) * 8, b"\x1e\x1e", os.urandom(3000)]
    for payload in payloads:
        echoed = await rec.echo(payload)
        assert isinstance(echoed, bytes) and echoed == payload
    # text and binary interleaved keep their types and order
    mark = len(rec.messages)
    items: list[str | bytes] = ["a", b"b", "c", b"\x00d", "4e"]
    for item in items:
        client.write(item)
    await rec.until(lambda: len(rec.messages) >= mark + len(items))
    assert rec.messages[mark:] == items
    assert client.transport == ("polling" if mode == "polling" else "websocket")


@pytest.mark.parametrize("mode", MODES)
async def test_payloads_near_the_limit(
    peer: Peer, clients: Callable[..., Client], mode: str
) -> None:
    client, rec = await open_client(clients, peer, mode)
    # "4" + text is exactly maxPayload bytes
    text = "x" * (MAX_PAYLOAD - 3) + "é"
    assert await rec.echo(text, timeout=10) == text
    # a binary message whose polling form ("b" + base64) is exactly maxPayload bytes
    binary = os.urandom((MAX_PAYLOAD - 1) // 4 * 3)
    assert await rec.echo(binary, timeout=10) == binary
    if mode != "polling":
        full = os.urandom(MAX_PAYLOAD)
        assert await rec.echo(full, timeout=10) == full
    # too large for the server: refused before sending
    with pytest.raises(ValueError, match="maxPayload"):
        client.write("y" * MAX_PAYLOAD)
    with pytest.raises(ValueError, match="maxPayload"):
        client.write(b"y" * (MAX_PAYLOAD + 1))
    # many large messages: polling splits them into POSTs of at most maxPayload
    parts = [f"{i:02d}" + "z" * (MAX_PAYLOAD // 3) for i in range(7)]
    mark = len(rec.messages)
    for part in parts:
        client.write(part)
    await rec.until(lambda: len(rec.messages) >= mark + len(parts), timeout=10)
    assert rec.messages[mark:] == parts
    assert client.connected


@pytest.mark.parametrize("mode", MODES)
async def test_heartbeat_timeout_when_the_server_stops_pinging(
    peer: Peer, clients: Callable[..., Client], mode: str
) -> None:
    client, rec = await open_client(clients, peer, mode)
    await client.send("!freeze")
    started = time.monotonic()
    reason = await rec.closed(timeout=DEAD_AFTER * 3 + 1)
    elapsed = time.monotonic() - started
    assert reason == "ping timeout"
    # the timer runs from the last ping: at most one interval + timeout
    assert elapsed <= DEAD_AFTER + 0.5
    assert not client.connected and client.close_reason == "ping timeout"


@pytest.mark.parametrize("mode", MODES)
async def test_server_closes_the_session(
    peer: Peer, clients: Callable[..., Client], mode: str
) -> None:
    client, rec = await open_client(clients, peer, mode)
    mark = len(rec.messages)
    client.write("before close")
    client.write("!close")
    assert await rec.closed() == "transport close"
    assert rec.messages[mark:] == ["before close"]
    assert await peer.server_close_reason(client.sid or "") == "forced close"


async def test_packets_stream_both_ways_during_the_upgrade(
    peer: Peer, clients: Callable[..., Client]
) -> None:
    count = 300
    client = clients(peer.url)
    rec = Recorder(client)
    sent_at_upgrade: list[int] = []
    sent = 0
    recorder_upgrade = client._handlers["upgrade"]

    @client.on("upgrade")
    def on_upgrade() -> None:
        sent_at_upgrade.append(sent)
        recorder_upgrade()

    recorder_open = client._handlers.get("open")

    @client.on("open")
    def on_open() -> None:
        # Start the server's stream at once, before the probe can finish.
        client.write(f"!stream {count} 2")
        if recorder_open is not None:
            recorder_open()

    await client.connect()
    assert client.transport == "polling"

    async def produce() -> None:
        nonlocal sent
        for i in range(count):
            assert client.write(f"n{i}")
            sent += 1
            await asyncio.sleep(0.002)

    await produce()
    await rec.until(lambda: "!streamed" in rec.messages, timeout=10)
    assert client.transport == "websocket"
    # the upgrade happened while both streams were flowing
    assert sent_at_upgrade and 0 < sent_at_upgrade[0] < count
    received_at_upgrade = rec.value("upgrade")
    assert 0 < received_at_upgrade < count
    # exactly once, in order, both ways
    streamed = [m for m in rec.messages if isinstance(m, str) and m.startswith("s")]
    assert streamed == [f"s{i}" for i in range(count)]
    assert json.loads(await rec.ask("!received")) == list(range(count))
    if peer.upgrade_inflight is not None:
        # the upgrade packet came only after the in-flight GET and POST were done
        assert peer.upgrade_inflight(client.sid or "") == 0


async def test_cookies_for_sticky_sessions(peer: Peer, clients: Callable[..., Client]) -> None:
    client, rec = await open_client(clients, peer, "upgrade")
    await client.send("x")
    seen = json.loads(await rec.ask("!cookies"))
    assert {r["transport"] for r in seen} == {"polling", "websocket"}
    for request in seen:
        cookies = dict(c.split("=", 1) for c in (request["cookie"] or "").split("; ") if c)
        assert cookies.get("io") == client.sid, request
        if peer.kind == "node":
            assert cookies.get("lb") == "node-a", request
    assert "io" in {c.name for c in client.cookie_jar}


# -- wsio server only ------------------------------------------------------------------------------


async def test_headers_and_query_sent_on_every_transport(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    server, url = await start_wsio()
    client = clients(
        url + "/ignored/path?from_url=1",
        headers={"X-Token": "secret", "Cookie": "mine=1"},
        query={"room": "blue"},
    )
    rec = Recorder(client)
    await client.connect()
    await rec.until(lambda: rec.has("upgrade"))
    await rec.echo("x")
    requests = server.requests["handshake"] + server.requests[client.sid or ""]
    assert {r["transport"] for r in requests} == {"polling", "websocket"}
    for r in requests:
        assert r["headers"].get("X-Token") == "secret"
        assert r["headers"].get_all("Cookie")[0].startswith("mine=1"), r
        if r is not requests[0]:
            assert r["headers"].get_all("Cookie") == [f"mine=1; io={client.sid}"], r
        assert r["query"]["room"] == "blue" and r["query"]["from_url"] == "1"
        assert r["query"]["EIO"] == "4"
    session = server.session(client.sid or "")
    assert session is not None and session.handshake.query["room"] == "blue"


async def test_failed_probe_stays_on_polling(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    server, url = await start_wsio()
    server.refuse_upgrades = True
    client = clients(url)
    rec = Recorder(client)
    await client.connect()
    await eventually(
        lambda: any(r["transport"] == "websocket" for r in server.requests[client.sid or ""])
    )
    await asyncio.sleep(0.1)
    assert not server.close_reasons, server.close_reasons
    assert client.transport == "polling" and not client.upgrading
    assert await rec.echo("fine") == "fine"
    assert not rec.has("upgrade")


async def test_upgrade_disabled(start_wsio: StartWsio, clients: Callable[..., Client]) -> None:
    server, url = await start_wsio()
    client = clients(url, upgrade=False)
    rec = Recorder(client)
    await client.connect()
    assert await rec.echo("a") == "a"
    await asyncio.sleep(0.05)
    assert client.transport == "polling"
    assert all(r["transport"] == "polling" for r in server.requests[client.sid or ""])


async def test_reconnect_with_the_same_client(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    _, url = await start_wsio()
    jar = CookieJar()
    client = clients(url, transports=("websocket",), cookie_jar=jar)
    rec = Recorder(client)
    await client.connect()
    first = client.sid
    await client.close()
    await client.connect()
    assert client.sid != first and client.connected
    assert await rec.echo("again") == "again"
    assert [e for e, _ in rec.events] == ["open", "close", "open"]


async def test_async_handlers_run_in_order(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    _, url = await start_wsio()
    client = clients(url, transports=("websocket",))
    got: list[str | bytes] = []
    done = asyncio.Event()

    @client.on("message")
    async def on_message(data: str | bytes) -> None:
        await asyncio.sleep(0.001 * (hash(data) % 3))
        got.append(data)
        if data == "m9":
            done.set()

    await client.connect()
    for i in range(10):
        client.write(f"m{i}")
    await asyncio.wait_for(done.wait(), 5)
    assert got == [f"m{i}" for i in range(10)]


async def test_close_during_a_pending_poll_is_prompt(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    server, url = await start_wsio()
    client = clients(url, transports=("polling",))
    await client.connect()
    await asyncio.sleep(0.05)  # the GET is now waiting at the server
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 0.5
    assert await server.close_reason(client.sid or "") == "transport close"


async def test_separator_refused_on_polling(
    start_wsio: StartWsio, clients: Callable[..., Client]
) -> None:
    _, url = await start_wsio()
    polling = clients(url, transports=("polling",))
    await polling.connect()
    with pytest.raises(ValueError, match="x1e"):
        polling.write("a\x1eb")
    ws = clients(url, transports=("websocket",))
    rec = Recorder(ws)
    await ws.connect()
    assert await rec.echo("a\x1eb") == "a\x1eb"


# -- connection failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_connection_refused(mode: str) -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", transports=MODES[mode], timeout=2)
    with pytest.raises(EIOConnectionError) as info:
        await client.connect()
    assert isinstance(info.value, OSError)
    assert not client.connected


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_connect_timeout(mode: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = Client(f"http://127.0.0.1:{port}", transports=MODES[mode], timeout=0.3)
        started = time.monotonic()
        with pytest.raises(EIOConnectionError, match="timed out"):
            await client.connect()
        assert time.monotonic() - started < 1.5
    finally:
        server.close()
        await server.wait_closed()


async def test_handshake_refused(peer: Peer) -> None:
    client = Client(peer.url, path="/elsewhere/", timeout=3)
    with pytest.raises(EIOConnectionError, match="HTTP 4"):
        await client.connect()
    bad = Client(peer.url, query={"EIO": "3"}, timeout=3)  # EIO is always 4
    await bad.connect()
    await bad.close()


class FakeApp:
    """An HTTP app that opens a session and then answers polls with *poll_body*."""

    def __init__(self, poll_body: bytes, status: int = 200) -> None:
        self.poll_body = poll_body
        self.status = status

    async def handle(self, request: Request) -> Response:
        if "sid" not in request.query:
            handshake = {
                "sid": "fake",
                "upgrades": [],
                "pingInterval": 5000,
                "pingTimeout": 5000,
                "maxPayload": 1000,
            }
            return Response(200, "0" + json.dumps(handshake), content_type="text/plain")
        if request.method == "POST":
            return Response(200, "ok")
        await asyncio.sleep(0.05)
        return Response(self.status, self.poll_body, content_type="text/plain")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"9nonsense", 200, "parse error"),
        (b"b!!!notbase64", 200, "parse error"),
        (b"1", 200, "transport close"),
        (b'{"code":1,"message":"Session ID unknown"}', 400, "transport error"),
    ],
)
async def test_bad_polls_end_the_session(body: bytes, status: int, reason: str) -> None:
    http = HTTPServer(FakeApp(body, status))
    await http.listen("127.0.0.1", 0)
    try:
        client = Client(f"http://127.0.0.1:{http.port}", timeout=3)
        rec = Recorder(client)
        await client.connect()
        assert client.sid == "fake"
        assert await rec.closed() == reason
    finally:
        await http.close()


async def test_not_an_open_packet() -> None:
    class App:
        async def handle(self, request: Request) -> Response:
            return Response(200, "4hello", content_type="text/plain")

    http = HTTPServer(App())
    await http.listen("127.0.0.1", 0)
    try:
        with pytest.raises(EIOConnectionError, match="open packet"):
            await Client(f"http://127.0.0.1:{http.port}", timeout=3).connect()
    finally:
        await http.close()


def test_url_forms() -> None:
    client = Client("wss://example.com:8443/x?a=1", path="socket.io")
    assert client._url(client._http_base, "polling", None) == (
        "https://example.com:8443/socket.io/?a=1&EIO=4&transport=polling"
    )
    assert client._url(client._ws_base, "websocket", "abc") == (
        "wss://example.com:8443/socket.io/?a=1&EIO=4&transport=websocket&sid=abc"
    )
    plain = Client("http://[::1]")
    assert plain._url(plain._ws_base, "websocket", None).startswith("ws://[::1]/engine.io/?")
    for bad in ("ftp://x", "http://", "http://u:p@host/"):
        with pytest.raises(ValueError):
            Client(bad)
    with pytest.raises(ValueError):
        Client("http://x", transports=("carrier-pigeon",))


# -- TLS -------------------------------------------------------------------------------------------------


async def test_tls_verification_options(
    start_wsio: StartWsio, clients: Callable[..., Client], tmp_path: Path
) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    _, url = await start_wsio(ssl=server_ctx)
    assert url.startswith("https://")
    for transports in (("polling",), ("websocket",)):
        strict = clients(url, transports=transports)
        with pytest.raises(EIOConnectionError) as info:
            await strict.connect()
        chain: list[BaseException] = []
        exc: BaseException | None = info.value
        while exc is not None:
            chain.append(exc)
            exc = exc.__cause__
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain), chain
    # verification off: polling, then the upgrade to wss
    insecure = clients(url, ssl=False)
    rec = Recorder(insecure)
    await insecure.connect()
    await rec.until(lambda: rec.has("upgrade"))
    assert insecure.transport == "websocket"
    assert await rec.echo("over tls") == "over tls"
    # a context that trusts the certificate
    trusted = clients(
        url.replace("https://", "wss://"),
        transports=("websocket",),
        ssl=ssl.create_default_context(cafile=str(cert)),
    )
    rec2 = Recorder(trusted)
    await trusted.connect()
    assert await rec2.echo(b"\x01tls") == b"\x01tls"
