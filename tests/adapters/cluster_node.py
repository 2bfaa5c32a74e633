"""One wsio node of a Redis-backed cluster, run as a subprocess by the cluster tests.

    python cluster_node.py --port P --redis URL --tag NAME [--mode sharded|classic]
                           [--cookie NAME]

Every client joins the room ``chat`` and receives ``welcome`` ({tag, id}).
Events: ``say``(text) broadcasts ``said``(text, tag) to ``chat`` and acknowledges
with the tag; ``whoami`` acknowledges with the tag; ``count`` acknowledges with
the number of sockets in the cluster (``fetch_sockets``). Logs go to stderr.
Stops cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

import wsio
from wsio.adapters import ClusterError, RedisAdapter


def make_server(tag: str, redis_url: str, mode: str, cookie: str | None = None) -> wsio.Server:
    """The node's server with the handlers above (``cookie``: set on the handshake)."""
    sio = wsio.Server(
        adapter=RedisAdapter(redis_url, mode=mode, reconnect_delay_max=0.5),
        ping_interval=1.0,
        ping_timeout=1.0,
        cors_allowed_origins="*",
        cookie=cookie,
    )

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: Any) -> None:
        socket.data["tag"] = tag
        await socket.join("chat")
        socket.emit("welcome", {"tag": tag, "id": socket.id})

    @sio.on("say")
    async def say(socket: wsio.Socket, text: Any) -> str:
        await sio.to("chat").emit("said", text, tag)
        return tag

    @sio.on("whoami")
    def whoami(socket: wsio.Socket) -> str:
        return tag

    @sio.on("count")
    async def count(socket: wsio.Socket) -> Any:
        try:
            return len(await sio.fetch_sockets())
        except ClusterError as exc:
            return {"error": str(exc)}

    return sio


async def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--mode", default="sharded", choices=["sharded", "classic"])
    parser.add_argument("--cookie", default=None, help="cookie set on the handshake")
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s {args.tag} %(name)s %(levelname)s %(message)s",
    )
    sio = make_server(args.tag, args.redis, args.mode, args.cookie)
    await sio.start("127.0.0.1", args.port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await sio.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
