"""Cluster benchmark node: ``wsio.Server`` with the Redis adapter (or none), uvloop.

    wsio_node.py --port P [--redis URL] [--mode sharded|classic]

Handlers: ``join`` joins the room it names (then acknowledges with no
arguments); ``blast`` broadcasts its argument as ``msg`` to the room ``bench``
and awaits the broadcast. WebSocket transport only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sio" / "servers"))
from _serve import HOST, raise_nofile, serve_wsio  # bench/sio/servers/_serve.py

import wsio
from wsio.adapters import RedisAdapter


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--mode", default="sharded", choices=["sharded", "classic"])
    args = parser.parse_args()
    adapter = RedisAdapter(args.redis, mode=args.mode) if args.redis else None
    sio = wsio.Server(transports=["websocket"], adapter=adapter)

    @sio.on("join")
    async def join(socket: wsio.Socket, room: str) -> None:
        await socket.join(room)

    @sio.on("blast")
    async def blast(socket: wsio.Socket, data: Any) -> None:
        await sio.to("bench").emit("msg", data)

    raise_nofile()
    serve_wsio(lambda: sio.start(HOST, args.port), sio.shutdown, "wsio node", None)


if __name__ == "__main__":
    main()
