"""wsio's Socket.IO client against the official Node ``socket.io`` server (4.8).

The server is ``tests/interop/sio_node_server.js`` (its header lists what it
does); it logs one JSON line per connection, received event and HTTP request,
and the tests assert on that log as well as on what the client saw. The
reconnection tests stop the Node process and start a new one on the same
port. The backoff is checked against the official ``backo2`` code itself,
run by Node with the same random numbers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wsio
from support.procs import NODE_DIR, free_port, node_env, require_binary, start, stop
from support.sio import Recorder, client_factory, until
from wsio.socketio.client import Backoff

MODES = {
    "polling": ("polling",),
    "websocket": ("websocket",),
    "upgrade": ("polling", "websocket"),
}


# -- the Node server ------------------------------------------------------------------------


class NodeServer:
    """``sio_node_server.js`` on a fixed port, restartable; its log is a file."""

    def __init__(self, directory: Path, options: dict[str, Any] | None = None) -> None:
        self.node = require_binary("node")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = directory
        self.options = options or {}
        self.proc: subprocess.Popen[Any] | None = None
        self.runs = 0
        self.start()

    @property
    def log(self) -> Path:
        return self.directory / f"server-{self.runs}.log"

    def start(self, **extra: Any) -> None:
        assert self.proc is None
        self.runs += 1
        options = {**self.options, **extra, "tag": f"run{self.runs}"}
        with self.log.open("wb") as out:
            self.proc = start(
                [
                    self.node,
                    str(NODE_DIR / "sio_node_server.js"),
                    str(self.port),
                    json.dumps(options),
                ],
                self.port,
                cwd=NODE_DIR,
                env=node_env(),
                stdout=out,
            )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def lines(self, event: str | None = None, run: int | None = None) -> list[dict[str, Any]]:
        runs = [run] if run is not None else range(1, self.runs + 1)
        found = []
        for r in runs:
            path = self.directory / f"server-{r}.log"
            if path.exists():
                for line in path.read_text().splitlines():
                    if line.strip():
                        item = json.loads(line)
                        if event is None or item.get("event") == event:
                            found.append(item)
        return found

    async def wait_lines(
        self, event: str, count: int, timeout: float = 5.0, **match: Any
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [x for x in self.lines(event) if all(x.get(k) == v for k, v in match.items())]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeServer]:
    server = NodeServer(tmp_path_factory.mktemp("sio-node"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[..., NodeServer]]:
    made: list[NodeServer] = []

    def make(**options: Any) -> NodeServer:
        directory = tmp_path / f"node{len(made)}"
        directory.mkdir()
        server = NodeServer(directory, options)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., wsio.Client]]:
    async with client_factory() as make:
        yield make


# -- the basic matrix -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
async def test_events_and_acks(node: NodeServer, clients: Any, mode: str) -> None:
    client = clients(node.url, transports=MODES[mode])
    rec = Recorder(client, "welcome", "seq", "answer")
    await client.connect()
    assert client.connected and client.active and isinstance(client.id, str)
    assert (await rec.wait("welcome"))[0] == ({"nsp": "/", "tag": "run1", "recovered": False},)
    # acks from the server with 0, 1 and several arguments, binary and nested values
    assert await client.call("echo") is None
    assert await client.call("echo", "one") == "one"
    assert await client.call("echo", 1, "two", [3], {"four": None}) == (
        1,
        "two",
        [3],
        {"four": None},
    )
    blob = bytes(range(256))
    assert await client.call("echo", blob, {"nested": [blob[:3]]}) == (blob, {"nested": [blob[:3]]})
    # the server asks, the client's handler return value is the ack
    client.on("none", lambda: None)
    client.on("single", lambda x: x * 2)
    client.on("several", lambda a, b: (b, a))

    async def slow(data: bytes) -> bytes:
        await asyncio.sleep(0.01)
        return data[::-1]

    client.on("binary", slow)

    async def nested(x: int) -> Any:
        # awaits the server's ack while the server awaits this one
        return await client.call("echo", x + 1)

    client.on("nested", nested)
    await client.emit("ask", "none")
    await client.emit("ask", "single", 21)
    await client.emit("ask", "several", "a", "b")
    await client.emit("ask", "binary", b"\x00\x01\x02")
    await client.emit("ask", "nested", 1)
    answers = await rec.wait("answer", 5)
    assert answers == [([],), ([42],), (["b", "a"],), ([b"\x02\x01\x00"],), ([2],)]
    # order of a burst of events
    await client.emit("burst", 200)
    assert [a[0] for a in await rec.wait("seq", 200)] == list(range(200))
    # emits arrive in order
    for i in range(50):
        client.emit("record", mode, i)
    await client.call("echo")
    recv = [x["args"][1] for x in node.lines("recv") if x["args"][0] == mode]
    assert recv == list(range(50))
    # the transport asked for is the one in use
    await asyncio.sleep(0.1 if mode == "upgrade" else 0)
    assert client.transport == MODES[mode][-1]
    sid = client.id
    await client.disconnect()
    assert not client.connected and not client.active and client.id is None
    assert rec.of("disconnect") == [("io client disconnect",)]
    (gone,) = await node.wait_lines("disconnect", 1, id=sid)
    assert gone["reason"] == "client namespace disconnect"


async def test_namespaces_share_one_connection(node: NodeServer, clients: Any) -> None:
    client = clients(node.url + "/admin?x=1", transports=("websocket",))
    await client.connect()
    main = client.of("/", auth={"who": "main"})
    assert client.of("/") is main
    await main.connect()
    ids = (client.id, main.id)
    await until(lambda: len([x for x in node.lines("connection") if x["id"] in ids]) == 2)
    mine = [x for x in node.lines("connection") if x["id"] in ids]
    assert {x["nsp"] for x in mine} == {"/admin", "/"}
    assert len({x["engine"] for x in mine}) == 1  # one Engine.IO session
    assert next(x for x in mine if x["nsp"] == "/")["auth"] == {"who": "main"}
    assert await client.call("echo", "a") == "a"
    assert await main.call("echo", "m") == "m"
    # leaving one namespace keeps the connection for the other
    await main.disconnect()
    assert client.connected and await client.call("echo", 1) == 1
    await client.disconnect()
    assert client.manager.engine is None


async def test_refused_by_middleware_with_data(node: NodeServer, clients: Any) -> None:
    client = clients(node.url + "/private", auth={"token": "wrong"})
    rec = Recorder(client)
    with pytest.raises(wsio.ConnectionError) as info:
        await client.connect()
    assert info.value.message == "not authorized"
    assert info.value.data == {"code": 401, "hint": "token"}
    (error,) = rec.of("connect_error")[0]
    assert error.message == "not authorized" and error.data == {"code": 401, "hint": "token"}
    assert not client.active and not client.manager.reconnecting
    await asyncio.wait_for(client.wait(), 1)
    # with the right token it connects
    ok = clients(node.url + "/private", auth=lambda: {"token": "secret"})
    await ok.connect()
    assert await ok.call("echo", "in") == "in"


async def test_msgpack_parser(node_factory: Any, clients: Any) -> None:
    server = node_factory(msgpack=True)
    client = clients(server.url, parser="msgpack")
    rec = Recorder(client, "welcome", "answer")
    await client.connect()
    await rec.wait("welcome")
    blob = b"\xff" * 1000
    assert await client.call("echo", 1, 2.5, "x", blob, {"k": [True, None]}) == (
        1,
        2.5,
        "x",
        blob,
        {"k": [True, None]},
    )
    client.on("twice", lambda a, b: (a, b, a))
    await client.emit("ask", "twice", b"z", 7)
    assert (await rec.wait("answer"))[0] == ([b"z", 7, b"z"],)


# -- reconnection, recovery, retries -------------------------------------------------------


async def test_connection_state_recovery(node_factory: Any, clients: Any) -> None:
    server = node_factory(recovery=True)
    client = clients(
        server.url, transports=("websocket",), reconnection_delay=0.3, randomization_factor=0
    )
    rec = Recorder(client, "welcome", "missed")
    reconnects: list[int] = []
    client.manager.on("reconnect", reconnects.append)
    await client.connect()
    first_id = client.id
    assert not client.recovered
    assert (await rec.wait("welcome"))[0] == ({"nsp": "/", "tag": "run1", "recovered": False},)
    # the server cuts the connection, then emits three events the client misses
    await client.emit("drop", 3, 100)
    await rec.wait("disconnect")
    assert rec.of("disconnect") == [("transport close",)]
    await rec.wait("connect", 2)
    assert client.recovered and client.id == first_id and reconnects == [1]
    missed = await rec.wait("missed", 3)
    assert missed == [(0,), (1,), (2,)]  # the offsets are not passed to the handlers
    connections = server.lines("connection")
    assert [x["recovered"] for x in connections] == [False, True]
    # what the client sent back: the session id and the offset of the "welcome" event
    assert set(connections[1]["auth"]) == {"pid", "offset"}
    assert await client.call("echo", "still") == "still"


async def test_restart_reconnects_and_flushes_buffer(node_factory: Any, clients: Any) -> None:
    server = node_factory()
    client = clients(server.url, reconnection_delay=0.2, reconnection_delay_max=0.4)
    rec = Recorder(client)
    events: list[tuple[str, Any]] = []
    for name in ("reconnect_attempt", "reconnect_error", "reconnect", "close", "open"):
        client.manager.on(name, lambda *a, name=name: events.append((name, *a)))
    await client.connect()
    await until(lambda: client.transport == "websocket")
    server.stop()
    await rec.wait("disconnect")
    assert rec.of("disconnect") == [("transport close",)]
    assert client.active and not client.connected
    for i in range(20):
        client.emit("record", "buffered", i)
    pending = asyncio.ensure_future(client.call("echo", "after restart"))
    await asyncio.sleep(0.5)  # at least one failed attempt
    server.start()
    await rec.wait("connect", 2)
    assert await asyncio.wait_for(pending, 5) == "after restart"
    await client.call("echo")
    recv = [x["args"] for x in server.lines("recv", run=2)]
    assert recv == [["buffered", i] for i in range(20)]  # once each, in order
    names = [e[0] for e in events]
    assert names[:2] == ["open", "close"] and names[-2:] == ["open", "reconnect"]
    assert "reconnect_error" in names
    (reconnect,) = [e for e in events if e[0] == "reconnect"]
    attempts = [e[1] for e in events if e[0] == "reconnect_attempt"]
    assert attempts == list(range(1, len(attempts) + 1)) and reconnect[1] == attempts[-1]
    assert server.lines("recv", run=1) == []


async def test_reconnect_failed(node_factory: Any, clients: Any) -> None:
    server = node_factory()
    client = clients(
        server.url,
        transports=("websocket",),
        reconnection_attempts=2,
        reconnection_delay=0.05,
        reconnection_delay_max=0.1,
    )
    events: list[str] = []
    for name in ("reconnect_attempt", "reconnect_error", "reconnect_failed", "reconnect"):
        client.manager.on(name, lambda *a, name=name: events.append(name))
    await client.connect()
    server.stop()
    await asyncio.wait_for(client.wait(), 5)
    # The official order: the last attempt's error comes after reconnect_failed.
    assert events == [
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_attempt",
        "reconnect_failed",
        "reconnect_error",
    ]
    assert not client.active and not client.connected


async def test_retries_deliver_an_emit_whose_ack_was_lost(node: NodeServer, clients: Any) -> None:
    client = clients(node.url, transports=("websocket",), retries=3, ack_timeout=0.3)
    await client.connect()
    acked: list[Any] = []
    client.emit("flaky", 1001, callback=acked.append)
    client.emit("flaky", 1002, callback=acked.append)  # waits for the first
    assert await client.call("flaky", 1003) == 1003
    assert acked == [1001, 1002]
    seen = [x["n"] for x in node.lines("flaky") if x["n"] > 1000]
    assert seen == [1001, 1001, 1002, 1002, 1003, 1003]


async def test_cookies_kept_for_sticky_sessions(node_factory: Any, clients: Any) -> None:
    server = node_factory(lbCookie="lb=node-a")
    client = clients(server.url, reconnection_delay=0.1, randomization_factor=0)
    rec = Recorder(client)
    await client.connect()
    await until(lambda: client.transport == "websocket")
    server.stop()
    await rec.wait("disconnect")
    server.start()
    await rec.wait("connect", 2)
    requests = server.lines("request")
    first = [r for r in requests if r["tag"] == "run1"]
    assert first[0]["cookie"] is None  # the handshake sets it
    assert all(r["cookie"] == "lb=node-a" for r in first[1:])
    assert any(r["kind"] == "upgrade" for r in first[1:])
    # the cookie is sent again after reconnecting to the new process
    assert all(r["cookie"] == "lb=node-a" for r in requests if r["tag"] == "run2")


async def test_server_disconnect_is_final(node: NodeServer, clients: Any) -> None:
    client = clients(node.url, transports=("websocket",), reconnection_delay=0.05)
    rec = Recorder(client)
    await client.connect()
    pending = asyncio.ensure_future(client.call("record", "late"))  # acknowledged before the kick
    await pending
    waiting = asyncio.ensure_future(client.call("flaky", 2001))  # never acknowledged
    await asyncio.sleep(0.05)
    await client.emit("kick")
    await asyncio.wait_for(client.wait(), 2)
    assert rec.of("disconnect") == [("io server disconnect",)]
    with pytest.raises(wsio.Disconnected):
        await waiting
    await asyncio.sleep(0.2)
    assert not client.active and client.manager.engine is None
    assert rec.of("connect") == [()]


# -- the backoff, against the official code -----------------------------------------------------


def test_backoff_matches_official_code() -> None:
    randoms = [0.0, 0.05, 0.15, 0.33, 0.5, 0.77, 0.999, 0.25, 0.62, 0.11, 0.9, 0.45]
    cases = [
        {"min": 1000, "max": 5000, "jitter": 0.5},
        {"min": 100, "max": 10000, "jitter": 1},
        {"min": 250, "max": 60000, "jitter": 0.2},
        {"min": 500, "max": 3000, "jitter": 0},
    ]
    script = """
const path = require("path");
const file = path.join(process.cwd(), "node_modules/socket.io-client/build/cjs/contrib/backo2.js");
const { Backoff } = require(file);
const [randoms, cases] = JSON.parse(process.argv[1]);
const out = [];
for (const opts of cases) {
  let i = 0;
  Math.random = () => randoms[i++ % randoms.length];
  const b = new Backoff(opts);
  const seq = [];
  for (let n = 0; n < randoms.length; n++) seq.push(b.duration());
  b.reset();
  seq.push(b.duration());
  out.push(seq);
}
console.log(JSON.stringify(out));
"""
    result = subprocess.run(
        [require_binary("node"), "-e", script, json.dumps([randoms, cases])],
        cwd=NODE_DIR,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    expected = json.loads(result.stdout)
    for case, official in zip(cases, expected, strict=True):
        source = iter(randoms * 2).__next__
        backoff = Backoff(case["min"], case["max"], jitter=case["jitter"], random=source)
        ours = [backoff.duration() for _ in randoms]
        backoff.reset()
        ours.append(backoff.duration())
        assert ours == official, case
