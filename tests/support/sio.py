"""Socket.IO test helpers: polling for a condition, recording what a client sees, raw clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import wsio

POLL = 0.005
"""Seconds between two looks at a condition."""


async def until(
    predicate: Callable[[], bool],
    timeout: float = 5.0,
    describe: Callable[[], str] | None = None,
) -> None:
    """Poll *predicate* until it holds.

    Raises:
        AssertionError: it still does not hold after *timeout* seconds; the message
            is ``describe()`` when given.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(describe() if describe else "condition not met in time")
        await asyncio.sleep(POLL)


class Recorder:
    """Collects what a client's handlers see, in order.

    Handlers are registered for ``connect``, ``disconnect``, ``connect_error`` and
    every name in *events*; :attr:`seen` holds ``(event, *args)`` tuples.
    """

    def __init__(self, client: wsio.Client, *events: str) -> None:
        self.seen: list[tuple[Any, ...]] = []
        for name in ("connect", "disconnect", "connect_error", *events):
            client.on(name, self._handler(name))

    def _handler(self, name: str) -> Callable[..., None]:
        def handler(*args: Any) -> None:
            self.seen.append((name, *args))

        return handler

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every *name* event so far."""
        return [e[1:] for e in self.seen if e[0] == name]

    async def wait(self, name: str, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        """Wait until *count* *name* events arrived; returns all of them."""
        await until(
            lambda: len(self.of(name)) >= count,
            timeout,
            lambda: f"{count} x {name!r} expected, saw {self.seen}",
        )
        return self.of(name)


@contextlib.asynccontextmanager
async def client_factory() -> AsyncIterator[Callable[..., wsio.Client]]:
    """Yields ``make(url, **options)``, which makes a :class:`wsio.Client` (``timeout``
    5 s unless given); every client made is closed on exit."""
    made: list[wsio.Client] = []

    def make(url: str, **options: Any) -> wsio.Client:
        options.setdefault("timeout", 5)
        client = wsio.Client(url, **options)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.manager.close()


def stalled_client(port: int, connect: bytes = b"40", rcvbuf: int = 4096) -> socket.socket:
    """A Socket.IO client over a raw WebSocket that stops reading once connected.

    It sends the CONNECT packet *connect* (``40`` joins ``/`` without auth), waits
    for the server's CONNECT reply and returns the socket, which nobody reads from
    then: with its small receive buffer (*rcvbuf*) the server's writes back up.
    Blocking: call it from an executor in async tests.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(connect))
    sock.sendall(bytes([0x81, 0x80 | len(connect)]) + mask + masked)
    sock.settimeout(5)
    data = b""
    while b'40{"sid"' not in data:
        chunk = sock.recv(4096)
        assert chunk, "server closed before the CONNECT reply"
        data += chunk
    return sock
