"""Socket.IO benchmark server: python-socketio's AsyncServer as an ASGI app under uvicorn.

The same handlers as the wsio server: ``echo`` acknowledges with its argument,
``join`` enters the room it names, ``blast`` emits ``msg`` to the room ``bench``.
WebSocket transport only, no compression.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve import arguments, serve_asgi

import socketio

sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"])


@sio.on("echo")
async def echo(sid: str, data: Any) -> Any:
    """Acknowledge with the argument."""
    return data


@sio.on("join")
async def join(sid: str, room: str) -> None:
    """Enter the room; the ack follows."""
    await sio.enter_room(sid, room)


@sio.on("blast")
async def blast(sid: str, data: Any) -> None:
    """Broadcast to the room."""
    await sio.emit("msg", data, room="bench")


if __name__ == "__main__":
    serve_asgi(socketio.ASGIApp(sio), arguments(__doc__.split("\n\n")[0]).port)
