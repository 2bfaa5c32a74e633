"""Socket.IO benchmark server: ``wsio.Server`` on wsio's built-in HTTP server (uvloop).

Handlers: ``echo`` acknowledges with its argument, ``join`` joins the room it
names (then acknowledges with no arguments), ``blast`` broadcasts its argument as
a ``msg`` event to the room ``bench``. Coroutines by default, plain functions
with ``--sync``. WebSocket transport only, no compression.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve import HOST, arguments, serve_wsio

import wsio


def make_server(sync: bool) -> wsio.Server:
    """The server with the three benchmark handlers."""
    sio = wsio.Server(transports=["websocket"])
    if sync:

        def echo(socket: wsio.Socket, data: Any) -> Any:
            return data

        def join(socket: wsio.Socket, room: str) -> None:
            socket.join(room)

        def blast(socket: wsio.Socket, data: Any) -> None:
            sio.to("bench").emit("msg", data)

        for handler in (echo, join, blast):
            sio.on(handler.__name__, handler)
    else:

        @sio.on("echo")
        async def echo_async(socket: wsio.Socket, data: Any) -> Any:
            return data

        @sio.on("join")
        async def join_async(socket: wsio.Socket, room: str) -> None:
            await socket.join(room)

        @sio.on("blast")
        async def blast_async(socket: wsio.Socket, data: Any) -> None:
            await sio.to("bench").emit("msg", data)

    return sio


def main() -> None:
    """Serve until SIGTERM."""
    args = arguments(__doc__.split("\n\n")[0])
    sio = make_server(args.sync)
    serve_wsio(lambda: sio.start(HOST, args.port), sio.shutdown, "wsio Socket.IO", args.profile)


if __name__ == "__main__":
    main()
