"""Cluster benchmark node: python-socketio's AsyncServer (ASGI, uvicorn), ``AsyncRedisManager`` or none.

    psio_node.py --port P [--redis URL]

The same handlers as ``wsio_node.py``: ``join`` enters the room it names,
``blast`` emits ``msg`` to the room ``bench``. WebSocket transport only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sio" / "servers"))
from _serve import serve_asgi  # bench/sio/servers/_serve.py

import socketio


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    manager = socketio.AsyncRedisManager(args.redis) if args.redis else None
    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], client_manager=manager)

    @sio.on("join")
    async def join(sid: str, room: str) -> None:
        await sio.enter_room(sid, room)

    @sio.on("blast")
    async def blast(sid: str, data: Any) -> None:
        await sio.emit("msg", data, room="bench")

    serve_asgi(socketio.ASGIApp(sio), args.port)


if __name__ == "__main__":
    main()
