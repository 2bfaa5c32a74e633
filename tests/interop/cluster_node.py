"""A wsio node for the no-sticky-sessions and cross-node recovery tests (run as a process).

argv: PORT REDIS_URL NAME [--ticker]. Joins every client to room "r"; checks
that the numbered events of each client arrive in order (socket.data keeps
the last number, and it survives recovery); answers "burst" with numbered
events. With --ticker the node also broadcasts a numbered "tick" to room "r"
every 20 ms (it is not behind the load balancer).
"""

from __future__ import annotations

import asyncio
import json
import sys

import wsio
from wsio.adapters import RedisAdapter


def say(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


async def main(port: int, redis_url: str, name: str, ticker: bool) -> None:
    sio = wsio.Server(
        adapter=RedisAdapter(redis_url, request_timeout=2),
        sticky_sessions=False,
        connection_state_recovery=wsio.RecoveryOptions(max_disconnection_duration=30),
        ping_interval=1,
        ping_timeout=2,
    )

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: object) -> None:
        say(event="connect", node=name, sid=socket.id, recovered=socket.recovered)
        if not socket.recovered:
            socket.data["last"] = -1
            await socket.join("r")

    @sio.on("num")
    def num(socket: wsio.Socket, n: int) -> int:
        expected = socket.data.get("last", -1) + 1
        if n != expected:
            say(event="out-of-order", node=name, sid=socket.id, got=n, expected=expected)
        socket.data["last"] = n
        return n

    @sio.on("burst")
    def burst(socket: wsio.Socket, count: int) -> None:
        for i in range(count):
            sio.to(socket.id).emit("srv", i)

    @sio.on("whoami")
    def whoami(socket: wsio.Socket) -> str:
        return name

    await sio.start("127.0.0.1", port)
    say(event="ready", node=name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if ticker:
        tick = 0
        while not stop.is_set():
            await sio.to("r").emit("tick", tick)
            tick += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.02)
            except TimeoutError:
                pass
    else:
        await stop.wait()
    await sio.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], "--ticker" in sys.argv))
