"""Engine.IO benchmark server: python-engineio's AsyncServer as an ASGI app under uvicorn.

The ``message`` handler sends every message back to its session. Polling and
WebSocket transports with upgrades (the defaults), no HTTP or WebSocket
compression.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sio" / "servers"))
from _serve import arguments, serve_asgi

import engineio

eio = engineio.AsyncServer(async_mode="asgi", http_compression=False)


@eio.on("message")
async def message(sid: str, data: str | bytes) -> None:
    """Echo."""
    await eio.send(sid, data)


if __name__ == "__main__":
    serve_asgi(engineio.ASGIApp(eio), arguments(__doc__.split("\n\n")[0]).port)
