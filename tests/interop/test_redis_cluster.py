"""Clusters on a private redis-server: wsio with Node socket.io, the npm emitter, nginx, HAProxy.

* A mixed cluster: one Node ``socket.io`` node (``redis_node.js``, with the npm
  ``@socket.io/redis-adapter``) and one wsio node serve the room ``room``
  together, in the sharded and the classic format: broadcasts, fetchSockets,
  serverSideEmit, socketsJoin, broadcast acks and disconnectSockets both ways.
* The npm ``@socket.io/redis-emitter`` (``redis_emitter.js``) drives wsio nodes.
* nginx (``hash $remote_addr``) in front of three wsio node processes
  (``tests/adapters/cluster_node.py``); official clients (``redis_lb_clients.js``)
  from different loopback addresses land on different nodes and receive each
  other's broadcasts, over WebSocket and over sticky long-polling; then a node is
  killed during traffic, and Redis is restarted during traffic.
* The nginx and HAProxy configurations of docs/deployment.md, taken from the
  page and run with only the addresses changed, in front of the same nodes:
  polling and upgraded clients stay on their node (HAProxy by the ``io``
  cookie) and share a room across nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import wsio
from support.cluster import Recorder, connect
from support.procs import (
    NODE_DIR,
    REPO_ROOT,
    NginxFactory,
    free_port,
    guarded,
    node_env,
    require_binary,
    start,
    start_nginx,
    start_redis,
    stop,
    wait_listening,
)
from support.sio import until
from wsio.adapters import RedisAdapter, RemoteSocket
from wsio.http.client import CookieJar

CLUSTER_NODE = REPO_ROOT / "tests" / "adapters" / "cluster_node.py"
MODES = ["sharded", "classic"]


class NodeScript:
    """A long-running Node script: JSON commands on stdin, JSON lines on stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.proc = proc
        self.stderr = stderr
        self.events: list[dict[str, Any]] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, script: str, *args: object, stderr: IO[bytes]) -> NodeScript:
        proc = await asyncio.create_subprocess_exec(
            *guarded([require_binary("node"), str(NODE_DIR / script), *map(str, args)]),
            cwd=NODE_DIR,
            env=node_env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
        return cls(proc, stderr)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            if not line.strip():
                continue
            obj = json.loads(line)
            fut = self._waiting.pop(obj.get("id"), None) if "id" in obj else None
            if fut is not None and not fut.done():
                fut.set_result(obj)
            else:
                self.events.append(obj)

    async def command(self, cmd: str, timeout: float = 20.0, **args: Any) -> dict[str, Any]:
        n = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[n] = fut
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": n, "cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        result = await asyncio.wait_for(fut, timeout)
        assert "error" not in result or cmd in ("call", "ask"), result
        return result

    async def event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> None:
        await until(lambda: any(predicate(e) for e in self.events), timeout)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def node_script(script: str, *args: object, tmp_path: Path) -> AsyncIterator[NodeScript]:
    with (tmp_path / f"{Path(script).stem}-{free_port()}.err").open("wb") as err:
        proc = await NodeScript.start(script, *args, stderr=err)
        try:
            yield proc
        finally:
            await proc.close()


def make_wsio_node(url: str, mode: str, pings: list[Any]) -> wsio.Server:
    sio = wsio.Server(adapter=RedisAdapter(url, mode=mode))

    @sio.on("connect")
    async def on_connect(socket: wsio.Socket, auth: Any) -> None:
        socket.data = {"node": "wsio", "name": auth["name"]}
        await socket.join(["room", *auth["rooms"]])

    @sio.on_server_event("ping")
    async def ping(x: Any) -> str:
        pings.append(x)
        return f"wsio got {x}"

    return sio


# -- a mixed cluster: Node socket.io + wsio ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_node_and_wsio_nodes_serve_one_room(
    redis_server: int, tmp_path: Path, mode: str
) -> None:
    url = f"redis://127.0.0.1:{redis_server}"
    pings: list[Any] = []
    sio = make_wsio_node(url, mode, pings)
    wsio_port = (await sio.start("127.0.0.1", 0)).port
    node_port = free_port()
    clients: list[Recorder] = []
    async with node_script(
        "redis_node.js", node_port, redis_server, mode, tmp_path=tmp_path
    ) as node:
        try:
            await node.event(lambda e: e.get("event") == "listening")
            n1 = await connect(node_port, "n1")
            w1 = await connect(wsio_port, "w1")
            w2 = await connect(wsio_port, "w2", ["kick"])
            clients += [n1, w1, w2]
            assert (await node.command("count"))["count"] == 2
            assert await sio.namespaces["/"].adapter.server_count() == 2  # type: ignore[misc]

            # Broadcasts, wsio -> Node and Node -> wsio (binary too). The order of each
            # origin's broadcasts is kept; the two origins interleave as they may.
            await sio.to("room").emit("m", "w:to room", b"\x01\x02")
            await sio.to("kick").emit("m", "w:to kick")
            await sio.emit("m", "w:end")
            await node.command("emit", rooms=["room"], args=["m", "n:to room"], binary=[3, 4])
            await node.command("emit", rooms=[], args=["m", "n:to all", {"a": [1, None]}])
            await node.command(
                "emit", rooms=["room"], exceptRooms=["kick"], args=["m", "n:except kick"]
            )
            await node.command("emit", rooms=[w1.client.id], args=["m", "n:to w1 by id"])
            await node.command("emit", rooms=[], args=["m", "n:end"])

            def ended() -> bool:
                return all(("m", "w:end") in c.seen and ("m", "n:end") in c.seen for c in clients)

            await until(ended)

            def got(r: Recorder, origin: str) -> list[Any]:
                return [e[1:] for e in r.seen if e[0] == "m" and e[1].startswith(origin)]

            for r in (n1, w1):
                assert got(r, "w:") == [("w:to room", b"\x01\x02"), ("w:end",)]
            assert got(w2, "w:") == [("w:to room", b"\x01\x02"), ("w:to kick",), ("w:end",)]
            assert got(n1, "n:") == [
                ("n:to room", b"\x03\x04"),
                ("n:to all", {"a": [1, None]}),
                ("n:except kick",),
                ("n:end",),
            ]
            assert got(w1, "n:") == [
                ("n:to room", b"\x03\x04"),
                ("n:to all", {"a": [1, None]}),
                ("n:except kick",),
                ("n:to w1 by id",),
                ("n:end",),
            ]
            assert got(w2, "n:") == [
                ("n:to room", b"\x03\x04"),
                ("n:to all", {"a": [1, None]}),
                ("n:end",),
            ]

            # fetchSockets, both ways.
            sockets = await sio.fetch_sockets()
            remote = [s for s in sockets if isinstance(s, RemoteSocket)]
            assert [s.id for s in remote] == [n1.client.id]
            assert remote[0].data == {"node": "node", "n": 0}
            assert remote[0].rooms == {n1.client.id, "room"}
            assert remote[0].handshake.auth == {"name": "n1", "rooms": []}
            assert {s.id for s in sockets} == {n1.client.id, w1.client.id, w2.client.id}
            fetched = (await node.command("fetch", rooms=["kick"]))["sockets"]
            assert fetched == [
                {
                    "id": w2.client.id,
                    "rooms": sorted([str(w2.client.id), "room", "kick"]),
                    "data": {"node": "wsio", "name": "w2"},
                    "address": "127.0.0.1",
                    "auth": {"name": "w2", "rooms": ["kick"]},
                    "local": False,
                }
            ]
            assert len((await node.command("fetch", rooms=["room"]))["sockets"]) == 3

            # serverSideEmit, both ways, with and without acks.
            assert await sio.server_side_emit("ping", 5, timeout=3) == ["node got 5"]
            await sio.server_side_emit("ping", "no ack")
            await node.event(lambda e: e.get("event") == "ping" and e.get("x") == "no ack")
            answer = await node.command("sseAck", args=["ping", 9])
            assert answer["responses"] == ["wsio got 9"]
            await node.command("sse", args=["ping", "quiet"])
            await until(lambda: pings == [9, "quiet"])

            # socketsJoin / socketsLeave, both ways.
            await sio.in_("room").sockets_join("both")
            fetched = (await node.command("fetch", rooms=["both"]))["sockets"]
            for _ in range(100):
                if len(fetched) == 3:
                    break
                await asyncio.sleep(0.02)
                fetched = (await node.command("fetch", rooms=["both"]))["sockets"]
            assert len(fetched) == 3
            await node.command("join", target=["kick"], rooms=["from-node"])
            await until(lambda: "from-node" in sio.sockets[w2.client.id].rooms)  # type: ignore[index]
            await node.command("leave", target=["room"], rooms=["both"])
            await until(lambda: "both" not in sio.sockets[w1.client.id].rooms)  # type: ignore[index]

            # Broadcasts with acknowledgements across the two nodes.
            assert sorted(await sio.timeout(3).call("q", 2)) == [20, 20, 20]
            called = await node.command("call", rooms=["room"])
            assert sorted(called["responses"]) == [70, 70, 70]

            # disconnectSockets from Node reaches a wsio client.
            await node.command("disconnect", target=["kick"])
            await until(lambda: w2.disconnects == ["io server disconnect"])
            assert w1.disconnects == [] and n1.disconnects == []
        finally:
            for c in clients:
                await c.client.disconnect()
            await sio.shutdown()


