"""The official Node ``engine.io-client`` against wsio's Engine.IO server.

Every scenario runs on the built-in HTTP server and under uvicorn (through
``asgi_app()``); the server echoes what it receives. nginx sits in front for
the proxy tests, with and without the WebSocket headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import wsio.engineio
from support.procs import NginxFactory, free_port, run_node

BACKENDS = ["builtin", "uvicorn"]
MODES = {
    "polling": {"transports": ["polling"]},
    "websocket": {"transports": ["websocket"]},
    "upgrade": {"transports": ["polling", "websocket"]},
}


class Backend:
    """A wsio Engine.IO echo server on its own event loop, in a thread.

    ``received`` maps each sid to the messages the server got, in order;
    ``closed`` maps it to ``(reason, seconds since connect)``.
    """

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        self.port = 0
        self.received: dict[str, list[str | bytes]] = {}
        self.opened: dict[str, float] = {}
        self.closed: dict[str, tuple[str, float]] = {}
        self.upgraded: set[str] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _server(self) -> wsio.engineio.Server:
        eio = wsio.engineio.Server(**self.options)
        tasks: set[asyncio.Task[None]] = set()

        @eio.on("connect")
        def connect(session: wsio.engineio.Session, handshake: Any) -> None:
            self.received[session.sid] = []
            self.opened[session.sid] = time.monotonic()

        @eio.on("message")
        async def message(session: wsio.engineio.Session, data: str | bytes) -> None:
            self.received[session.sid].append(data)
            if isinstance(data, str) and data.startswith("stream "):
                _, n, interval = data.split()
                task = asyncio.get_running_loop().create_task(
                    self._stream(session, int(n), int(interval) / 1000)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                await session.send(data)

        @eio.on("upgrade")
        def upgrade(session: wsio.engineio.Session) -> None:
            self.upgraded.add(session.sid)

        @eio.on("disconnect")
        def disconnect(session: wsio.engineio.Session, reason: str) -> None:
            self.closed[session.sid] = (reason, time.monotonic() - self.opened[session.sid])

        return eio

    @staticmethod
    async def _stream(session: wsio.engineio.Session, n: int, interval: float) -> None:
        for i in range(n):
            if session.closed:
                return
            await session.send(f"s{i}")
            await asyncio.sleep(interval)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        eio = self._server()
        if self.kind == "builtin":
            http = await eio.start("127.0.0.1", 0)
            self.port = http.port
            self._ready.set()
            await self._stop.wait()
            await eio.shutdown()
            return
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            eio.asgi_app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        serving = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        self._ready.set()
        await self._stop.wait()
        server.should_exit = True
        await serving

    def start(self) -> Backend:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the server thread did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def make_backend() -> Iterator[Any]:
    backends: list[Backend] = []

    def make(kind: str, **options: Any) -> Backend:
        backend = Backend(kind, **options).start()
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.stop()


def client(url: str, mode: str, scenario: str, timeout: float = 20, **params: Any) -> list[Any]:
    """Run ``eio_client.js``; returns its events (one of them is the result)."""
    import json

    result = run_node(
        "eio_client.js",
        url,
        json.dumps(MODES[mode]),
        scenario,
        json.dumps(params),
        timeout=timeout,
    )
    assert result.returncode == 0, (result.lines, result.stderr)
    assert events(result.lines, "result"), result.lines
    return result.lines


def events(lines: list[Any], name: str) -> list[Any]:
    return [line for line in lines if line["event"] == name]


MESSAGES = [
    {"text": "hello"},
    {"text": "héllo ✓ \U0001f600"},
    {"text": ""},
    {"hex": "0001feff"},
    {"text": "4 looks like a packet type"},
]
EXPECTED = [
    {"kind": "text", "data": "hello"},
    {"kind": "text", "data": "héllo ✓ \U0001f600"},
    {"kind": "text", "data": ""},
    {"kind": "binary", "hex": "0001feff"},
    {"kind": "text", "data": "4 looks like a packet type"},
]
SERVER_SIDE = ["hello", "héllo ✓ \U0001f600", "", b"\x00\x01\xfe\xff", "4 looks like a packet type"]
FINAL_TRANSPORT = {"polling": "polling", "websocket": "websocket", "upgrade": "websocket"}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_echo(make_backend: Any, backend: str, mode: str) -> None:
    server = make_backend(backend, ping_interval=0.5, ping_timeout=0.5)
    then = "upgrade" if mode == "upgrade" else None
    lines = client(f"{server.url}", mode, "echo", messages=MESSAGES, then=then)
    result = events(lines, "result")[0]
    rounds = 2 if then else 1
    assert result["received"] == EXPECTED * rounds
    assert result["transport"] == FINAL_TRANSPORT[mode]
    assert [e["transport"] for e in events(lines, "open")] == [
        "websocket" if mode == "websocket" else "polling"
    ]
    sid = events(lines, "open")[0]["sid"]
    assert server.received[sid] == SERVER_SIDE * rounds
    assert (sid in server.upgraded) == (mode == "upgrade")
    deadline = time.monotonic() + 3
    while sid not in server.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.closed[sid][0] == "transport close"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mode", ["polling", "upgrade"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_payloads_near_the_limit(make_backend: Any, backend: str, mode: str) -> None:
    # maxPayload is 1 000 000 bytes: a polling body of one message is the
    # packet type plus the text (or "b" plus base64), a WebSocket message the
    # packet type plus the text (or the raw bytes).
    server = make_backend(backend)
    if mode == "polling":
        text, binary = 999_990, 749_990  # base64: 999 988 characters + "b"
    else:
        text, binary = 999_990, 999_990
    lines = client(
        server.url,
        mode,
        "big",
        text=text,
        binary=binary,
        afterUpgrade=mode == "upgrade",
        timeout=30,
    )
    result = events(lines, "result")[0]
    assert result["text"] is True and result["binary"] is True
    assert result["transport"] == FINAL_TRANSPORT[mode]
    sid = events(lines, "open")[0]["sid"]
    got = server.received[sid]
    assert [type(m) for m in got] == [str, bytes]
    assert len(got[0]) == text and len(got[1]) == binary


@pytest.mark.parametrize("backend", BACKENDS)
def test_numbered_messages_cross_the_upgrade_exactly_once_in_order(
    make_backend: Any, backend: str
) -> None:
    server = make_backend(backend, ping_interval=0.5, ping_timeout=0.5)
    n = 80
    lines = client(server.url, "upgrade", "stream", n=n, interval=4)
    result = events(lines, "result")[0]
    assert result["fromServer"] == list(range(n))
    assert result["echoed"] == list(range(n))
    assert result["transport"] == "websocket"
    # the switch happened while both streams were flowing
    at = result["atUpgrade"]
    assert at is not None
    assert 0 < at["sent"] < n
    sid = events(lines, "open")[0]["sid"]
    assert server.received[sid] == [f"stream {n} 4"] + [f"c{i}" for i in range(n)]
    assert sid in server.upgraded


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_heartbeat_timeout_when_the_client_stops_answering(
    make_backend: Any, backend: str, mode: str
) -> None:
    server = make_backend(backend, ping_interval=0.3, ping_timeout=0.3)
    lines = client(server.url, mode, "silent")
    sid = events(lines, "open")[0]["sid"]
    assert events(lines, "pong-dropped"), lines
    deadline = time.monotonic() + 3
    while sid not in server.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    reason, after = server.closed[sid]
    assert reason == "ping timeout"
    assert 0.55 <= after < 3.0
    # the client saw the session end (not its own ping timeout: it got pings)
    assert events(lines, "close")[0]["reason"] == "transport close"


@pytest.mark.parametrize("mode", ["upgrade", "polling"])
def test_through_nginx(make_backend: Any, nginx_factory: NginxFactory, mode: str) -> None:
    server = make_backend("builtin", ping_interval=0.5, ping_timeout=0.5)
    proxy = nginx_factory([server.port])
    then = "upgrade" if mode == "upgrade" else None
    lines = client(f"http://127.0.0.1:{proxy}", mode, "echo", messages=MESSAGES, then=then)
    result = events(lines, "result")[0]
    assert result["received"] == EXPECTED * (2 if then else 1)
    assert result["transport"] == FINAL_TRANSPORT[mode]
    sid = events(lines, "open")[0]["sid"]
    assert (sid in server.upgraded) == (mode == "upgrade")


def test_nginx_without_upgrade_headers_keeps_polling(
    make_backend: Any, nginx_factory: NginxFactory
) -> None:
    # nginx forwards HTTP/1.0 without Upgrade/Connection: the WebSocket probe
    # fails, the client stays on long-polling and messages keep flowing.
    server = make_backend("builtin", ping_interval=0.5, ping_timeout=0.5)
    proxy = nginx_factory([server.port], websocket=False)
    lines = client(
        f"http://127.0.0.1:{proxy}", "upgrade", "echo", messages=MESSAGES, then="upgradeError"
    )
    result = events(lines, "result")[0]
    assert events(lines, "upgradeError")
    assert not events(lines, "upgrade")
    assert result["received"] == EXPECTED * 2
    assert result["transport"] == "polling"
    sid = events(lines, "open")[0]["sid"]
    assert server.received[sid] == SERVER_SIDE * 2
    assert sid not in server.upgraded


def test_nginx_without_upgrade_headers_heartbeat_survives(
    make_backend: Any, nginx_factory: NginxFactory
) -> None:
    # Several ping/pong cycles over HTTP/1.0 long-polling through the proxy.
    server = make_backend("builtin", ping_interval=0.2, ping_timeout=0.3)
    proxy = nginx_factory([server.port], websocket=False)
    lines = client(
        f"http://127.0.0.1:{proxy}",
        "polling",
        "stream",
        n=25,
        interval=40,
    )
    result = events(lines, "result")[0]
    assert result["fromServer"] == list(range(25))
    assert result["echoed"] == list(range(25))
    sid = events(lines, "open")[0]["sid"]
    assert sid not in server.closed or server.closed[sid][0] == "transport close"
