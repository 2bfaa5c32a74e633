"""No sticky sessions, and recovery across nodes and restarts (Redis + round-robin nginx).

Three wsio nodes (``cluster_node.py``) share a private redis-server with
``sticky_sessions=False`` and connection state recovery; nginx spreads the
requests round-robin, so one long-polling session's requests land on every
node. A fourth node, not behind nginx, broadcasts numbered ticks to the
clients' room. The clients are the official Node socket.io-client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.procs import (
    NODE_DIR,
    NginxFactory,
    free_port,
    guarded,
    node_env,
    require_binary,
    start,
    stop,
)

HERE = Path(__file__).parent
pytestmark = pytest.mark.asyncio


class Cluster:
    def __init__(self, redis_port: int) -> None:
        self.redis = f"redis://127.0.0.1:{redis_port}/0"
        self.nodes: dict[str, tuple[int, subprocess.Popen[Any] | None]] = {}
        self.logs: dict[str, Path] = {}

    def start_node(
        self, name: str, port: int | None = None, ticker: bool = False, tmp: Path | None = None
    ) -> int:
        port = port or free_port()
        log = tmp / f"{name}.log" if tmp is not None else None
        out: Any = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        cmd = [sys.executable, str(HERE / "cluster_node.py"), str(port), self.redis, name]
        if ticker:
            cmd.append("--ticker")
        proc = start(cmd, port, stdout=out, timeout=15)
        if log:
            self.logs[name] = log
        self.nodes[name] = (port, proc)
        return port

    def stop_node(self, name: str, kill: bool = False) -> None:
        port, proc = self.nodes[name]
        if proc is not None:
            if kill:
                import os
                import signal

                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            else:
                stop(proc)
        self.nodes[name] = (port, None)

    def lines(self, name: str) -> list[dict[str, Any]]:
        log = self.logs.get(name)
        if log is None or not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def stop_all(self) -> None:
        for name in list(self.nodes):
            self.stop_node(name)


@pytest.fixture
def cluster(
    redis_server: int, nginx_factory: NginxFactory, tmp_path: Path
) -> Iterator[tuple[Cluster, int]]:
    c = Cluster(redis_server)
    ports = [c.start_node(name, tmp=tmp_path) for name in ("a", "b", "c")]
    c.start_node("ticker", ticker=True, tmp=tmp_path)
    proxy = nginx_factory(ports)  # plain round-robin: no stickiness at all
    try:
        yield c, proxy
    finally:
        c.stop_all()


class NodeClient:
    """The Node client script, read line by line while it runs."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self, url: str, config: dict[str, Any]) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *guarded(
                [
                    require_binary("node"),
                    str(NODE_DIR / "no_sticky_client.js"),
                    url,
                    json.dumps(config),
                ]
            ),
            cwd=NODE_DIR,
            env=node_env(),
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.strip():
                self.lines.append(json.loads(line))
                self._changed.set()

    async def until(self, predicate: Any, timeout: float) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                self._changed.clear()
                await self._changed.wait()

    async def done(self, timeout: float = 30) -> dict[str, Any]:
        line = await self.until(lambda e: e["event"] in ("done", "timeout"), timeout)
        if line["event"] == "timeout":
            line = await self.until(lambda e: e["event"] == "done", 5)
            raise AssertionError(f"client timed out: {self.lines}")
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 5)
        return line

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            import os
            import signal

            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


@pytest.fixture
async def node_clients() -> AsyncIterator[Any]:
    made: list[NodeClient] = []

    async def make(url: str, config: dict[str, Any]) -> NodeClient:
        client = NodeClient()
        made.append(client)
        await client.start(url, config)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_numbered_events_both_ways_round_robin(
    cluster: tuple[Cluster, int], node_clients: Any, transports: list[str]
) -> None:
    c, proxy = cluster
    url = f"http://127.0.0.1:{proxy}"
    clients = [
        await node_clients(url, {"transports": transports, "mode": "numbers", "count": 150})
        for _ in range(3)
    ]
    for client in clients:
        done = await client.done(40)
        # server -> client: every numbered event once, in order
        assert done["srv"] == list(range(150))
        # client -> server: every event acknowledged once, in order
        assert done["acks"] == list(range(150))
        if "websocket" in transports:
            assert done["transport"] == "websocket"
    # ... and each node saw its clients' events in order
    for name in ("a", "b", "c"):
        assert not [e for e in c.lines(name) if e["event"] == "out-of-order"]


async def test_killed_node_recovered_on_another(
    cluster: tuple[Cluster, int], node_clients: Any
) -> None:
    c, proxy = cluster
    client = await node_clients(
        f"http://127.0.0.1:{proxy}",
        {"transports": ["polling", "websocket"], "mode": "ticks", "ticks": 150, "deadline": 40000},
    )
    first = await client.until(lambda e: e["event"] == "connect", 15)
    owner = first["node"]
    assert owner in ("a", "b", "c")
    await client.until(lambda e: e["event"] == "first-tick", 15)
    await asyncio.sleep(0.5)
    c.stop_node(owner, kill=True)  # a crash: no goodbye, no session saved at the end
    again = await client.until(lambda e: e["event"] == "connect" and e is not first, 20)
    assert again["recovered"] is True and again["id"] == first["id"]
    assert again["node"] != owner
    done = await client.done(40)
    ticks = done["ticks"]
    seen = [e for e in client.lines if e["event"] not in ("done", "first-tick")]
    assert ticks == list(range(ticks[0], ticks[0] + 150)), f"every tick once, in order: {seen}"


async def test_all_nodes_restarted_still_recovered(
    cluster: tuple[Cluster, int], node_clients: Any, tmp_path: Path
) -> None:
    c, proxy = cluster
    client = await node_clients(
        f"http://127.0.0.1:{proxy}",
        {"transports": ["polling"], "mode": "ticks", "ticks": 200, "deadline": 45000},
    )
    first = await client.until(lambda e: e["event"] == "connect", 15)
    await client.until(lambda e: e["event"] == "first-tick", 15)
    ports = {name: c.nodes[name][0] for name in ("a", "b", "c")}
    for name in ports:
        c.stop_node(name)  # every node behind nginx goes; Redis and the ticker stay
    await asyncio.sleep(1.0)
    for name, port in ports.items():
        c.start_node(name, port=port, tmp=tmp_path)
    again = await client.until(lambda e: e["event"] == "connect" and e is not first, 25)
    assert again["recovered"] is True and again["id"] == first["id"]
    done = await client.done(45)
    ticks = done["ticks"]
    seen = [e for e in client.lines if e["event"] not in ("done", "first-tick")]
    assert ticks == list(range(ticks[0], ticks[0] + 200)), f"every tick once, in order: {seen}"