async def test_npm_redis_emitter_drives_wsio_nodes(redis_server: int, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{redis_server}"
    pings: list[Any] = []
    nodes = [make_wsio_node(url, "classic", pings) for _ in range(2)]
    for sio in nodes:
        sio.of("/admin")
    ports = [(await sio.start("127.0.0.1", 0)).port for sio in nodes]
    clients: list[Recorder] = []
    try:
        a1 = await connect(ports[0], "a1")
        b1 = await connect(ports[1], "b1")
        clients += [a1, b1]
        admin_client = wsio.Client(
            f"http://127.0.0.1:{ports[1]}/admin", transports=["websocket"], reconnection=False
        )
        admin = Recorder(admin_client)
        await admin_client.connect()
        clients.append(admin)
        # A socket of "/" outside "room": made by leaving it after connecting.
        c1 = await connect(ports[0], "c1", ["kick"])
        clients.append(c1)
        await nodes[0].sockets[c1.client.id].leave("room")  # type: ignore[index]

        with (tmp_path / "emitter.err").open("wb") as err:
            proc = await NodeScript.start("redis_emitter.js", redis_server, stderr=err)
            try:
                await proc.event(lambda e: e.get("event") == "done")
            finally:
                await proc.close()

        def news(r: Recorder) -> list[Any]:
            return [e[1:] for e in r.seen if e[0] == "news"]

        await until(
            lambda: ("news", "to joined", 5) in a1.seen and ("news", "to joined", 5) in b1.seen
        )
        await until(lambda: c1.disconnects == ["io server disconnect"])
        for r in (a1, b1):
            assert news(r) == [("to room", 1), ("to all", 2), ("to joined", 5)]
        assert news(c1) == [("to all", 2), ("except room", 3)]
        assert news(admin) == [("admin", 4)]
        await until(lambda: pings == ["from emitter", "from emitter"])
    finally:
        for c in clients:
            await c.client.disconnect()
        for sio in nodes:
            await sio.shutdown()


# -- nginx in front of three wsio node processes ----------------------------------------------


class LbCluster:
    """Redis, three wsio node processes and a load balancer in front of them.

    *proxy* starts the load balancer for the nodes' ports and returns its port;
    *cookie* is the cookie the nodes set on the handshake.
    """

    def __init__(
        self, tmp_path: Path, proxy: Callable[[list[int]], int], cookie: str | None = None
    ) -> None:
        self.tmp = tmp_path
        self.redis_port = free_port()
        self.redis = start_redis(self.redis_port, tmp_path)
        self.ports = [free_port() for _ in range(3)]
        self.tags = ["n0", "n1", "n2"]
        self.nodes: dict[str, subprocess.Popen[Any]] = {}
        try:
            for tag, port in zip(self.tags, self.ports):
                with (tmp_path / f"{tag}.log").open("wb") as log:
                    self.nodes[tag] = subprocess.Popen(
                        guarded([sys.executable, str(CLUSTER_NODE), "--port", str(port),
                         "--redis", f"redis://127.0.0.1:{self.redis_port}", "--tag", tag,
                         *(["--cookie", cookie] if cookie else [])]),
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                        start_new_session=True,
                    )  # fmt: skip
            for tag, port in zip(self.tags, self.ports):
                wait_listening(port, self.nodes[tag], timeout=15)
            self.port = proxy(self.ports)
        except BaseException:
            self.close()
            raise

    def log(self, tag: str) -> str:
        return (self.tmp / f"{tag}.log").read_text()

    def kill(self, tag: str) -> None:
        proc = self.nodes[tag]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self.nodes.values():
            stop(proc)
        stop(self.redis)


@pytest.fixture
def lb_cluster(tmp_path: Path, nginx_factory: NginxFactory) -> Iterator[LbCluster]:
    cluster = LbCluster(tmp_path, lambda ports: nginx_factory(ports, balance="hash $remote_addr"))
    try:
        yield cluster
    finally:
        cluster.close()


CLIENTS = 8


def check_round(results: list[dict[str, Any]], name: str) -> None:
    """Every client received every client's text once, and its own node acknowledged."""
    expected = sorted(f"{name}:{i}" for i in range(CLIENTS))
    for r in results:
        assert r["got"] == expected, r
        assert r["acked"] == r["tag"], r


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_clients_behind_nginx_share_rooms(
    lb_cluster: LbCluster, tmp_path: Path, transports: str
) -> None:
    url = f"http://127.0.0.1:{lb_cluster.port}"
    async with node_script("redis_lb_clients.js", url, CLIENTS, transports, tmp_path=tmp_path) as c:
        tags = (await c.command("connected"))["tags"]
        # hash $remote_addr spreads the eight source addresses over all three nodes.
        assert set(tags) == set(lb_cluster.tags), tags
        results = (await c.command("round", name="r1"))["results"]
        check_round(results, "r1")
        final = {"polling": "polling", "websocket": "websocket", "polling,websocket": "websocket"}
        assert {r["transport"] for r in results} == {final[transports]}
        # Each node counts every socket of the cluster (fetch_sockets over Redis).
        assert (await c.command("ask", client=0, event="count"))["answer"] == CLIENTS


async def test_a_node_killed_during_traffic(lb_cluster: LbCluster, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{lb_cluster.port}"
    async with node_script(
        "redis_lb_clients.js", url, CLIENTS, "websocket", tmp_path=tmp_path
    ) as c:
        tags = (await c.command("connected"))["tags"]
        check_round((await c.command("round", name="before"))["results"], "before")
        victim = max(set(tags), key=tags.count)
        moved = [i for i, t in enumerate(tags) if t == victim]
        await c.command("traffic", on=True)
        await asyncio.sleep(0.3)
        lb_cluster.kill(victim)
        await asyncio.sleep(0.3)
        assert (await c.command("traffic", on=False))["sent"] > 10
        after = (await c.command("connected"))["tags"]
        assert victim not in after, after
        for i in range(CLIENTS):
            if i not in moved:
                assert after[i] == tags[i]  # the others stayed where they were
        for i in moved:
            assert any(
                e.get("event") == "disconnect"
                and e["client"] == i
                and e["reason"] == "transport close"
                for e in c.events
            )
        check_round((await c.command("round", name="after"))["results"], "after")
        started = time.monotonic()
        assert (await c.command("ask", client=moved[0], event="count"))["answer"] == CLIENTS
        assert time.monotonic() - started < 2  # the dead node is not waited for


async def test_redis_restarted_during_traffic(lb_cluster: LbCluster, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{lb_cluster.port}"
    async with node_script(
        "redis_lb_clients.js", url, CLIENTS, "websocket", tmp_path=tmp_path
    ) as c:
        tags = (await c.command("connected"))["tags"]
        check_round((await c.command("round", name="before"))["results"], "before")
        await c.command("traffic", on=True)
        await asyncio.sleep(0.2)
        stop(lb_cluster.redis)
        await asyncio.sleep(0.3)
        # Redis is down: every node still serves its own clients.
        during = (await c.command("round", name="during", wait=1000))["results"]
        for r in during:
            same_node = sorted(f"during:{i}" for i, t in enumerate(tags) if t == r["tag"])
            assert r["got"] == same_node, r
            assert r["acked"] == r["tag"]
        assert (await c.command("ask", client=0, event="count"))["answer"]["error"]
        lb_cluster.redis = start_redis(lb_cluster.redis_port, tmp_path)
        await asyncio.sleep(0.2)
        assert (await c.command("traffic", on=False))["sent"] > 10
        for attempt in range(50):
            results = (await c.command("round", name=f"after{attempt}", wait=1000))["results"]
            if all(len(r["got"]) == CLIENTS for r in results):
                break
        else:
            raise AssertionError("broadcasts did not resume after Redis came back")
        check_round(results, f"after{attempt}")
        assert (await c.command("connected"))["tags"] == tags  # no client had to move
        for tag in lb_cluster.tags:
            log = lb_cluster.log(tag)
            assert "Redis connection lost" in log
            assert "Redis connection restored after" in log


# -- the load balancer configurations of docs/deployment.md, as documented ----------------

DEPLOYMENT_DOC = REPO_ROOT / "docs" / "deployment.md"
DOC_UPSTREAM = re.compile(r"10\.0\.0\.\d+:8000")


def documented_block(section: str, lang: str) -> str:
    """The first ``lang`` code block of the ``## section`` of docs/deployment.md."""
    text = DEPLOYMENT_DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start, end)
    assert match is not None, f"no {lang} block under '## {section}' in {DEPLOYMENT_DOC.name}"
    return match[1]


def on_loopback(conf: str, ports: list[int], listen: tuple[str, str], port: int) -> str:
    """*conf* with its example upstreams replaced by *ports* and its listener by *port*."""
    found = DOC_UPSTREAM.findall(conf)
    assert len(found) == len(ports), f"expected {len(ports)} upstreams in the doc, got {found}"
    it = iter(ports)
    conf = DOC_UPSTREAM.sub(lambda _: f"127.0.0.1:{next(it)}", conf)
    old, new = listen
    assert conf.count(old) == 1, f"expected one {old!r} in the doc's configuration"
    return conf.replace(old, new.format(port=port))


HAPROXY_MAIN = """\
global
    maxconn 512

defaults
    timeout connect 2s

{body}
"""


class DocumentedProxy:
    """nginx or HAProxy run with the configuration docs/deployment.md shows."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[Any]] = []

    def nginx(self, ports: list[int]) -> int:
        port = free_port()
        body = on_loopback(
            documented_block("nginx", "nginx"),
            ports,
            ("listen 80;", "listen 127.0.0.1:{port};"),
            port,
        )
        self.procs.append(start_nginx(self.tmp, body, port))
        return port

    def haproxy(self, ports: list[int]) -> int:
        binary = require_binary("haproxy")
        port = free_port()
        body = on_loopback(
            documented_block("HAProxy", "text"), ports, ("bind :80", "bind 127.0.0.1:{port}"), port
        )
        conf = self.tmp / "haproxy.cfg"
        conf.write_text(HAPROXY_MAIN.format(body=body))
        check = subprocess.run(
            [binary, "-c", "-q", "-f", str(conf)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, f"HAProxy rejects the documented config:\n{check.stderr}"
        with (self.tmp / "haproxy.err").open("wb") as err:
            self.procs.append(start([binary, "-db", "-f", str(conf)], port, stderr=err))
        return port

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)


@pytest.fixture
def documented_proxy(tmp_path: Path) -> Iterator[DocumentedProxy]:
    proxy = DocumentedProxy(tmp_path)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("transports", ["polling", "polling,websocket"])
async def test_documented_nginx_config(
    documented_proxy: DocumentedProxy, tmp_path: Path, transports: str
) -> None:
    """The nginx block of docs/deployment.md, verbatim but for addresses, in front of 3 nodes."""
    cluster = LbCluster(tmp_path, documented_proxy.nginx)
    try:
        url = f"http://127.0.0.1:{cluster.port}"
        async with node_script(
            "redis_lb_clients.js", url, CLIENTS, transports, tmp_path=tmp_path
        ) as c:
            tags = (await c.command("connected"))["tags"]
            assert len(set(tags)) >= 2, tags  # the clients' addresses hash to several nodes
            results = (await c.command("round", name="doc"))["results"]
            check_round(results, "doc")
            final = "websocket" if "websocket" in transports else "polling"
            assert {r["transport"] for r in results} == {final}
    finally:
        cluster.close()


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_documented_haproxy_config(
    documented_proxy: DocumentedProxy, tmp_path: Path, transports: list[str]
) -> None:
    """The HAProxy block of docs/deployment.md: sticky by the ``io`` cookie, ``leastconn``.

    Without the cookie stickiness, ``leastconn`` would send a session's
    polling requests to nodes that do not know it.
    """
    cluster = LbCluster(tmp_path, documented_proxy.haproxy, cookie="io")
    clients: list[wsio.Client] = []
    try:
        url = f"http://127.0.0.1:{cluster.port}"
        said: list[list[str]] = []
        jars: list[CookieJar] = []
        for _ in range(6):
            jars.append(CookieJar())
            client = wsio.Client(
                url, transports=transports, reconnection=False, timeout=10, cookie_jar=jars[-1]
            )
            texts: list[str] = []
            client.on("said", lambda text, tag, texts=texts: texts.append(text))
            said.append(texts)
            await client.connect()
            clients.append(client)
        tags = [await c.call("whoami", timeout=10) for c in clients]
        assert len(set(tags)) >= 2, tags  # leastconn spreads the sessions
        for _ in range(5):  # every request of a session reaches its node
            assert [await c.call("whoami", timeout=10) for c in clients] == tags
        for jar in jars:  # HAProxy prefixed the node's name to wsio's cookie
            cookie = jar.header_for(url + "/socket.io/")
            assert re.fullmatch(r"io=n\d~[\w-]+", cookie or ""), cookie
        for i, c in enumerate(clients):
            assert await c.call("say", f"t{i}", timeout=10) == tags[i]
        expected = sorted(f"t{i}" for i in range(len(clients)))
        await until(lambda: all(sorted(texts) == expected for texts in said), timeout=10)
        assert {c.transport for c in clients} == {transports[-1]}
    finally:
        for c in clients:
            await c.disconnect()
        cluster.close()
