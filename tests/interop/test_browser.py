"""Headless Chromium with the official Socket.IO browser bundle against wsio.

The page (tests/interop/web/index.html) and the bundle
(``/socket.io/socket.io.js``, ``serve_client=True``) are both served by the
wsio server under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import wsio
from support.procs import NODE_DIR

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

WEB_DIR = Path(__file__).resolve().parent / "web"
CLIENT_DIST = NODE_DIR / "node_modules" / "socket.io-client" / "dist"


@pytest.fixture
async def server() -> AsyncIterator[tuple[wsio.Server, int]]:
    sio = wsio.Server(
        serve_client=True, client_dist=str(CLIENT_DIST), ping_interval=1, ping_timeout=2
    )

    @sio.on("join")
    async def join(socket: wsio.Socket, room: str) -> list[str]:
        await socket.join(room)
        return sorted(socket.rooms - {socket.id})

    @sio.on("chat")
    async def chat(socket: wsio.Socket, room: str, *payload: Any) -> int:
        await socket.to(room).emit("chat", socket.id, *payload)
        return len(payload)

    @sio.on("echo")
    def echo(socket: wsio.Socket, *args: Any) -> tuple[Any, ...]:
        return (*args, socket.transport)

    http = await sio.start("127.0.0.1", 0, static_files={"/": str(WEB_DIR)})
    try:
        yield sio, http.port
    finally:
        await asyncio.wait_for(sio.shutdown(), 5)


async def open_page(browser: Browser, port: int, options: dict[str, Any]) -> tuple[Page, str]:
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/")
    assert await page.title() == "wsio browser test"
    sid = await page.evaluate("(options) => window.connect(options)", options)
    return page, sid


async def test_browser_pages_share_a_room(
    browser: Browser, server: tuple[wsio.Server, int]
) -> None:
    sio, port = server
    page1, sid1 = await open_page(browser, port, {})  # polling, then upgrade
    page2, sid2 = await open_page(browser, port, {"transports": ["websocket"]})
    assert set(sio.sockets) == {sid1, sid2}

    # acks with ArrayBuffers both ways
    got = await page1.evaluate("() => window.callWithBytes('echo', [0, 1, 254, 255])")
    assert got[:2] == [{"hex": "0001feff"}, {"nested": [{"hex": "0001feff"}]}]
    assert got[2] in ("polling", "websocket")
    got = await page2.evaluate("() => window.call('echo', 'text', {n: 1}, [true, null])")
    assert got == ["text", {"n": 1}, [True, None], "websocket"]

    # both pages in one room receive each other's broadcasts, not their own
    assert await page1.evaluate("() => window.call('join', 'lobby')") == [["lobby"]]
    assert await page2.evaluate("() => window.call('join', 'lobby')") == [["lobby"]]
    sent = await page1.evaluate(
        "() => window.call('chat', 'lobby', 'hi from 1', new Uint8Array([7, 8]).buffer)"
    )
    assert sent == [2]
    assert await page2.evaluate("() => window.waitInbox(1)") == [
        [sid1, "hi from 1", {"hex": "0708"}]
    ]
    assert await page2.evaluate("() => window.call('chat', 'lobby', {from: 2})") == [1]
    assert await page1.evaluate("() => window.waitInbox(1)") == [[sid2, {"from": 2}]]
    # a server broadcast reaches both
    await sio.to("lobby").emit("chat", "server", b"\x00")
    for page in (page1, page2):
        assert await page.evaluate("() => window.waitInbox(1)") == [["server", {"hex": "00"}]]

    # the first page upgraded from polling to WebSocket
    for _ in range(100):
        if await page1.evaluate("() => window.transport()") == "websocket":
            break
        await asyncio.sleep(0.03)
    assert await page1.evaluate("() => window.transport()") == "websocket"
    assert sio.sockets[sid1].transport == "websocket"

    # a page leaving fires disconnect on the server
    gone = asyncio.get_running_loop().create_future()
    sio.on("disconnect", lambda socket, reason: gone.set_result((socket.id, reason)))
    await page2.evaluate("() => window.disconnect()")
    assert await asyncio.wait_for(gone, 3) == (sid2, "client namespace disconnect")
    await page1.close()
    await page2.close()
