"""Fixtures that start real peers: redis-server, nginx and headless Chromium.

A missing binary fails the test with a hint to run ``scripts/setup.sh``; nothing
is skipped silently.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.procs import (
    SETUP_HINT,
    NginxFactory,
    free_port,
    require_binary,
    start_nginx,
    start_redis,
    stop,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # pages served from http://127.0.0.1 may open ws:// to any loopback port
    "--disable-features=LocalNetworkAccessChecks",
]

NGINX_HTTP = """\
    upstream backends {{
        {balance}
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backends;
{websocket}
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
        }}
    }}"""

NGINX_WEBSOCKET = """\
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";"""


def _need(name: str) -> str:
    try:
        return require_binary(name)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[int]:
    """A private redis-server on 127.0.0.1 without persistence; yields its port."""
    _need("redis-server")
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture
def nginx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxFactory]:
    """A function that starts a private nginx reverse proxy and returns its port.

    ``make(upstreams, balance="", websocket=True)``: ``upstreams`` are backend
    ports on 127.0.0.1; ``balance`` is an upstream directive such as
    ``"ip_hash"`` or ``"hash $remote_addr"`` (default round-robin); with
    ``websocket=False`` the proxy forwards as HTTP/1.0 without the Upgrade and
    Connection headers, as a proxy that was not set up for WebSocket does.
    Every nginx started is stopped at teardown.
    """
    _need("nginx")  # a clear failure when it is missing
    procs: list[subprocess.Popen[Any]] = []

    def make(upstreams: list[int], balance: str = "", websocket: bool = True) -> int:
        if not upstreams:
            raise ValueError("nginx needs at least one upstream port")
        tmp = tmp_path_factory.mktemp("nginx")
        port = free_port()
        balance = balance.strip()
        if balance and not balance.endswith(";"):
            balance += ";"
        http = NGINX_HTTP.format(
            port=port,
            balance=balance,
            servers="\n".join(f"        server 127.0.0.1:{p};" for p in upstreams),
            websocket=NGINX_WEBSOCKET if websocket else "",
        )
        procs.append(start_nginx(tmp, http, port))
        return port

    try:
        yield make
    finally:
        for proc in procs:
            stop(proc)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium driven by Playwright (async API), closed after the test."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: {SETUP_HINT}", pytrace=False)
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: {SETUP_HINT}", pytrace=False)
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
