"""wsio's Socket.IO server against the official Node ``socket.io-client``.

One Node process per transport mode runs ``sio_client.js``, a scenario with
many checks; the server runs in this test's event loop, so the test can
assert both on what the client printed and on what the server saw.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

import wsio
from support.procs import NODE_DIR, run_node_async

HEX = re.compile(r"hex:([0-9a-f]*)")


def make_server(parser: str) -> tuple[wsio.Server, dict[str, Any]]:
    """The server the scenario expects; returns it with its record of what happened."""
    sio = wsio.Server(parser=parser, ping_interval=0.3, ping_timeout=0.3, cors_allowed_origins="*")
    seen: dict[str, Any] = {"middlewares": [], "disconnects": {}, "seq": [], "any": []}

    @sio.use
    def mw_first(socket: wsio.Socket) -> None:
        seen["middlewares"].append(("first", (socket.handshake.auth or {}).get("name")))

    @sio.use
    async def mw_second(socket: wsio.Socket) -> None:
        await asyncio.sleep(0.001)
        seen["middlewares"].append(("second", (socket.handshake.auth or {}).get("name")))
        if (socket.handshake.auth or {}).get("mw") == "deny":
            raise wsio.ConnectionRefused("middleware says no", {"by": "mw_second"})

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        if not auth or auth.get("token") != "ok":
            raise wsio.ConnectionRefused("bad token", {"reason": "token", "n": [1, 2]})
        socket.data["name"] = auth.get("name")
        await socket.join(auth.get("rooms", []))
        await asyncio.sleep(0.01)
        socket.emit("welcome", socket.id, auth, sorted(socket.rooms - {socket.id}))

    @sio.on("disconnect")
    def disconnect(socket: wsio.Socket, reason: str) -> None:
        seen["disconnects"][socket.id] = reason

    @sio.on("none")
    def none(socket: wsio.Socket) -> None:
        return None

    @sio.on("one")
    async def one(socket: wsio.Socket, x: Any) -> Any:
        return x

    @sio.on("several")
    def several(socket: wsio.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("*")
    def catch_all(socket: wsio.Socket, event: Any, *args: Any) -> str:
        seen["any"].append([event, *args])
        return f"caught {event}"

    @sio.on("fail")
    async def fail(socket: wsio.Socket) -> None:
        raise RuntimeError("handler failure (expected by the test)")

    @sio.on("server_calls")
    async def server_calls(socket: wsio.Socket) -> list[Any]:
        return [
            await socket.call("q0", timeout=2),
            await socket.call("q1", 41, timeout=2),
            await socket.timeout(2).call("q3"),
        ]

    @sio.on("server_call_timeout")
    async def server_call_timeout(socket: wsio.Socket) -> str:
        try:
            await socket.call("nobody answers", timeout=0.2)
        except wsio.AckTimeout:
            return "timeout"
        return "answered?"

    @sio.on("ask_back")
    async def ask_back(socket: wsio.Socket, text: str) -> Any:
        return await socket.call("question", text, timeout=2)

    @sio.on("seq")
    async def seq(socket: wsio.Socket, i: int) -> None:
        if i % 10 == 0:
            await asyncio.sleep(0.005)
        seen["seq"].append(i)

    @sio.on("seq_done")
    def seq_done(socket: wsio.Socket) -> list[int]:
        return list(seen["seq"])

    @sio.on("binary")
    def binary(socket: wsio.Socket, data: dict[str, Any]) -> tuple[Any, ...]:
        return data, {
            "sizes": [len(data["raw"]), len(data["nested"][0]), len(data["nested"][1]["deep"])]
        }

    @sio.on("send_binary")
    def send_binary(socket: wsio.Socket) -> None:
        socket.emit("bin_event", b"\x00\xff", {"list": [b"a", {"b": b"bc"}]}, "text")

    @sio.on("to_room")
    def to_room(socket: wsio.Socket, rooms: list[str], text: str) -> None:
        socket.to(rooms).emit("msg", socket.data["name"], text)

    @sio.on("broadcast")
    async def broadcast(socket: wsio.Socket, text: str) -> None:
        await socket.broadcast.emit("msg", socket.data["name"], text)

    @sio.on("server_to_except")
    async def server_to_except(
        socket: wsio.Socket, rooms: list[str], excluded: list[str], text: str
    ) -> None:
        await sio.to(rooms).except_(excluded).emit("msg", "server", text)

    @sio.on("join")
    async def join(socket: wsio.Socket, room: str) -> None:
        await socket.join(room)

    @sio.on("volatile")
    def volatile(socket: wsio.Socket, text: str) -> None:
        socket.volatile.emit("msg", "volatile to self", text)
        sio.volatile.except_(socket.id).emit("msg", "volatile", text)

    @sio.on("mark")
    async def mark(socket: wsio.Socket) -> None:
        await sio.emit("marked")

    @sio.on("survey")
    async def survey(
        socket: wsio.Socket, rooms: list[str], question: str, timeout: float
    ) -> dict[str, Any]:
        try:
            answers = await sio.to(rooms).timeout(timeout).call("survey", question)
        except wsio.AckTimeout as exc:
            return {"answers": sorted(exc.responses), "timed_out": True}
        return {"answers": sorted(answers), "timed_out": False}

    @sio.on("fetch")
    async def fetch(socket: wsio.Socket, rooms: list[str]) -> list[str]:
        return sorted(s.data["name"] for s in await sio.in_(rooms).fetch_sockets())

    @sio.on("kick")
    def kick(socket: wsio.Socket) -> None:
        socket.disconnect()

    admin = sio.of("/admin")

    @admin.use
    def admin_mw(socket: wsio.Socket) -> None:
        if (socket.handshake.auth or {}).get("admin") == "no":
            raise wsio.ConnectionRefused("not an admin")

    @admin.on("connect")
    def admin_connect(socket: wsio.Socket, auth: Any) -> None:
        socket.emit("auth", auth)

    @admin.on("where")
    def admin_where(socket: wsio.Socket) -> str:
        return socket.nsp.name

    created: list[str] = []
    seen["created"] = created
    sio.on("new_namespace", lambda nsp: created.append(nsp.name))
    dyn = sio.of(re.compile(r"/dyn-\d+"))

    @dyn.on("where")
    async def dyn_where(socket: wsio.Socket) -> list[str]:
        return [socket.nsp.name, *created]

    return sio, seen


@pytest.fixture
async def started() -> AsyncIterator[Any]:
    """``port = await started(sio)``; shut down afterwards."""
    servers: list[wsio.Server] = []

    async def start(sio: wsio.Server) -> int:
        http = await sio.start("127.0.0.1", 0)
        servers.append(sio)
        return http.port

    try:
        yield start
    finally:
        for sio in servers:
            await asyncio.wait_for(sio.shutdown(), 5)


def unhex(value: Any) -> Any:
    """The inverse of the script's ``hex()``: "hex:..." strings back to bytes."""
    if isinstance(value, str):
        m = HEX.fullmatch(value)
        return bytes.fromhex(m.group(1)) if m else value
    if isinstance(value, list):
        return [unhex(v) for v in value]
    if isinstance(value, dict):
        return {k: unhex(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("mode", "parser"),
    [
        ("polling", "json"),
        ("websocket", "json"),
        ("upgrade", "json"),
        ("polling", "msgpack"),
        ("upgrade", "msgpack"),
    ],
)
async def test_node_client_scenario(mode: str, parser: str, started: Any) -> None:
    sio, seen = make_server(parser)
    port = await started(sio)
    await run_scenario(port, mode, parser, seen)


async def run_scenario(port: int, mode: str, parser: str, seen: dict[str, Any]) -> None:
    """Run sio_client.js against the server on *port* and check everything it saw."""
    rc, lines, stderr = await run_node_async(
        "sio_client.js", f"http://127.0.0.1:{port}", mode, parser, timeout=30.0
    )
    got = {line["check"]: line["value"] for line in lines}
    assert rc == 0 and got.get("done"), (lines, stderr)

    # connect: the CONNECT reply first, then what the connect handler emitted
    connect = got["connect"]
    assert connect["id"] != connect["engineId"]
    assert connect["welcomeId"] == connect["id"]
    assert connect["welcomeAuth"] == {"token": "ok", "name": "A", "rooms": ["ra"]}
    assert connect["welcomeRooms"] == ["ra"]
    assert connect["packets"][:2] == [[0, "/", None], [2, "/", "welcome"]]
    assert ("first", "A") in seen["middlewares"]
    assert seen["middlewares"].index(("first", "A")) < seen["middlewares"].index(("second", "A"))

    # namespaces
    assert got["admin_auth"] is None  # no auth sent
    assert got["admin_where"] == ["/admin"]
    assert got["dynamic"] == [["/dyn-42", "/dyn-42"]]
    assert got["invalid_namespace"] == {
        "message": "Invalid namespace",
        "data": None,
        "active": False,
    }
    assert got["refused"] == {
        "message": "bad token",
        "data": {"reason": "token", "n": [1, 2]},
        "active": False,
    }
    assert got["middleware_refused"] == {
        "message": "middleware says no",
        "data": {"by": "mw_second"},
        "active": False,
    }
    assert got["admin_middleware_refused"] == {
        "message": "not an admin",
        "data": None,
        "active": False,
    }

    # acks
    assert got["ack_none"] == []
    assert got["ack_one"] == [{"x": [1, None, "y"]}]
    assert got["ack_several"] == [1, "two", {"three": 3}]
    assert got["ack_promise"] == "p"
    assert got["catch_all"] == ["caught no such handler"]
    assert ["no such handler", 5] in seen["any"]
    assert got["handler_error"] == []
    assert got["server_calls"] == [[None, 42, [1, "b", [3]]]]
    assert got["server_call_timeout"] == ["timeout"]
    assert got["ask_back"] == [["because why"], ["after"]]
    assert got["order"] == [list(range(50))]

    # binary
    raw = {"raw": b"\x01\x02\x03", "nested": [b"xyz", {"deep": b"\xff\x00"}], "text": "t"}
    assert unhex(got["binary_ack"]) == [raw, {"sizes": [3, 3, 2]}]
    assert unhex(got["binary_event"]) == [b"\x00\xff", {"list": [b"a", {"b": b"bc"}]}, "text"]

    # rooms: a is in ra, b in r1 and r2, c in r2
    empty: list[Any] = []
    assert got["rooms_to_r1"] == {"a": empty, "b": [["A", "hello r1"]], "c": empty}
    assert got["rooms_to_r1_r2"] == {"a": empty, "b": empty, "c": [["B", "from b"]]}
    assert got["rooms_broadcast"] == {"a": [["C", "from c"]], "b": [["C", "from c"]], "c": empty}
    assert got["rooms_server_except"] == {"a": empty, "b": empty, "c": [["server", "r2 not r1"]]}
    assert got["rooms_join_then_to"] == {"a": [["B", "b to r1"]], "b": empty, "c": empty}
    volatile = {
        "a": [["volatile", "vol"]],
        "b": [["volatile", "vol"]],
        "c": [["volatile to self", "vol"]],
    }
    if mode == "websocket":
        assert got["rooms_volatile"] == volatile
    else:
        # a polling client without a pending GET at that moment is not ready: dropped
        for name, message in got["rooms_volatile"].items():
            assert message in (volatile[name], []), name
    assert got["broadcast_ack_all"] == [
        {"answers": ["b says all", "c says all"], "timed_out": False}
    ]
    assert got["broadcast_ack_partial"] == [{"answers": ["b says some"], "timed_out": True}]
    assert got["fetch_sockets"] == [["B", "C"]]

    # every disconnect reason the client can cause
    ids = got["disconnects"]["ids"]
    client_reasons = got["disconnects"]["clientReasons"]
    server_reasons = {label: seen["disconnects"].get(sid) for label, sid in ids.items()}
    assert server_reasons == {
        "client": "client namespace disconnect",
        "server": "server namespace disconnect",
        "transport": "transport close",
        "parse": "parse error",
        "ping": "ping timeout",
    }
    assert client_reasons["client"] == "io client disconnect"
    assert client_reasons["server"] == "io server disconnect"
    assert client_reasons["transport"] in (
        "io client disconnect",
        "transport close",
        "forced close",
    )
    assert client_reasons["parse"] in ("transport close", "transport error")
    assert client_reasons["ping"] in ("transport close", "ping timeout")

    assert got["still_up"] == ["up"]
    assert got["transport"] == ("polling" if mode == "polling" else "websocket")
    # refused sockets never fired disconnect
    assert len(seen["disconnects"]) >= 5
    assert all(reason != "connection refused" for reason in seen["disconnects"].values())


# -- the same server as an ASGI application under uvicorn -------------------------------------------


class Uvicorn:
    """uvicorn servers run in the test's event loop."""

    def __init__(self) -> None:
        self.running: list[tuple[Any, asyncio.Task[None]]] = []

    async def __call__(self, app: Any) -> int:
        """Serve *app* on a free port; returns the port."""
        import uvicorn

        from support.procs import free_port

        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="none"
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.ensure_future(server.serve())
        self.running.append((server, task))
        async with asyncio.timeout(5):
            while not server.started:
                assert not task.done(), task
                await asyncio.sleep(0.01)
        return port

    async def stop(self) -> None:
        """Stop every server as on SIGTERM (the lifespan shutdown runs)."""
        for server, task in self.running:
            server.should_exit = True
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def uvicorn_started() -> AsyncIterator[Uvicorn]:
    """``port = await uvicorn_started(app)``; stopped afterwards."""
    servers = Uvicorn()
    try:
        yield servers
    finally:
        await servers.stop()


@pytest.mark.parametrize(("mode", "parser"), [("upgrade", "json"), ("polling", "msgpack")])
async def test_node_client_scenario_asgi(mode: str, parser: str, uvicorn_started: Uvicorn) -> None:
    sio, seen = make_server(parser)
    port = await uvicorn_started(sio.asgi_app())
    await run_scenario(port, mode, parser, seen)


async def test_asgi_static_bundle_and_shutdown(uvicorn_started: Uvicorn, tmp_path: Any) -> None:
    import aiohttp

    (tmp_path / "index.html").write_text("<title>asgi</title>")
    dist = NODE_DIR / "node_modules" / "socket.io-client" / "dist"
    sio = wsio.Server(serve_client=True, client_dist=str(dist), ping_interval=0.5)
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    sio.on("hello", lambda socket: "hi")
    server_app = sio.asgi_app(static_files={"/": str(tmp_path)})
    port = await uvicorn_started(server_app)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as r:
            assert r.status == 200
            assert await r.text() == "<title>asgi</title>"
        async with http.get(base + "/socket.io/socket.io.min.js") as r:
            assert r.status == 200
            assert await r.read() == (dist / "socket.io.min.js").read_bytes()
        # a polling client, answered by the same server
        poll = base + "/socket.io/?EIO=4&transport=polling"
        async with http.get(poll) as r:
            sid = json.loads((await r.text())[1:])["sid"]
        poll += "&sid=" + sid
        headers = {"Content-Type": "text/plain;charset=UTF-8"}
        async with http.post(poll, data=b'40\x1e421["hello"]', headers=headers) as r:
            assert r.status == 200
        got: list[str] = []
        while len(got) < 2:
            async with http.get(poll) as r:
                got += (await r.text()).split("\x1e")
        assert got[0].startswith('40{"sid":')
        assert got[1] == '431["hi"]'
        # uvicorn's lifespan shutdown is the Socket.IO server's shutdown
        pending = asyncio.ensure_future(http.get(poll))
        await asyncio.sleep(0.05)
        await uvicorn_started.stop()
        async with await pending as r:
            assert await r.text() in ("1", "2")  # the close packet, or a ping first
    assert reasons == ["server shutting down"]
