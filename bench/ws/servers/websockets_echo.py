"""Echo server on the ``websockets`` library (new asyncio API), for the benchmark.

Compression off, keepalive pings off, 64 MiB message limit.
"""

from __future__ import annotations

import asyncio

from _runner import MAX_SIZE, port_from_argv, run
from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    """Send every message back with its own type (text as text, binary as binary)."""
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    """Serve on 127.0.0.1:PORT until cancelled."""
    async with serve(
        echo,
        "127.0.0.1",
        port_from_argv(),
        compression=None,
        max_size=MAX_SIZE,
        ping_interval=None,
    ):
        await asyncio.Future()


if __name__ == "__main__":
    run(main)
