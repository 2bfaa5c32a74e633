"""Echo server on aiohttp's ``web.WebSocketResponse``, for the benchmark.

Compression off, no heartbeat, 64 MiB message limit, no access log.
"""

from __future__ import annotations

import asyncio

from _runner import MAX_SIZE, port_from_argv, run
from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    """Send every message back with its own type (text as text, binary as binary)."""
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def main() -> None:
    """Serve on 127.0.0.1:PORT until cancelled."""
    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port_from_argv()).start()
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    run(main)
