"""Connection state recovery with the official Node socket.io-client (its recovery support on)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import wsio
from support.procs import run_node_async

pytestmark = pytest.mark.asyncio


class Harness:
    """A wsio server that streams numbered ticks, half to a room, half to one socket."""

    def __init__(self, **options: Any) -> None:
        self.sio = wsio.Server(**options)
        self.events: list[tuple[Any, ...]] = []
        self.middleware_calls = 0
        self.tasks: list[asyncio.Task[None]] = []
        sio = self.sio

        @sio.use
        def count(socket: wsio.Socket) -> None:
            self.middleware_calls += 1

        @sio.on("connect")
        async def connect(socket: wsio.Socket, auth: Any) -> None:
            self.events.append(("connect", socket.id, socket.recovered, dict(socket.data)))
            if not socket.recovered:
                socket.data["since"] = "first connect"
                await socket.join("r")

        @sio.on("disconnect")
        def disconnect(socket: wsio.Socket, reason: str) -> None:
            self.events.append(("disconnect", socket.id, reason))

        @sio.on("start")
        def start(
            socket: wsio.Socket, total: int, delay: float = 0.03, initial: float = 0.0
        ) -> None:
            sid = socket.id

            async def ticks() -> None:
                await asyncio.sleep(initial)
                for i in range(total):
                    # Odd ticks to a room, even ones to this client alone.
                    (sio.to("r") if i % 2 else sio.to(sid)).emit("tick", i)
                    await asyncio.sleep(delay)

            self.tasks.append(asyncio.ensure_future(ticks()))

    async def run(self, config: dict[str, Any], timeout: float = 15) -> list[dict[str, Any]]:
        result = await run_node_async(
            "sio_recovery.js", f"http://127.0.0.1:{self.port}", json.dumps(config), timeout=timeout
        )
        assert result.returncode == 0, (result.lines, result.stderr)
        return result.lines

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


@pytest.fixture
async def harness() -> AsyncIterator[Any]:
    made: list[Harness] = []

    async def make(**options: Any) -> Harness:
        h = Harness(**options)
        http = await h.sio.start("127.0.0.1", 0)
        h.port = http.port  # type: ignore[attr-defined]
        made.append(h)
        return h

    yield make
    for h in made:
        for task in h.tasks:
            task.cancel()
        await h.sio.shutdown()


def connects(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "connect"]


def ticks(lines: list[dict[str, Any]]) -> list[int]:
    return next(line["ticks"] for line in lines if line["event"] == "done")


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_forced_transport_close_recovers_everything_once_in_order(
    harness: Any, transports: list[str]
) -> None:
    h = await harness(connection_state_recovery=True)
    lines = await h.run(
        {"transports": transports, "total": 30, "closeAt": 5, "startArgs": [30, 0.03]}
    )
    first, second = connects(lines)
    assert first["recovered"] is False and second["recovered"] is True
    assert first["id"] == second["id"]
    assert ticks(lines) == list(range(30))
    assert [e[2] for e in h.of("disconnect")][:1] == ["transport close"]
    assert h.of("connect")[1][1:] == (first["id"], True, {"since": "first connect"})


async def test_ping_timeout_recovers(harness: Any) -> None:
    h = await harness(connection_state_recovery=True, ping_interval=0.3, ping_timeout=0.3)
    lines = await h.run(
        {"total": 40, "dropPingsAt": 3, "dropPingsFor": 3000, "startArgs": [40, 0.05]}
    )
    assert h.of("disconnect")[0][2] == "ping timeout"
    assert [c["recovered"] for c in connects(lines)] == [False, True]
    assert ticks(lines) == list(range(40))


async def test_zero_events_before_the_drop_still_recovers(harness: Any) -> None:
    h = await harness(connection_state_recovery=True)
    lines = await h.run(
        {
            "closeOnConnect": True,
            "total": 20,
            "reconnectionDelay": 150,
            "startArgs": [20, 0.02, 0.05],
        }
    )
    first, second = connects(lines)
    assert second["recovered"] is True and second["id"] == first["id"]
    assert ticks(lines) == list(range(20))


async def test_after_the_window_no_recovery(harness: Any) -> None:
    h = await harness(
        connection_state_recovery=wsio.RecoveryOptions(max_disconnection_duration=0.2)
    )
    lines = await h.run(
        {
            "total": 30,
            "closeAt": 3,
            "reconnectionDelay": 700,
            "startArgs": [30, 0.05],
            "deadline": 10000,
        }
    )
    first, second = connects(lines)
    assert second["recovered"] is False and second["id"] != first["id"]
    got = ticks(lines)
    assert got[:4] == [0, 1, 2, 3] and len(got) < 30  # what was sent while away is gone
    assert h.of("connect")[1][2:] == (False, {})


async def test_deliberate_disconnect_is_not_recovered(harness: Any) -> None:
    h = await harness(connection_state_recovery=True)
    lines = await h.run({"total": 20, "deliberateAt": 3, "startArgs": [20, 0.05]})
    assert [c["recovered"] for c in connects(lines)] == [False, False]
    assert h.of("disconnect")[0][2] == "client namespace disconnect"


@pytest.mark.parametrize("skip", [True, False])
async def test_middlewares_skipped_or_not(harness: Any, skip: bool) -> None:
    h = await harness(connection_state_recovery=wsio.RecoveryOptions(skip_middlewares=skip))
    lines = await h.run({"total": 12, "closeAt": 3, "startArgs": [12, 0.03]})
    assert [c["recovered"] for c in connects(lines)] == [False, True]
    assert h.middleware_calls == (1 if skip else 2)


async def test_no_recovery_without_the_option(harness: Any) -> None:
    h = await harness()
    lines = await h.run({"total": 10, "closeAt": 3, "startArgs": [10, 0.03], "deadline": 3000})
    first, second = connects(lines)
    assert not second.get("recovered") and second["id"] != first["id"]
