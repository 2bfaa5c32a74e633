"""Fixtures of the WebSocket tests: servers that are always closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from wsutil import StartServer, echo

from wsio.websocket import WebSocket, WebSocketServer, serve


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(handler=echo, **serve_options)`` on 127.0.0.1, a free port."""
    servers: list[WebSocketServer] = []

    async def start(
        handler: Callable[[WebSocket], Awaitable[Any]] = echo, **kw: Any
    ) -> WebSocketServer:
        kw.setdefault("ping_interval", None)
        kw.setdefault("close_timeout", 2.0)
        server = await serve(handler, "127.0.0.1", 0, **kw)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await asyncio.wait_for(server.close(), 10)


@pytest.fixture
async def echo_server(start_server: StartServer) -> WebSocketServer:
    """An echo server with the default options (keepalive off)."""
    return await start_server()
