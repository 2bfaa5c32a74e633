"""Engine.IO benchmark server: ``wsio.engineio.Server`` on wsio's built-in HTTP server (uvloop).

The ``message`` handler sends every message back to its session: a coroutine
awaiting ``session.send`` by default, a plain function calling
``session.write`` with ``--sync``. Polling and WebSocket transports with
upgrades (the defaults), no HTTP or WebSocket compression.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sio" / "servers"))
from _serve import HOST, arguments, serve_wsio

from wsio.engineio import Server, Session


def make_server(sync: bool) -> Server:
    """The server with its echo handler."""
    eio = Server(http_compression=False)
    if sync:

        def message(session: Session, data: str | bytes) -> None:
            session.write(data)

        eio.on("message", message)
    else:

        @eio.on("message")
        async def message_async(session: Session, data: str | bytes) -> None:
            await session.send(data)

    return eio


def main() -> None:
    """Serve until SIGTERM."""
    args = arguments(__doc__.split("\n\n")[0])
    eio = make_server(args.sync)
    serve_wsio(lambda: eio.start(HOST, args.port), eio.shutdown, "wsio Engine.IO", args.profile)


if __name__ == "__main__":
    main()
